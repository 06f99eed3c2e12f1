"""The truncating compiler: a torchvision model cut after its deepest requested tap, as one FX graph."""
from __future__ import annotations

import operator

import torch
from torch import fx
from torchvision.models.feature_extraction import NodePathTracer, _set_default_tracer_kwargs

# in-place ops that could overwrite an earlier tap, and their out-of-place twins
_INPLACE_FUNCTIONS = {operator.iadd: operator.add, operator.imul: operator.mul, operator.isub: operator.sub}
# ops whose result shares the storage of their first argument
_VIEWS = {"view", "view_as", "reshape", "flatten", "unflatten", "permute", "transpose", "squeeze", "unsqueeze",
          "expand", "narrow", "getitem", "__getitem__", "detach"}


def truncate(model: torch.nn.Module, return_nodes: dict[str, str]) -> fx.GraphModule:
    """One graph returning ``{name: output of module path}``; nothing after the deepest tap is kept.

    The graph is traced in eval mode; in-place ops that would write into a tap become out-of-place.
    Submodules (and so parameters) that the graph does not reach are dropped by FX.
    """
    gm = _eval_graph(model.eval(), return_nodes)
    _drop_dead_asserts(gm)
    _protect_taps(gm)
    for p in gm.parameters():
        p.requires_grad_(False)
    return gm


def _eval_graph(model: torch.nn.Module, return_nodes: dict[str, str]) -> fx.GraphModule:
    """torchvision's create_feature_extractor in eval mode alone (it traces train mode as well: twice the time): a
    module path names the last node traced inside that module."""
    tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
    # buffers as graph inputs, not their values at trace time: MaxViT indexes its bias table with a view of a
    # buffer, which would otherwise become a constant (lost on the meta device, where loss networks are cut)
    tracer.proxy_buffer_attributes = True
    graph = tracer.trace(model)
    gm = fx.GraphModule(tracer.root, graph, class_name=type(model).__name__ + "Prefix")
    graph = gm.graph
    if constants := [n.target for n in graph.nodes if n.op == "get_attr"
                     and n.target.startswith("_tensor_constant") and getattr(gm, n.target).is_meta]:
        raise ValueError(f"{type(model).__name__}: tensors computed while tracing a meta model ({constants[:3]})")
    wanted, found = dict(return_nodes), {}
    for node in reversed(list(graph.nodes)):
        if node.op == "output":
            graph.erase_node(node)
            continue
        qualname = tracer.node_to_qualname.get(node)
        for query in list(wanted) if qualname else ():  # a stage and its last block share their last node
            if ".".join(qualname.split(".")[:query.count(".") + 1]) == query:
                found[wanted.pop(query)] = node
    if wanted:
        raise ValueError(f"{', '.join(wanted)}: no such module in {type(model).__name__} (module paths as "
                         "named_modules() gives them)")
    graph.output(dict(reversed(found.items())))
    graph.eliminate_dead_code()
    return gm.eval()


def _drop_dead_asserts(gm: fx.GraphModule) -> None:
    """Drop the ``torch._assert`` checks that need a module the taps do not (ViT checks every encoder block's
    input, which kept every block up to the last one alive), then the computation and submodules only they or
    nothing kept."""
    live, stack = set(), [next(n for n in gm.graph.nodes if n.op == "output")]
    while stack:
        node = stack.pop()
        if node not in live:
            live.add(node)
            stack.extend(node.all_input_nodes)
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target is torch._assert:
            seen, stack = set(), list(node.all_input_nodes)
            while stack:
                n = stack.pop()
                if n not in live and n not in seen:
                    seen.add(n)
                    stack.extend(n.all_input_nodes)
            if any(n.op == "call_module" for n in seen):
                gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()


def _protect_taps(gm: fx.GraphModule) -> None:
    """Make out-of-place every in-place op that would write into a tap (or a view of one).

    Only those: elsewhere in-place ReLUs and residual adds stay as they are, which saves memory traffic.
    """
    output = next(n for n in gm.graph.nodes if n.op == "output")
    aliases = set(output.args[0].values())
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if not node.args or node.args[0] not in aliases:
            continue
        if node.op in ("call_method", "call_function") and getattr(node.target, "__name__", node.target) in _VIEWS:
            aliases.add(node)
        elif node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
        elif node.op == "call_function" and node.target in _INPLACE_FUNCTIONS:
            node.target = _INPLACE_FUNCTIONS[node.target]
        elif node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
            node.target = node.target[:-1]
        elif node.op == "call_module" and getattr(modules[node.target], "inplace", None) is True:
            modules[node.target].inplace = False
    gm.graph.lint()
    gm.recompile()
