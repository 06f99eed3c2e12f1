"""The smallest input a tap accepts and the shape it gives, computed from the model by probing shapes on the
meta device (no weights, no memory): ``min_input_size("alexnet", "L")`` -> 63."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import fx

from .registry import get_architecture, meta_model
from .truncate import truncate

_REFUSED = object()  # a node whose op refused its input's shape, or whose input was refused


@dataclass(frozen=True)
class TapProbe:
    """A tap's smallest accepted square input (``min_side`` x ``min_side``) and its module's output shape there
    (batch 1): (1, C, H, W) for a spatial map, (1, F) for a tap after the flatten; ``max_side``: the largest
    side accepted (None: no limit; a model built for one size only, like ViT, accepts just that)."""
    min_side: int
    shape: tuple[int, ...]
    max_side: int | None = None


class _ShapeProbe(fx.Interpreter):
    """Runs a graph on meta tensors node by node; where an op refuses the shapes (a kernel larger than its
    input, a pooling output of size 0) that node and everything computed from it give _REFUSED."""

    def run_node(self, n: fx.Node):
        if n.op != "output" and any(self.env[a] is _REFUSED for a in n.all_input_nodes):
            return _REFUSED
        try:
            return super().run_node(n)
        except (RuntimeError, ValueError, AssertionError):  # what torch's shape checks raise
            return _REFUSED


@cache
def _cut(arch: str, modules: tuple[str, ...]) -> fx.GraphModule:
    return truncate(meta_model(get_architecture(arch)), {m: m for m in modules})


@cache
def _shapes(arch: str, modules: tuple[str, ...], side: int) -> dict[str, tuple[int, ...] | None]:
    """{module: output shape, or None where the tap refuses a side x side input}."""
    with torch.inference_mode(False), torch.no_grad():
        out = _ShapeProbe(_cut(arch, modules)).run(torch.empty(1, 3, side, side, device="meta"))
    return {m: None if out[m] is _REFUSED else tuple(out[m].shape) for m in modules}


def probe_taps(arch: str, taps, *, limit: int = 4096) -> dict[str, TapProbe]:
    """``{tap: TapProbe}`` for taps (letters or module paths) of ``arch``, from one cut of the model.

    The side is found by doubling from 16 until every tap accepts it, then by bisection per tap; this assumes
    that a tap accepting a size accepts every larger one (true of convolution and pooling stacks, whose output
    sizes grow with their input's). A model built for one size only (its ``fixed_size``) is probed at that size.
    Raises ValueError for a tap that refuses every side up to ``limit``.
    """
    a = get_architecture(arch)
    resolved = {t: a.resolve(t).module for t in ((taps,) if isinstance(taps, str) else taps)}
    modules = tuple(dict.fromkeys(resolved.values()))
    shapes = lambda side: _shapes(a.name, modules, side)  # noqa: E731 (memoised per side)
    fixed = getattr(a, "fixed_size", None)
    if fixed:
        refused = [m for m, shape in shapes(fixed).items() if shape is None]
        if refused:
            raise ValueError(f"tap {refused[0]} of {a.name} refuses its model's only input size {fixed}x{fixed}")
        return {t: TapProbe(fixed, shapes(fixed)[m], fixed) for t, m in resolved.items()}
    good = 16
    while good < limit and any(s is None for s in shapes(good).values()):
        good *= 2
    sides = {}
    for m in modules:
        if shapes(min(good, limit))[m] is None:
            raise ValueError(f"tap {m} of {a.name} refuses every input up to {limit}x{limit}")
        lo, hi = 0, min(good, limit)  # lo refused (or 0), hi accepted
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if shapes(mid)[m] is not None else (mid, hi)
        sides[m] = TapProbe(hi, shapes(hi)[m])
    return {t: sides[m] for t, m in resolved.items()}


def min_input_size(arch: str, tap: str, *, limit: int = 4096) -> int:
    """The smallest side s such that ``tap`` (a letter or module path) of ``arch`` accepts s x s images (and so
    any H, W >= s: torchvision's classifiers treat both axes alike); computed from the model, see probe_taps."""
    return probe_taps(arch, (tap,), limit=limit)[tap].min_side
