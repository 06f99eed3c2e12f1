"""Full-reference image metrics in torch, batched: PSNR and SSIM as scikit-image computes them.

``psnr`` equals ``skimage.metrics.peak_signal_noise_ratio`` and ``ssim`` equals
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=...)`` (per channel, then averaged over channels) on the same arrays. Inputs are (N,C,H,W) or
(N,H,W) tensors on any device; results are (N,) tensors, one value per image. The arithmetic is float64
by default, as scikit-image's.

Helpers for the super-resolution literature's protocol: ``rgb_to_y`` (ITU-R BT.601 luma, MATLAB
``rgb2ycbcr``), ``shave`` (drop a border) and ``mod_crop`` (crop to a multiple of the scale).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "rgb_to_y", "shave", "mod_crop", "gaussian_window", "to_uint8"]


def _as_nchw(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError(f"expected images of shape (N,C,H,W) or (N,H,W), got {tuple(x.shape)}")
    return x.to(dtype)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, *,
         dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(data_range^2 / MSE); +inf for identical images."""
    _check_pair(x, y)
    x, y = _as_nchw(x, dtype), _as_nchw(y, dtype)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian that scipy.ndimage.gaussian_filter uses (radius int(truncate*sigma+0.5))."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, *, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Mean structural similarity per image with a Gaussian window (11x11 at sigma 1.5), averaged over
    channels, as scikit-image with ``gaussian_weights=True, use_sample_covariance=False``.

    scikit-image filters with reflected borders and then drops ``radius`` pixels on each side before
    averaging; the kept pixels' windows never reach the border, so a valid convolution is the same.
    """
    _check_pair(x, y)
    x, y = _as_nchw(x, dtype), _as_nchw(y, dtype)
    n, c, h, w = x.shape
    win = gaussian_window(sigma, dtype=dtype, device=x.device)
    k = win.numel()
    if h < k or w < k:
        raise ValueError(f"images of {h}x{w} are smaller than the {k}x{k} SSIM window")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    wh = win.view(1, 1, k, 1).expand(c * 5, 1, k, 1)
    ww = win.view(1, 1, 1, k).expand(c * 5, 1, 1, k)
    # the five filtered maps of all channels in one grouped, separable convolution
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    f = F.conv2d(F.conv2d(stack, wh, groups=c * 5), ww, groups=c * 5)
    ux, uy, uxx, uyy, uxy = f.split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(2).mean(2).mean(1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0,1] floats rounded to uint8 values (as a saved image would hold them)."""
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of RGB (N,3,H,W) given in [0,255]: 16 + (65.481 R + 128.553 G + 24.966 B)/255,
    in [16,235] (MATLAB's rgb2ycbcr, the SR literature's Y channel). Returns (N,1,H,W) float64."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB images of shape (N,3,H,W), got {tuple(x.shape)}")
    coef = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return 16.0 + (x.to(torch.float64) * coef).sum(1, keepdim=True) / 255.0


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on each side of the last two dimensions."""
    if border <= 0:
        return x
    if x.shape[-2] <= 2 * border or x.shape[-1] <= 2 * border:
        raise ValueError(f"cannot shave {border} pixels off a {x.shape[-2]}x{x.shape[-1]} image")
    return x[..., border:-border, border:-border]


def mod_crop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the last two dimensions down to multiples of ``scale`` (top-left kept, as MATLAB's modcrop)."""
    h, w = x.shape[-2] - x.shape[-2] % scale, x.shape[-1] - x.shape[-1] % scale
    if h == 0 or w == 0:
        raise ValueError(f"image of {x.shape[-2]}x{x.shape[-1]} is smaller than the scale {scale}")
    return x[..., :h, :w]

