"""Shared pieces of the Triton kernels: strided pixel indexing, tile sizes, the fixed-order row sum.

Every kernel sees a feature map as (N, C, P) with P = H*W and strides (sN, sC, sP), which covers
NCHW-contiguous (sP = 1) and channels_last (sC = 1) tensors without a copy. The ``@triton.jit``
helpers below (inlined into the kernels that call them) hold the per-program set-up, the loading of
one (channels x pixels) block of a pair of feature maps, and the strided store of a block.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

MAX_BLOCK_P = 128
TILE = 2048  # elements per (channels x pixels) tile: few pixels (deep taps) get more channels


def flat_strides(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """x (made contiguous only if H and W cannot be flattened into one stride) and its (sN, sC, sP)."""
    _, _, h, w = x.shape
    sn, sc, sh, sw = x.stride()
    if h == 1:
        return x, (sn, sc, sw)
    if w == 1 or sh == w * sw:
        return x, (sn, sc, sh if w == 1 else sw)
    x = x.contiguous()
    return x, (x.stride(0), x.stride(1), x.stride(3))


class Pair(NamedTuple):
    """A pair of (N, C, H, W) maps as a launch sees them: sizes, (N, C, P) views with their strides,
    tile sizes and the number of pixel blocks."""
    n: int
    c: int
    p: int
    x: torch.Tensor
    sx: tuple[int, int, int]
    y: torch.Tensor
    sy: tuple[int, int, int]
    bc: int
    bp: int
    nb: int


def pair(x: torch.Tensor, y: torch.Tensor, block_c: int | None = None, block_p: int | None = None) -> Pair:
    """The launch plan of a kernel over x and y (see flat_strides and blocks)."""
    n, c, h, w = x.shape
    x, sx = flat_strides(x)
    y, sy = flat_strides(y)
    bc, bp = blocks(c, h * w, block_c, block_p)
    return Pair(n, c, h * w, x, sx, y, sy, bc, bp, triton.cdiv(h * w, bp))


def grad_buffers(f0: torch.Tensor, f1: torch.Tensor):
    """Gradients shaped like f0 and f1 (their dtype and layout), the (N, C, P)-flattenable tensors a
    kernel writes for them and their strides: (g0, g1, g0 written, its strides, g1 written, its strides)."""
    g0, g1 = torch.empty_like(f0), torch.empty_like(f1)
    g0w, t0 = flat_strides(g0)
    g1w, t1 = flat_strides(g1)
    return g0, g1, g0w, t0, g1w, t1


def write_back(out: torch.Tensor, written: torch.Tensor) -> torch.Tensor:
    """out, holding what a kernel wrote (into the contiguous stand-in flat_strides made, if any)."""
    return out if written is out else out.copy_(written)


def blocks(c: int, p: int, block_c: int | None = None, block_p: int | None = None) -> tuple[int, int]:
    """Power-of-two tile sizes (channels, pixels); explicit values override the defaults."""
    bp = block_p or min(triton.next_power_of_2(p), MAX_BLOCK_P)
    bc = block_c or min(triton.next_power_of_2(c), max(32, TILE // bp))
    return bc, bp


@triton.jit
def pixel_tile(f0, f1, P, s0n, s0p, s1n, s1p, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """This program's sample n (int64), pixel block pb, pixels p and their mask pm, the channel
    offsets cr of a block, and the pointers of (sample n, channel 0, pixels p) in f0 and f1."""
    n = tl.program_id(0).to(tl.int64)
    pb = tl.program_id(1)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    pm = p < P
    cr = tl.arange(0, BLOCK_C)
    x_base = f0 + n * s0n + p[None, :] * s0p
    y_base = f1 + n * s1n + p[None, :] * s1p
    return n, pb, p, pm, cr, x_base, y_base


@triton.jit
def load_pair(x_base, y_base, c0, cr, C, pm, s0c, s1c):
    """Channels c = c0 + cr, their mask cm and the block mask m, and the fp32 blocks of both maps
    (0 where masked)."""
    c = c0 + cr
    cm = c < C
    m = cm[:, None] & pm[None, :]
    x = tl.load(x_base + c[:, None] * s0c, mask=m, other=0.0).to(tl.float32)
    y = tl.load(y_base + c[:, None] * s1c, mask=m, other=0.0).to(tl.float32)
    return c, cm, m, x, y


@triton.jit
def store_block(out, n, c, p, sn, sc, sp, v, m):
    """Writes the block v at (sample n, channels c, pixels p) of out, in out's dtype."""
    tl.store(out + n * sn + c[:, None] * sc + p[None, :] * sp, v.to(out.dtype.element_ty), mask=m)


@triton.jit
def _rowsum_kernel(src, dst, R, K, scale, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr):
    """dst[r] = scale * sum_k src[r, k] (row-major, fp32) for a block of rows, always in the same order."""
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    rm = r < R
    row = src + r.to(tl.int64)[:, None] * K
    kr = tl.arange(0, BLOCK_K)
    acc = tl.zeros([BLOCK_R, BLOCK_K], tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + kr
        acc += tl.load(row + k[None, :], mask=rm[:, None] & (k < K)[None, :], other=0.0)
    tl.store(dst + r, tl.sum(acc, 1) * scale, mask=rm)


def rowsum(partials: torch.Tensor, scale: float) -> torch.Tensor:
    """Second stage of a deterministic reduction: (R, K) fp32 partial sums -> (R,) fp32."""
    r, k = partials.shape
    out = torch.empty(r, dtype=torch.float32, device=partials.device)
    bk = min(triton.next_power_of_2(k), 256)
    br = min(triton.next_power_of_2(r), max(1, 4096 // bk))
    _rowsum_kernel[(triton.cdiv(r, br),)](partials, out, r, k, scale, BLOCK_R=br, BLOCK_K=bk)
    return out
