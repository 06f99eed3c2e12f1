"""The block rule: every block of a trunk as a tap, derived from the model on the meta device.

A block is the outermost module whose class is one of torchvision's block classes (BLOCK_CLASSES: residual,
inverted-residual, dense, fire, inception and transformer blocks). VGG and AlexNet have none: there each ReLU that
follows a Conv2d in ``features`` ends a block (a conv-ReLU pair). A DenseNet block (``_DenseLayer``) outputs the
growth-rate channels it adds to the dense block's state, as a hook on it sees them (the state itself is the dense
block's output, a stage tap).

Blocks are listed in forward order and the list ends at the trunk's end (tap_rule.derive's: the module of the zoo's
deepest stage tap L, for the study's 14 too, whose Table II L can lie before it): blocks that finish after it are
dropped, and the trunk end is the last tap. Where the trunk end returns the last block's output itself (ResNet's
``layer4`` is ``layer4.1``'s output) that block names it; otherwise the trunk end is appended (kind "trunk end") and
a block at its relative depth gives way to it (VGG's last conv-ReLU pair to the pool after it, DenseNet's last dense
layer to ``norm5``, Swin's last block to the normed, permuted map: nothing but MAC-free modules between them), so
that relative depths strictly increase and end at exactly 1.

Relative depth: MACs of the prefix that computes the tap / MACs of the prefix that computes the trunk end, at 224
(or the fixed side), each prefix as engine/truncate.py cuts it (prefix_macs; the stage taps' figures too).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.utils.flop_counter import FlopCounterMode

from .tap_rule import _grid_side, form_of, spatial, trace, trace_size
from .truncate import truncate

# torchvision module -> its block classes (the kind of a block tap is its class's name)
_BLOCKS = {
    "resnet": ("BasicBlock", "Bottleneck"), "mobilenetv2": ("InvertedResidual",),
    "mobilenetv3": ("InvertedResidual",), "mnasnet": ("_InvertedResidual",), "shufflenetv2": ("InvertedResidual",),
    "efficientnet": ("MBConv", "FusedMBConv"), "regnet": ("ResBottleneckBlock",), "densenet": ("_DenseLayer",),
    "squeezenet": ("Fire",), "googlenet": ("Inception",),
    "inception": ("InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE"), "convnext": ("CNBlock",),
    "swin_transformer": ("SwinTransformerBlock", "SwinTransformerBlockV2"), "vision_transformer": ("EncoderBlock",),
    "maxvit": ("MaxVitLayer",),
}
BLOCK_CLASSES = {getattr(importlib.import_module(f"torchvision.models.{m}"), c): c
                 for m, classes in _BLOCKS.items() for c in classes}
CONV_RELU, TRUNK_END = "conv-ReLU", "trunk end"


@dataclass(frozen=True)
class BlockTap:
    module: str
    kind: str  # the block's class name, "conv-ReLU" or "trunk end"
    channels: int
    stride: int
    form: str  # nchw, nhwc or tokens (tap_rule.form_of)
    macs: int  # of the prefix that computes the tap
    rel_depth: float


def block_modules(model: nn.Module) -> dict[str, str]:
    """{module path: kind} of every block of ``model`` (outermost block classes; VGG/AlexNet: the ReLU after each
    Conv2d of ``features``), in named_modules order."""
    found: dict[str, str] = {}
    for path, module in model.named_modules():
        if type(module) in BLOCK_CLASSES and not any(path.startswith(b + ".") for b in found):
            found[path] = BLOCK_CLASSES[type(module)]
    if found:
        return found
    after_conv = False
    for name, module in getattr(model, "features", nn.Sequential()).named_children():
        if isinstance(module, nn.ReLU) and after_conv:
            found[f"features.{name}"] = CONV_RELU
        after_conv = isinstance(module, nn.Conv2d) or (after_conv and not isinstance(module, nn.ReLU))
    return found


def prefix_graph(model: nn.Module, modules, x: torch.Tensor) -> tuple[dict[str, fx.Node], dict[str, int]]:
    """One truncated graph for all ``modules``: {module: the node that computes its output} and {module: MACs of
    the prefix that computes it} (what count_macs gives for truncate(model, {module}): the MACs of that node and
    its ancestors), from one meta pass that counts each node's FLOPs."""
    gm = truncate(model, {m: m for m in modules})
    outputs = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    flops: dict[fx.Node, int] = {}

    class Counting(fx.Interpreter):
        def run_node(self, n):
            before = counter.get_total_flops()
            out = super().run_node(n)
            flops[n] = counter.get_total_flops() - before
            return out
    with torch.inference_mode(False), FlopCounterMode(display=False) as counter:
        Counting(gm).run(x)

    def ancestors(node: fx.Node) -> set[fx.Node]:
        seen, todo = set(), [node]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += n.all_input_nodes
        return seen
    return dict(outputs), {m: sum(flops[n] for n in ancestors(node)) // 2 for m, node in outputs.items()}


def prefix_macs(model: nn.Module, modules, x: torch.Tensor) -> dict[str, int]:
    """{module: MACs of the prefix of ``model`` that computes its output} (see prefix_graph)."""
    return prefix_graph(model, modules, x)[1]


def derive_blocks(model: nn.Module, trunk_end: str, fixed_size: int | None = None) -> list[BlockTap]:
    """The block taps of ``model`` (a meta model) up to ``trunk_end`` (tap_rule.derive's), by the rule above."""
    size = trace_size(fixed_size)
    shapes = trace(model, size)
    kinds = block_modules(model)
    ends_at = shapes[trunk_end][1]
    order = sorted((p for p in kinds if p in shapes and shapes[p][1] <= ends_at), key=lambda p: shapes[p][1])
    if not order:
        raise ValueError(f"{type(model).__name__}: no block found by the block rule")
    side = fixed_size or 224
    nodes, macs = prefix_graph(model, order + [trunk_end], torch.empty(1, 3, side, side, device="meta"))
    if nodes[order[-1]] is nodes[trunk_end]:  # the trunk end returns the last block's output itself
        taps = order
    else:
        taps = [p for p in order if macs[p] < macs[trunk_end]] + [trunk_end]
        kinds = {**kinds, trunk_end: TRUNK_END}
    out = []
    for p in taps:
        shape = shapes[p][0]
        form, stride, channels = spatial(shape, size) or (form_of(shapes, p, size), size[0] // (_grid_side(shape) or 1),
                                                          shape[-1])
        if form not in ("nchw", "nhwc", "tokens"):
            raise ValueError(f"{type(model).__name__}: block {p} outputs {shape}, neither a map nor ViT tokens")
        out.append(BlockTap(p, kinds[p], channels, stride, form, macs[p], macs[p] / macs[trunk_end]))
    return out
