"""Triton kernels of the per-sample feature MSE, forward and backward.

Forward: one program per (sample, block of pixels) loops over channel blocks and writes one fp32
partial sum of squared differences; ``rowsum`` adds a sample's partials in a fixed order.
Backward: elementwise, dL/df = 2 grad_n (f - g) / (C H W) = -dL/dg, written in each input's layout.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_common import grad_buffers, load_pair, pair, pixel_tile, rowsum, store_block, write_back


@triton.jit
def _fwd_kernel(f, g, part, C, P, NB, sfn, sfc, sfp, sgn, sgc, sgp,
                BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    n, pb, p, pm, cr, x_base, y_base = pixel_tile(f, g, P, sfn, sfp, sgn, sgp, BLOCK_C, BLOCK_P)
    acc = tl.zeros([BLOCK_P], tl.float32)
    for c0 in range(0, C, BLOCK_C):
        c, cm, m, x, y = load_pair(x_base, y_base, c0, cr, C, pm, sfc, sgc)
        d = x - y
        acc += tl.sum(d * d, 0)
    tl.store(part + n * NB + pb, tl.sum(acc, 0))


@triton.jit
def _bwd_kernel(go, f, g, gf, gg, C, P, sfn, sfc, sfp, sgn, sgc, sgp, tfn, tfc, tfp, tgn, tgc, tgp, inv_cp,
                BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    n, pb, p, pm, cr, x_base, y_base = pixel_tile(f, g, P, sfn, sfp, sgn, sgp, BLOCK_C, BLOCK_P)
    scale = 2.0 * tl.load(go + n).to(tl.float32) * inv_cp
    for c0 in range(0, C, BLOCK_C):
        c, cm, m, x, y = load_pair(x_base, y_base, c0, cr, C, pm, sfc, sgc)
        d = scale * (x - y)
        store_block(gf, n, c, p, tfn, tfc, tfp, d, m)
        store_block(gg, n, c, p, tgn, tgc, tgp, -d, m)


def forward(f: torch.Tensor, g: torch.Tensor, block_c: int | None = None, block_p: int | None = None) -> torch.Tensor:
    """Mean squared difference per sample, (N,) fp32. Runs on CUDA, or on CPU under TRITON_INTERPRET=1."""
    k = pair(f, g, block_c, block_p)
    part = torch.empty((k.n, k.nb), dtype=torch.float32, device=f.device)
    _fwd_kernel[(k.n, k.nb)](k.x, k.y, part, k.c, k.p, k.nb, *k.sx, *k.sy, BLOCK_C=k.bc, BLOCK_P=k.bp)
    return rowsum(part, 1.0 / (k.c * k.p))


def backward(grad: torch.Tensor, f: torch.Tensor, g: torch.Tensor,
             block_c: int | None = None, block_p: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. f and g, in their dtype and layout."""
    gf, gg, gfw, tf, ggw, tg = grad_buffers(f, g)
    k = pair(f, g, block_c, block_p)
    _bwd_kernel[(k.n, k.nb)](grad.contiguous(), k.x, k.y, gfw, ggw, k.c, k.p, *k.sx, *k.sy, *tf, *tg,
                             1.0 / (k.c * k.p), BLOCK_C=k.bc, BLOCK_P=k.bp)
    return write_back(gf, gfw), write_back(gg, ggw)

