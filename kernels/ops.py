"""The public ops, registered as ``torch.library`` custom ops with fake and autograd implementations.

CUDA tensors in fp32/fp16/bf16 run the Triton kernels; everything else (CPU, float64, no triton
installed) runs the PyTorch reference. As opaque custom ops they trace under ``torch.compile``
without graph breaks. Outputs are fp32 (float64 for float64 inputs).
"""
from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Optional

import torch
from torch import Tensor

from . import reference
from .reference import acc_dtype

_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.cache
def _triton() -> SimpleNamespace | None:
    """The Triton launchers, imported on first CUDA use; None where triton is not installed."""
    try:
        from . import triton_mse, triton_perceptual
    except ImportError:
        return None
    return SimpleNamespace(mse=triton_mse, perceptual=triton_perceptual)


def _use_triton(*xs: Tensor) -> bool:
    return all(x.dtype in _TRITON_DTYPES for x in xs) and _triton() is not None


# perceptual distance: per sample (N,), or its per-channel terms (N, C)

@torch.library.custom_op("lossnets::perceptual_distance", mutates_args=())
def _pd(f0: Tensor, f1: Tensor, weight: Optional[Tensor]) -> Tensor:
    return reference.perceptual_distance(f0, f1, weight)


@_pd.register_kernel("cuda")
def _pd_cuda(f0: Tensor, f1: Tensor, weight: Optional[Tensor]) -> Tensor:
    if _use_triton(f0, f1):
        return _triton().perceptual.forward(f0, f1, weight)
    return reference.perceptual_distance(f0, f1, weight)


@_pd.register_fake
def _pd_fake(f0: Tensor, f1: Tensor, weight: Optional[Tensor]) -> Tensor:
    return f0.new_empty(f0.shape[0], dtype=acc_dtype(f0))


@torch.library.custom_op("lossnets::perceptual_channel_distance", mutates_args=())
def _pcd(f0: Tensor, f1: Tensor, weight: Optional[Tensor]) -> Tensor:
    return reference.perceptual_channel_distance(f0, f1, weight)


@_pcd.register_kernel("cuda")
def _pcd_cuda(f0: Tensor, f1: Tensor, weight: Optional[Tensor]) -> Tensor:
    if _use_triton(f0, f1):
        return _triton().perceptual.forward(f0, f1, weight, per_channel=True)
    return reference.perceptual_channel_distance(f0, f1, weight)


@_pcd.register_fake
def _pcd_fake(f0: Tensor, f1: Tensor, weight: Optional[Tensor]) -> Tensor:
    return f0.new_empty(f0.shape[:2], dtype=acc_dtype(f0))


# The backward ops of both: grad is (N,) for the distance, (N, C) for its per-channel terms.

