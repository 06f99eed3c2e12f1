"""The zoo's tap rule, derived from the model itself by tracing output shapes on the meta device.

Convolutional trunks (and Swin, MaxViT): the taps are the outputs of the stages at the four deepest strides of the
trunk, 4, 8, 16 and 32 (2, 4, 8, 16 for SqueezeNet, whose trunk stops at 16): the last module at each
resolution, the C2-C5 of feature pyramids. The stages are the model's top-level children, where a child that
downsamples more than once (a ``features`` Sequential) stands for its own children, recursively; the last child
(the classifier) and outputs that do not keep the input's aspect ratio (global pooling) are not part of the trunk.
Transformers whose blocks output tokens (ViT): the encoder blocks at a quarter, half, three quarters and all of
the depth, each as its patch grid and, a second form, as its class token.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

LAYERS = ("E", "S", "M", "L")
CLASS_TOKEN_SUFFIX = "_cls"
VARIABLE_SIZE = (512, 320)  # traced size of models without a fixed one: H != W tells NCHW from NHWC
_ASPECT_TOLERANCE = 0.25  # |log2| of the ratio between the two axes' strides


@dataclass(frozen=True)
class RuleTap:
    layer: str
    module: str
    channels: int
    stride: int
    form: str  # nchw, nhwc (channels-last, permuted), tokens (patch grid), class_token (1x1)
    description: str


def trace(model: nn.Module, size: tuple[int, int]) -> dict[str, tuple[tuple[int, ...], int]]:
    """{module path: (shape of its last call's output, when that call finished)} for one meta forward pass."""
    seen: dict[str, tuple[tuple[int, ...], int]] = {}
    counter = itertools.count()
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, (tuple(o.shape), next(counter)))
                                     if isinstance(o, torch.Tensor) else None)
             for n, m in model.named_modules() if n]
    try:
        with torch.no_grad(), torch.inference_mode(False):
            model.eval()(torch.empty(1, 3, *size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return seen


def spatial(shape: tuple[int, ...], size: tuple[int, int]) -> tuple[str, int, int] | None:
    """(form, stride, channels) of a 4-d output that keeps the input's aspect ratio, NCHW tried first; else None."""
    if len(shape) != 4:
        return None
    for form, (h, w, c) in (("nchw", shape[2:] + shape[1:2]), ("nhwc", shape[1:])):
        if h > 1 and w > 1 and abs(math.log2((size[0] / h) / (size[1] / w))) < _ASPECT_TOLERANCE:
            return form, 2 ** round(math.log2(size[0] / h)), c
    return None


def _grid_side(shape: tuple[int, ...]) -> int | None:
    """h (= w) of (N, 1 + h*w, C) tokens: a class token and a square patch grid; else None."""
    side = math.isqrt(shape[1] - 1) if len(shape) == 3 and shape[1] > 1 else 0
    return side if side and side * side == shape[1] - 1 else None


def form_of(shapes, module: str, size: tuple[int, int]) -> str:
    """The form of ``module``'s output in a trace: nchw or nhwc for a spatial map, tokens for ViT tokens, else
    as_is (passed through unchanged)."""
    shape = shapes[module][0] if module in shapes else ()
    if s := spatial(shape, size):
        return s[0]
    return "tokens" if _grid_side(shape) else "as_is"


def trace_size(fixed_size: int | None) -> tuple[int, int]:
    """The input size the rule traces at: the fixed side if the model has one, else VARIABLE_SIZE."""
    return (fixed_size, fixed_size) if fixed_size else VARIABLE_SIZE


def _stages(model: nn.Module, shapes, size) -> list[str]:
    """The trunk's stage sequence: top-level children but the last, a child that downsamples more than once
    replaced by its own children, recursively."""
    def strides(prefix: str) -> set[int]:
        return {s[1] for n, (shape, _) in shapes.items() if (n == prefix or n.startswith(prefix + "."))
                and (s := spatial(shape, size))}

    def expand(module: nn.Module, prefix: str) -> list[str]:
        out = []
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            out += expand(child, path + ".") if len(strides(path)) > 2 else [path]
        return out
    return expand(model, "")[:-1]


def _stage_taps(model, shapes, size) -> list[RuleTap] | None:
    last: dict[int, tuple[int, str, str, int]] = {}  # stride -> (finished, module, form, channels)
    for path in _stages(model, shapes, size):
        if path in shapes and (s := spatial(shapes[path][0], size)):
            form, stride, channels = s
            if stride not in last or shapes[path][1] > last[stride][0]:
                last[stride] = (shapes[path][1], path, form, channels)
    deepest = sorted(last)[-4:]
    if len(deepest) < 4:
        return None
    return [RuleTap(layer, last[s][1], last[s][3], s, last[s][2], f"stage at stride {s}")
            for layer, s in zip(LAYERS, deepest)]


def _token_taps(model, shapes, size) -> list[RuleTap] | None:
    """The longest run (at least 4) of sibling modules whose outputs are the same (N, 1 + h*w, C) tokens."""
    best: list[str] = []
    for prefix, module in model.named_modules():
        run = [f"{prefix}.{n}" if prefix else n for n, _ in module.named_children()]
        run = [p for p in run if p in shapes and len(shapes[p][0]) == 3]
        if len(run) > len(best) and len({shapes[p][0] for p in run}) == 1:
            best = run
    side = _grid_side(shapes[best[0]][0]) if len(best) >= 4 else None
    if side is None:
        return None
    channels = shapes[best[0]][0][2]
    stride, depth = size[0] // side, len(best)
    taps = []
    for layer, q in zip(LAYERS, (1, 2, 3, 4)):
        i = depth * q // 4
        where = f"encoder block {i} of {depth}"
        taps += [RuleTap(layer, best[i - 1], channels, stride, "tokens", f"{where}, patch grid"),
                 RuleTap(layer + CLASS_TOKEN_SUFFIX, best[i - 1], channels, 1, "class_token",
                         f"{where}, class token")]
    return taps


def derive(model: nn.Module, fixed_size: int | None = None) -> tuple[list[RuleTap], str]:
    """The rule's taps of ``model`` (a meta model) and the module that ends its trunk (its deepest stage or last
    block). ``fixed_size``: the only side the model accepts, if any."""
    size = trace_size(fixed_size)
    shapes = trace(model, size)
    taps = _token_taps(model, shapes, size) or _stage_taps(model, shapes, size)
    if taps is None:
        raise ValueError(f"{type(model).__name__}: neither four strides nor four token blocks found by the tap rule")
    return taps, taps[-1].module
