"""Triton kernels of the perceptual distance (LPIPS eq. 1), forward and backward.

One program per (sample, block of pixels). It loops over channel blocks to get both channel norms,
then again to form the weighted squared difference of the normalised vectors (normalise, then
subtract), and writes one fp32 partial sum; ``rowsum`` adds the partials of a sample in a fixed
order. The backward recomputes the norms and applies the chain rule through the normalisation:
with a = x/|x|, g = dL/da: dL/dx = (g - a <a, g>) / |x|. The weight gradient is a per-channel
partial per program, reduced the same way. No atomics anywhere: results are bitwise reproducible.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .reference import EPS
from .triton_common import blocks, flat_strides, rowsum, write_back


@triton.jit
def _fwd_kernel(f0, f1, w, part, C, P, NB, s0n, s0c, s0p, s1n, s1c, s1p, eps,
                HAS_W: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    n = tl.program_id(0).to(tl.int64)
    pb = tl.program_id(1)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    pm = p < P
    cr = tl.arange(0, BLOCK_C)
    x_base = f0 + n * s0n + p[None, :] * s0p
    y_base = f1 + n * s1n + p[None, :] * s1p
    ss0 = tl.zeros([BLOCK_P], tl.float32)
    ss1 = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):  # pass 1: the channel norms
        c = c0 + cr
        m = (c < C)[:, None] & pm[None, :]
        x = tl.load(x_base + c[:, None] * s0c, mask=m, other=0.0).to(tl.float32)
        y = tl.load(y_base + c[:, None] * s1c, mask=m, other=0.0).to(tl.float32)
        ss0 += tl.sum(x * x, 0)
        ss1 += tl.sum(y * y, 0)
    inv0 = 1.0 / tl.sqrt(ss0 + eps)
    inv1 = 1.0 / tl.sqrt(ss1 + eps)
    acc = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):  # pass 2: weighted squared difference of the unit vectors
        c = c0 + cr
        m = (c < C)[:, None] & pm[None, :]
        x = tl.load(x_base + c[:, None] * s0c, mask=m, other=0.0).to(tl.float32)
        y = tl.load(y_base + c[:, None] * s1c, mask=m, other=0.0).to(tl.float32)
        d = x * inv0[None, :] - y * inv1[None, :]
        d2 = d * d
        if HAS_W:
            d2 = d2 * tl.load(w + c, mask=c < C, other=0.0).to(tl.float32)[:, None]
        acc += tl.sum(d2, 0)
    tl.store(part + n * NB + pb, tl.sum(acc, 0))


@triton.jit
def _bwd_kernel(go, f0, f1, w, g0, g1, gw_part, C, P, NB, NNB,
                s0n, s0c, s0p, s1n, s1c, s1p, t0n, t0c, t0p, t1n, t1c, t1p, eps, inv_p,
                HAS_W: tl.constexpr, NEED_GW: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    n = tl.program_id(0).to(tl.int64)
    pb = tl.program_id(1)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    pm = p < P
    cr = tl.arange(0, BLOCK_C)
    x_base = f0 + n * s0n + p[None, :] * s0p
    y_base = f1 + n * s1n + p[None, :] * s1p
    ss0 = tl.zeros([BLOCK_P], tl.float32)
    ss1 = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):  # pass 1: the channel norms
        c = c0 + cr
        m = (c < C)[:, None] & pm[None, :]
        x = tl.load(x_base + c[:, None] * s0c, mask=m, other=0.0).to(tl.float32)
        y = tl.load(y_base + c[:, None] * s1c, mask=m, other=0.0).to(tl.float32)
        ss0 += tl.sum(x * x, 0)
        ss1 += tl.sum(y * y, 0)
    inv0 = 1.0 / tl.sqrt(ss0 + eps)
    inv1 = 1.0 / tl.sqrt(ss1 + eps)
    scale = tl.load(go + n).to(tl.float32) * inv_p
    # pass 2: <a, g> and <b, g> per pixel, and the weight-gradient partials
    dot0 = tl.zeros([BLOCK_P], tl.float32)
    dot1 = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + cr
        cm = c < C
        m = cm[:, None] & pm[None, :]
        a = tl.load(x_base + c[:, None] * s0c, mask=m, other=0.0).to(tl.float32) * inv0[None, :]
        b = tl.load(y_base + c[:, None] * s1c, mask=m, other=0.0).to(tl.float32) * inv1[None, :]
        d = a - b
        g = (2.0 * scale) * d
        if HAS_W:
            g = g * tl.load(w + c, mask=cm, other=0.0).to(tl.float32)[:, None]
        dot0 += tl.sum(a * g, 0)
        dot1 += tl.sum(b * g, 0)
        if NEED_GW:
            tl.store(gw_part + c.to(tl.int64) * NNB + n * NB + pb, tl.sum(d * d, 1) * scale, mask=cm)
    # pass 3: the gradients
    for c0 in range(0, C, BLOCK_C):
        c = c0 + cr
        cm = c < C
        m = cm[:, None] & pm[None, :]
        a = tl.load(x_base + c[:, None] * s0c, mask=m, other=0.0).to(tl.float32) * inv0[None, :]
        b = tl.load(y_base + c[:, None] * s1c, mask=m, other=0.0).to(tl.float32) * inv1[None, :]
        g = (2.0 * scale) * (a - b)
        if HAS_W:
            g = g * tl.load(w + c, mask=cm, other=0.0).to(tl.float32)[:, None]
        gx = inv0[None, :] * (g - a * dot0[None, :])
        gy = inv1[None, :] * (b * dot1[None, :] - g)
        tl.store(g0 + n * t0n + c[:, None] * t0c + p[None, :] * t0p, gx.to(g0.dtype.element_ty), mask=m)
        tl.store(g1 + n * t1n + c[:, None] * t1c + p[None, :] * t1p, gy.to(g1.dtype.element_ty), mask=m)


def forward(f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor | None,
            block_c: int | None = None, block_p: int | None = None) -> torch.Tensor:
    """Perceptual distance per sample, (N,) fp32. Runs on CUDA, or on CPU under TRITON_INTERPRET=1."""
    n, c, h, w = f0.shape
    p = h * w
    f0, s0 = flat_strides(f0)
    f1, s1 = flat_strides(f1)
    bc, bp = blocks(c, p, block_c, block_p)
    nb = triton.cdiv(p, bp)
    part = torch.empty((n, nb), dtype=torch.float32, device=f0.device)
    _fwd_kernel[(n, nb)](f0, f1, f0 if weight is None else weight, part, c, p, nb, *s0, *s1, EPS,
                         HAS_W=weight is not None, BLOCK_C=bc, BLOCK_P=bp)
    return rowsum(part, 1.0 / p)


def backward(grad: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor | None,
             need_weight_grad: bool, block_c: int | None = None, block_p: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. f0, f1 (their dtype and layout) and the weight ((C,) fp32, empty if not needed)."""
    n, c, h, w = f0.shape
    p = h * w
    g0, g1 = torch.empty_like(f0), torch.empty_like(f1)
    f0, s0 = flat_strides(f0)
    f1, s1 = flat_strides(f1)
    g0w, t0 = flat_strides(g0)
    g1w, t1 = flat_strides(g1)
    bc, bp = blocks(c, p, block_c, block_p)
    nb = triton.cdiv(p, bp)
    need_gw = need_weight_grad and weight is not None
    gw_part = torch.empty((c, n * nb) if need_gw else (0,), dtype=torch.float32, device=f0.device)
    _bwd_kernel[(n, nb)](grad.contiguous(), f0, f1, f0 if weight is None else weight, g0w, g1w,
                         gw_part if need_gw else f0,
                         c, p, nb, n * nb, *s0, *s1, *t0, *t1, EPS, 1.0 / p,
                         HAS_W=weight is not None, NEED_GW=need_gw, BLOCK_C=bc, BLOCK_P=bp)
    gw = rowsum(gw_part, 1.0) if need_gw else gw_part
    return write_back(g0, g0w), write_back(g1, g1w), gw

