"""The truncating compiler: a torchvision model cut after its deepest requested tap, as one FX graph."""
from __future__ import annotations

import operator

import torch
from torch import fx
from torchvision.models.feature_extraction import create_feature_extractor

# in-place ops that could overwrite an earlier tap, and their out-of-place twins
_INPLACE_FUNCTIONS = {operator.iadd: operator.add, operator.imul: operator.mul, operator.isub: operator.sub}


def truncate(model: torch.nn.Module, return_nodes: dict[str, str]) -> fx.GraphModule:
    """One graph returning ``{name: output of module path}``; nothing after the deepest tap is kept.

    The graph is traced in eval mode; in-place ops become out-of-place so no tap can be overwritten.
    Submodules (and so parameters) that the graph does not reach are dropped by FX.
    """
    model = model.eval()
    dual = create_feature_extractor(model, return_nodes=return_nodes)
    gm = fx.GraphModule(dual, dual.eval_graph, class_name=type(model).__name__ + "Prefix").eval()
    _make_out_of_place(gm)
    for p in gm.parameters():
        p.requires_grad_(False)
    return gm


def _make_out_of_place(gm: fx.GraphModule) -> None:
    for m in gm.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = False
    for node in gm.graph.nodes:
        if node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
        if node.op == "call_function" and node.target in _INPLACE_FUNCTIONS:
            node.target = _INPLACE_FUNCTIONS[node.target]
        elif node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
            node.target = node.target[:-1]
    gm.graph.lint()
    gm.recompile()
