"""The truncating compiler: a torchvision model cut after its deepest requested tap, as one FX graph."""
from __future__ import annotations

import operator

import torch
from torch import fx
from torchvision.models.feature_extraction import create_feature_extractor

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
    model = model.eval()
    dual = create_feature_extractor(model, return_nodes=return_nodes)
    gm = fx.GraphModule(dual, dual.eval_graph, class_name=type(model).__name__ + "Prefix").eval()
    _protect_taps(gm)
    for p in gm.parameters():
        p.requires_grad_(False)
    return gm


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
