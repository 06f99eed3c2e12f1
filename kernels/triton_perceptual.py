"""Triton kernels of the perceptual distance (LPIPS eq. 1), forward and backward.

One program per (sample, block of pixels). It loops over channel blocks to get both channel norms,
then again to form the weighted squared difference of the normalised vectors (normalise, then
subtract), and writes one fp32 partial sum; ``rowsum`` adds the partials of a sample in a fixed
order. With ``per_channel`` (PER_CHANNEL) it writes one partial per channel instead, and ``rowsum``
adds those of each (sample, channel). The backward recomputes the norms and applies the chain rule
through the normalisation: with a = x/|x|, g = dL/da: dL/dx = (g - a <a, g>) / |x|; its upstream
gradient is one per sample, or one per (sample, channel) for the per-channel terms. The weight
gradient is a per-channel partial per program, reduced the same way. No atomics anywhere: results
are bitwise reproducible.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .reference import EPS
from .triton_common import grad_buffers, load_pair, pair, pixel_tile, rowsum, store_block, write_back


@triton.jit
def _inv_norms(x_base, y_base, C, pm, cr, s0c, s1c, eps, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """Pass 1: 1 / |x| and 1 / |y| over the channels, per pixel (eps inside the square root)."""
    ss0 = tl.zeros([BLOCK_P], tl.float32)
    ss1 = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):
        c, cm, m, x, y = load_pair(x_base, y_base, c0, cr, C, pm, s0c, s1c)
        ss0 += tl.sum(x * x, 0)
        ss1 += tl.sum(y * y, 0)
    return 1.0 / tl.sqrt(ss0 + eps), 1.0 / tl.sqrt(ss1 + eps)


@triton.jit
def _weighted(v, w, c, cm, HAS_W: tl.constexpr):
    """v (channels x pixels) times the per-channel weight, if there is one."""
    if HAS_W:
        v = v * tl.load(w + c, mask=cm, other=0.0).to(tl.float32)[:, None]
    return v


@triton.jit
def _upstream(go, n, c, cm, C, inv_p, PER_CHANNEL: tl.constexpr):
    """The upstream gradient over P for the channels c, (BLOCK_C,): go[n, c] of an (N, C) gradient, or
    go[n] of an (N,) one for every channel."""
    if PER_CHANNEL:
        s = tl.load(go + n * C + c, mask=cm, other=0.0)
    else:
        s = tl.load(go + n + c * 0)
    return s.to(tl.float32) * inv_p


@triton.jit
def _unit_grad(x_base, y_base, w, go, n, c0, cr, C, pm, s0c, s1c, inv0, inv1, inv_p,
               HAS_W: tl.constexpr, PER_CHANNEL: tl.constexpr):
    """A channel block of the unit vectors a = x/|x|, b = y/|y|, of the upstream gradient s over P
    (see _upstream) and of g = dL/da = 2 s w (a - b)."""
    c, cm, m, x, y = load_pair(x_base, y_base, c0, cr, C, pm, s0c, s1c)
    a = x * inv0[None, :]
    b = y * inv1[None, :]
    s = _upstream(go, n, c, cm, C, inv_p, PER_CHANNEL)
    g = _weighted((2.0 * s[:, None]) * (a - b), w, c, cm, HAS_W)
    return c, cm, m, a, b, g, s


@triton.jit
def _fwd_kernel(f0, f1, w, part, C, P, NB, s0n, s0c, s0p, s1n, s1c, s1p, eps,
                HAS_W: tl.constexpr, PER_CHANNEL: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    n, pb, p, pm, cr, x_base, y_base = pixel_tile(f0, f1, P, s0n, s0p, s1n, s1p, BLOCK_C, BLOCK_P)
    inv0, inv1 = _inv_norms(x_base, y_base, C, pm, cr, s0c, s1c, eps, BLOCK_C, BLOCK_P)
    acc = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):  # pass 2: weighted squared difference of the unit vectors
        c, cm, m, x, y = load_pair(x_base, y_base, c0, cr, C, pm, s0c, s1c)
        d = x * inv0[None, :] - y * inv1[None, :]
        dd = _weighted(d * d, w, c, cm, HAS_W)
        if PER_CHANNEL:  # part is (N, C, NB)
            tl.store(part + (n * C + c) * NB + pb, tl.sum(dd, 1), mask=cm)
        else:
            acc += tl.sum(dd, 0)
    if not PER_CHANNEL:  # part is (N, NB)
        tl.store(part + n * NB + pb, tl.sum(acc, 0))


@triton.jit
def _bwd_kernel(go, f0, f1, w, g0, g1, gw_part, C, P, NB, NNB,
                s0n, s0c, s0p, s1n, s1c, s1p, t0n, t0c, t0p, t1n, t1c, t1p, eps, inv_p,
                HAS_W: tl.constexpr, PER_CHANNEL: tl.constexpr, NEED_GW: tl.constexpr,
                BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    n, pb, p, pm, cr, x_base, y_base = pixel_tile(f0, f1, P, s0n, s0p, s1n, s1p, BLOCK_C, BLOCK_P)
    inv0, inv1 = _inv_norms(x_base, y_base, C, pm, cr, s0c, s1c, eps, BLOCK_C, BLOCK_P)
    # pass 2: <a, g> and <b, g> per pixel, and the weight-gradient partials
    dot0 = tl.zeros([BLOCK_P], tl.float32)
    dot1 = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):
        c, cm, m, a, b, g, s = _unit_grad(x_base, y_base, w, go, n, c0, cr, C, pm, s0c, s1c, inv0, inv1, inv_p,
                                          HAS_W, PER_CHANNEL)
        dot0 += tl.sum(a * g, 0)
        dot1 += tl.sum(b * g, 0)
        if NEED_GW:
            d = a - b
            tl.store(gw_part + c.to(tl.int64) * NNB + n * NB + pb, tl.sum(d * d, 1) * s, mask=cm)
    # pass 3: the gradients
    for c0 in range(0, C, BLOCK_C):
        c, cm, m, a, b, g, s = _unit_grad(x_base, y_base, w, go, n, c0, cr, C, pm, s0c, s1c, inv0, inv1, inv_p,
                                          HAS_W, PER_CHANNEL)
        store_block(g0, n, c, p, t0n, t0c, t0p, inv0[None, :] * (g - a * dot0[None, :]), m)
        store_block(g1, n, c, p, t1n, t1c, t1p, inv1[None, :] * (b * dot1[None, :] - g), m)


def forward(f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor | None, per_channel: bool = False,
            block_c: int | None = None, block_p: int | None = None) -> torch.Tensor:
    """Perceptual distance per sample, (N,) fp32, or its per-channel terms, (N, C) fp32. Runs on CUDA,
    or on CPU under TRITON_INTERPRET=1."""
    k = pair(f0, f1, block_c, block_p)
    part = torch.empty((k.n, k.c, k.nb) if per_channel else (k.n, k.nb), dtype=torch.float32, device=f0.device)
    _fwd_kernel[(k.n, k.nb)](k.x, k.y, k.x if weight is None else weight, part, k.c, k.p, k.nb, *k.sx, *k.sy, EPS,
                             HAS_W=weight is not None, PER_CHANNEL=per_channel, BLOCK_C=k.bc, BLOCK_P=k.bp)
    return rowsum(part.view(-1, k.nb), 1.0 / k.p).view(part.shape[:-1])


def backward(grad: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor | None,
             need_weight_grad: bool, block_c: int | None = None, block_p: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. f0, f1 (their dtype and layout) and the weight ((C,) fp32, empty if not needed),
    given the gradient of the distance, (N,), or of its per-channel terms, (N, C)."""
    g0, g1, g0w, t0, g1w, t1 = grad_buffers(f0, f1)
    k = pair(f0, f1, block_c, block_p)
    need_gw = need_weight_grad and weight is not None
    gw_part = torch.empty((k.c, k.n * k.nb) if need_gw else (0,), dtype=torch.float32, device=f0.device)
    _bwd_kernel[(k.n, k.nb)](grad.contiguous(), k.x, k.y, k.x if weight is None else weight, g0w, g1w,
                             gw_part if need_gw else k.x,
                             k.c, k.p, k.nb, k.n * k.nb, *k.sx, *k.sy, *t0, *t1, EPS, 1.0 / k.p,
                             HAS_W=weight is not None, PER_CHANNEL=grad.dim() == 2, NEED_GW=need_gw,
                             BLOCK_C=k.bc, BLOCK_P=k.bp)
    gw = rowsum(gw_part, 1.0) if need_gw else gw_part
    return write_back(g0, g0w), write_back(g1, g1w), gw

