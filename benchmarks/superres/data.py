"""Super-resolution data: image folders decoded once into uint8 HR/LR tensors.

HR: resize the shorter side to ``size`` (bicubic, antialiased) and take the centre ``size`` x ``size``
crop. LR: Gaussian blur (sigma 1) then bicubic downsampling by the scale. Where the blur happens is the
protocol's choice:

- ``paper`` (as the published code): the blur is applied to the original image, which then goes through
  the same resize and crop as the HR image before the bicubic downsampling;
- ``standard``: the HR crop itself is blurred, then downsampled (the usual degradation model).

Test images: ``paper`` takes the same ``size`` centre crops (resizing where needed) as the published code;
``standard`` keeps the full image, mod-cropped to the scale, and degrades it as in training.

made.py writes small folders made from scikit-image's photos in the layout the benchmark reads.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..image_metrics import mod_crop
from ..training import check_protocol
from ..data.images import ImageError, list_images, read_rgb

BLUR_SIGMA = 1.0


@dataclass
class SRSet:
    """Decoded pairs: ``hr`` uint8 (N,3,S,S), ``lr`` uint8 (N,3,S/scale,S/scale), file ``names``."""
    hr: torch.Tensor
    lr: torch.Tensor
    names: list[str] = field(default_factory=list)
    folder: str = ""

    def __len__(self) -> int:
        return len(self.hr)


@dataclass
class SRImage:
    """One test pair (sizes may differ between images)."""
    name: str
    hr: torch.Tensor  # uint8 (3,H,W)
    lr: torch.Tensor  # uint8 (3,H/scale,W/scale)


def _float(img: torch.Tensor) -> torch.Tensor:
    return img.float().div(255).unsqueeze(0)


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return x.squeeze(0).clamp(0, 1).mul(255).round().to(torch.uint8)


def gaussian_blur(x: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of float (N,C,H,W), radius 4 sigma, reflected borders."""
    radius = max(1, int(4 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    x = F.pad(x, (radius, radius, radius, radius), mode=pad_mode)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def bicubic_resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of float (N,C,H,W), antialiased when shrinking, clamped to [0,1]."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)


def bicubic_down(x: torch.Tensor, scale: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"{h}x{w} is not divisible by the scale {scale}")
    return bicubic_resize(x, (h // scale, w // scale))


def shorter_side_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float (N,C,H,W) so its shorter side is ``size``, then crop the centre ``size`` x ``size``."""
    h, w = x.shape[-2:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    x = bicubic_resize(x, (nh, nw))
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top:top + size, left:left + size]


def make_pair(img: torch.Tensor, size: int, scale: int, protocol: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
    """(HR, LR) uint8 from one decoded uint8 (3,H,W) image, as described in the module docstring."""
    check_protocol(protocol)
    if size % scale:
        raise ValueError(f"size {size} is not divisible by the scale {scale}")
    x = _float(img)
    hr = shorter_side_crop(x, size)
    if protocol == "paper":
        lr = bicubic_down(shorter_side_crop(gaussian_blur(x), size), scale)
    else:
        lr = bicubic_down(gaussian_blur(hr), scale)
    return _uint8(hr), _uint8(lr)


def sample_files(folder: str | os.PathLike, n: int | None = None, seed: int = 0) -> list[Path]:
    """The image files of a folder, sorted; ``n`` of them sampled with a fixed seed (kept in sorted order)."""
    files = list_images(folder)
    if n is not None and n < len(files):
        idx = np.sort(np.random.default_rng(seed).choice(len(files), size=n, replace=False))
        files = [files[i] for i in idx]
    return files


def _workers() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def _decode_pair(path: Path, size: int, scale: int, protocol: str) -> tuple[torch.Tensor, torch.Tensor]:
    img = read_rgb(path)
    h, w = img.shape[-2:]
    if min(h, w) < size:
        raise ImageError(f"image {path} is {h}x{w}, smaller than the {size}x{size} patch; "
                         f"remove it or use a smaller --size")
    return make_pair(img, size, scale, protocol)


def load_sr_folder(folder: str | os.PathLike, size: int, scale: int, protocol: str = "paper", *,
                   n: int | None = None, seed: int = 0) -> SRSet:
    """Decode a folder of training or validation images once into uint8 HR/LR tensors.

    Grayscale and RGBA files are converted to RGB; a file smaller than the patch is an error naming it.
    ``n`` samples that many files with ``seed`` from the sorted list (10k of COCO train2014 in the paper).
    """
    check_protocol(protocol)
    files = sample_files(folder, n, seed)
    with torch.inference_mode(), ThreadPoolExecutor(_workers()) as pool:
        pairs = list(pool.map(lambda p: _decode_pair(p, size, scale, protocol), files))
    return SRSet(torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]),
                 [p.name for p in files], str(folder))


def eval_pair(img: torch.Tensor, size: int, scale: int, protocol: str = "paper") -> tuple[torch.Tensor, torch.Tensor]:
    """(HR, LR) of one test image: ``paper`` a ``size`` centre crop, ``standard`` the mod-cropped full image."""
    check_protocol(protocol)
    if protocol == "paper":
        return make_pair(img, size, scale, protocol)
    hr = mod_crop(img, scale)
    return hr, _uint8(bicubic_down(gaussian_blur(_float(hr)), scale))


def load_test_folder(folder: str | os.PathLike, size: int, scale: int, protocol: str = "paper") -> list[SRImage]:
    """Decode a test folder (Set5, Set14, BSD100) into per-image HR/LR pairs."""
    files = list_images(folder)
    out = []
    with torch.inference_mode():
        for p in files:
            img = read_rgb(p)
            if protocol == "standard" and min(img.shape[-2:]) < 2 * scale:
                raise ImageError(f"test image {p} of {tuple(img.shape[-2:])} is too small for scale {scale}")
            hr, lr = eval_pair(img, size, scale, protocol)
            out.append(SRImage(p.name, hr, lr))
    return out
