"""Plain-PyTorch reference of the kernels: the CPU implementation and the ground truth of the tests.

Inputs are (N, C, H, W) feature maps of any layout and dtype; arithmetic runs in float32 (float64
for float64 inputs) and results come out in that accumulation dtype.

EPS sits inside the square root of the channel norm, ``x / sqrt(sum x^2 + EPS)``, so an all-zero
feature vector normalises to zero with finite gradients (the derivative there is ``1/sqrt(EPS)``).
The lpips package uses ``x / (sqrt(sum x^2) + 1e-10)``; with ``EPS = 1e-20 = (1e-10)^2`` both forms
agree to a relative ``1e-10 / |x|`` for a non-zero vector (far below 1e-6 for real features), give
the same value (zero) for a zero vector, and EPS stays a normal float32 number.
"""
from __future__ import annotations

import torch

EPS = 1e-20


def acc_dtype(x: torch.Tensor) -> torch.dtype:
    """Accumulation and output dtype: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _normalize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-unit-normalised x and the per-pixel inverse norm, shape (N, 1, H, W)."""
    inv = torch.rsqrt(x.pow(2).sum(1, keepdim=True) + EPS)
    return x * inv, inv


def _weight(weight: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    if weight is None:
        return torch.ones(x.shape[1], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return weight.to(x.dtype).view(1, -1, 1, 1)


def perceptual_distance(f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """LPIPS eq. 1 per sample: sum_c w_c (f0/|f0| - f1/|f1|)^2, averaged over H*W. Shape (N,)."""
    dt = acc_dtype(f0)
    a, _ = _normalize(f0.to(dt))
    b, _ = _normalize(f1.to(dt))
    return ((a - b).pow(2) * _weight(weight, a)).sum(1).mean((1, 2))


def perceptual_channel_distance(f0: torch.Tensor, f1: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The per-channel terms of perceptual_distance, w_c (f0/|f0| - f1/|f1|)_c^2 averaged over H*W. Shape (N, C)."""
    dt = acc_dtype(f0)
    a, _ = _normalize(f0.to(dt))
    b, _ = _normalize(f1.to(dt))
    return ((a - b).pow(2) * _weight(weight, a)).mean((2, 3))


def perceptual_distance_backward(grad: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor,
                                 weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form gradients w.r.t. f0, f1 (in their dtype and layout) and the weight (C,)."""
    return _backward(grad.view(-1, 1, 1, 1), f0, f1, weight)


def perceptual_channel_distance_backward(
        grad: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor,
        weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same for perceptual_channel_distance, given the (N, C) gradient of its terms."""
    return _backward(grad.view(*grad.shape, 1, 1), f0, f1, weight)


def _backward(grad: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor,
              weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chain rule through the normalisation for an upstream gradient per sample (N, 1, 1, 1) or per
    sample and channel (N, C, 1, 1)."""
    dt = acc_dtype(f0)
    _, _, h, w = f0.shape
    a, inv0 = _normalize(f0.to(dt))
    b, inv1 = _normalize(f1.to(dt))
    go = grad.to(dt) / (h * w)
    d = a - b
    g = 2 * go * _weight(weight, a) * d  # dL/da = -dL/db
    g0 = inv0 * (g - a * (a * g).sum(1, keepdim=True))
    g1 = inv1 * (b * (b * g).sum(1, keepdim=True) - g)
    gw = (go * d.pow(2)).sum((0, 2, 3))
    return _like(f0, g0), _like(f1, g1), gw


def feature_mse(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per sample over C, H, W. Shape (N,)."""
    dt = acc_dtype(f)
    return (f.to(dt) - g.to(dt)).pow(2).flatten(1).mean(1)


def feature_mse_backward(grad: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. f and g, in their dtype and layout."""
    dt = acc_dtype(f)
    scale = 2 * grad.to(dt).view(-1, 1, 1, 1) / f[0].numel()
    gf = scale * (f.to(dt) - g.to(dt))
    return _like(f, gf), _like(g, -gf)


def _like(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """value in x's dtype and memory layout."""
    return torch.empty_like(x).copy_(value)