def _pd_bwd_reference(grad: Tensor, f0: Tensor, f1: Tensor, weight: Optional[Tensor],
                      need_weight_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    per_channel = grad.dim() == 2
    fn = reference.perceptual_channel_distance_backward if per_channel else reference.perceptual_distance_backward
    g0, g1, gw = fn(grad, f0, f1, weight)
    return g0, g1, gw if need_weight_grad and weight is not None else gw.new_empty(0)


def _pd_bwd_cuda(grad: Tensor, f0: Tensor, f1: Tensor, weight: Optional[Tensor],
                 need_weight_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    if _use_triton(f0, f1):
        return _triton().perceptual.backward(grad, f0, f1, weight, need_weight_grad)
    return _pd_bwd_reference(grad, f0, f1, weight, need_weight_grad)


def _pd_bwd_fake(grad: Tensor, f0: Tensor, f1: Tensor, weight: Optional[Tensor],
                 need_weight_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    c = f0.shape[1] if need_weight_grad and weight is not None else 0
    return torch.empty_like(f0), torch.empty_like(f1), f0.new_empty(c, dtype=acc_dtype(f0))


for _name in ("perceptual_distance_backward", "perceptual_channel_distance_backward"):
    _bwd = torch.library.custom_op(f"lossnets::{_name}", _pd_bwd_reference, mutates_args=())
    _bwd.register_kernel("cuda", _pd_bwd_cuda)
    _bwd.register_fake(_pd_bwd_fake)


def _pd_setup(ctx, inputs, output) -> None:
    f0, f1, weight = inputs
    ctx.save_for_backward(f0, f1, weight)


def _pd_backward(ctx, grad: Tensor):
    f0, f1, weight = ctx.saved_tensors
    need_gw = weight is not None and ctx.needs_input_grad[2]
    bwd = torch.ops.lossnets.perceptual_channel_distance_backward if grad.dim() == 2 else \
        torch.ops.lossnets.perceptual_distance_backward
    g0, g1, gw = bwd(grad, f0, f1, weight, need_gw)
    return g0, g1, gw.to(weight.dtype) if need_gw else None


for _op in (_pd, _pcd):
    _op.register_autograd(_pd_backward, setup_context=_pd_setup)


# feature MSE

@torch.library.custom_op("lossnets::feature_mse", mutates_args=())
def _mse(f: Tensor, g: Tensor) -> Tensor:
    return reference.feature_mse(f, g)


@_mse.register_kernel("cuda")
def _mse_cuda(f: Tensor, g: Tensor) -> Tensor:
    if _use_triton(f, g):
        return _triton().mse.forward(f, g)
    return reference.feature_mse(f, g)


@_mse.register_fake
def _mse_fake(f: Tensor, g: Tensor) -> Tensor:
    return f.new_empty(f.shape[0], dtype=acc_dtype(f))


@torch.library.custom_op("lossnets::feature_mse_backward", mutates_args=())
def _mse_bwd(grad: Tensor, f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    return reference.feature_mse_backward(grad, f, g)


@_mse_bwd.register_kernel("cuda")
def _mse_bwd_cuda(grad: Tensor, f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    if _use_triton(f, g):
        return _triton().mse.backward(grad, f, g)
    return reference.feature_mse_backward(grad, f, g)


@_mse_bwd.register_fake
def _mse_bwd_fake(grad: Tensor, f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    return torch.empty_like(f), torch.empty_like(g)


def _mse_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _mse_backward(ctx, grad: Tensor):
    f, g = ctx.saved_tensors
    return torch.ops.lossnets.feature_mse_backward(grad, f, g)


_mse.register_autograd(_mse_backward, setup_context=_mse_setup)


# public API

def _check(a: Tensor, b: Tensor) -> None:
    if a.dim() != 4 or a.shape != b.shape:
        raise ValueError(f"expected two (N, C, H, W) feature maps of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (a.is_floating_point() and b.is_floating_point()):
        raise TypeError(f"expected floating-point feature maps, got {a.dtype} and {b.dtype}")


def perceptual_distance(f0: Tensor, f1: Tensor, weight: Tensor | None = None,
                        per_channel: bool = False) -> Tensor:
    """LPIPS eq. 1: per sample, channel-unit-normalise both maps, subtract, square, weight per channel,
    sum over channels, mean over H*W. ``weight`` (C,) or None (all ones, the baseline). Returns (N,);
    with ``per_channel`` the (N, C) terms of the channel sum instead (``.sum(1)`` is the distance)."""
    _check(f0, f1)
    if weight is not None and weight.shape != (f0.shape[1],):
        raise ValueError(f"weight must have shape ({f0.shape[1]},), got {tuple(weight.shape)}")
    if per_channel:
        return torch.ops.lossnets.perceptual_channel_distance(f0, f1, weight)
    return torch.ops.lossnets.perceptual_distance(f0, f1, weight)


def feature_mse(f: Tensor, g: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared feature difference: a scalar (``"mean"``) or one value per sample (``"none"``)."""
    _check(f, g)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    per_sample = torch.ops.lossnets.feature_mse(f, g)
    return per_sample.mean() if reduction == "mean" else per_sample
