"""Shared cases of the kernel tests: odd shapes, dtypes with their tolerances, layouts, float64 gold."""
from __future__ import annotations

import itertools

import torch

from lossnets.kernels import reference

SHAPES = [(1, 3, 1, 1), (3, 37, 7, 5), (3, 65, 13, 11)]  # H*W = 1, 35, 143
# (values, gradients): relative to the largest gold magnitude; values accumulate in fp32 for every
# dtype, gradients are stored in the input dtype
TOLS = {torch.float32: (1e-5, 1e-5), torch.float16: (1e-5, 2e-3), torch.bfloat16: (1e-5, 1.6e-2)}
LAYOUTS = ["nchw", "channels_last", "mixed"]
CASES = list(itertools.product(SHAPES, TOLS, LAYOUTS))


def case_id(case) -> str:
    shape, dtype, layout = case
    return f"{'x'.join(map(str, shape))}-{str(dtype).removeprefix('torch.')}-{layout}"


def make(shape, dtype, layout, seed=0, device="cpu"):
    """Two seeded feature maps (ReLU-like, some exact zeros) and a positive per-channel weight."""
    gen = torch.Generator().manual_seed(seed)
    f0 = torch.randn(shape, generator=gen).relu_().to(dtype)
    f1 = torch.randn(shape, generator=gen).to(dtype)
    w = torch.rand(shape[1], generator=gen)
    cl = torch.channels_last
    if layout in ("channels_last", "mixed"):
        f1 = f1.to(memory_format=cl)
    if layout == "channels_last":
        f0 = f0.to(memory_format=cl)
    return f0.to(device), f1.to(device), w.to(device)


def _leaves(*ts):
    """Float64 CPU copies of the (rounded) inputs that require grad; None stays None."""
    return [None if t is None else t.detach().cpu().double().requires_grad_() for t in ts]


def _gold(value, leaves, grad):
    """value and its autograd gradients w.r.t. the leaves that are not None."""
    return value.detach(), torch.autograd.grad(value, [t for t in leaves if t is not None], grad.cpu().double())


def gold_perceptual(f0, f1, w, grad):
    """Float64 values and autograd gradients of the reference at the same (rounded) inputs."""
    x, y, wd = _leaves(f0, f1, w)
    return _gold(reference.perceptual_distance(x, y, wd), (x, y, wd), grad)


def gold_channels(f0, f1, w, grad):
    """Float64 per-channel terms (N, C) and their autograd gradients for an (N, C) ``grad``, written out
    here (not reference.py's): w_c times the mean over H*W of (x/sqrt(|x|^2 + EPS) - y/sqrt(|y|^2 + EPS))_c^2."""
    x, y, wd = _leaves(f0, f1, w)
    a, b = (t / (t * t).sum(1, keepdim=True).add(reference.EPS).sqrt() for t in (x, y))
    m = ((a - b) ** 2).flatten(2).mean(2)
    return _gold(m if wd is None else m * wd, (x, y, wd), grad)


def upstream(shape, per_channel, device="cpu"):
    """A non-uniform gradient for the distance (N,) or for its per-channel terms (N, C), signs mixed
    for the latter."""
    n, c = shape[:2]
    return torch.linspace(-1.0, 1.5, n * c, device=device).view(n, c) if per_channel else \
        torch.linspace(0.5, 1.5, n, device=device)


def gold_mse(f, g, grad):
    x, y = _leaves(f, g)
    return _gold(reference.feature_mse(x, y), (x, y), grad)


def assert_near(actual, gold, tol, what=""):
    """|actual - gold| <= tol * max|gold| elementwise (plus a tiny absolute floor)."""
    actual = actual.detach().cpu().double()
    scale = gold.abs().max().item()
    err = (actual - gold).abs().max().item() if gold.numel() else 0.0
    assert err <= tol * scale + 1e-12, f"{what}: max error {err:.3g} > {tol:g} x {scale:.3g}"
