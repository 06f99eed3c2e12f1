"""The input contract of PerceptualLoss, PerceptualMetric and LPIPS, checked before any network runs: what a
batch of images must be, and errors that name the input and the fact.

Two batches are compared image by image, so they must hold as many images of one size. Each is (N, 1|3, H, W),
uint8 (scaled by 1/255) or floating point in the declared ``input_range`` (mapped to [0, 1]); one channel is
repeated to RGB. Empty batches, NaN and Inf are refused. Values outside ``input_range`` are handled by
``range_check``:

- ``"error"`` (default): refused when a value lies beyond the range by more than ``range_margin`` times its
  width (default 0.25, so [-0.25, 1.25] for (0, 1)); values within that margin pass unchanged. This stops the
  pitfall the check exists for: a [-1, 1] batch given to a (0, 1) network (any pixel darker than 37.5% grey
  reaches below -0.25) or floats in [0, 255]. It lets through the overshoot of bicubic upsampling (on
  scikit-image's photos, 2x and 4x: -0.18..1.18 at worst, on the checkerboard), which training must survive.
  ``range_margin=0`` makes the check strict.
- ``"warn"``: the same test, a warning (once per module) instead of the error; values pass unchanged.
- ``"clamp"``: every value is clamped into ``input_range`` (no error, no warning).
- ``"off"``: no value checks at all (no NaN/Inf check either, and no device sync per call).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

RANGE_CHECKS = ("error", "warn", "clamp", "off")


def exact(value: float, dtype: torch.dtype) -> str:
    """The shortest decimal that reads back as ``value`` in ``dtype`` (1.0001 in float32 prints as 1.0001, not
    1.000100016593933 nor 1)."""
    return repr(value) if dtype == torch.float64 else str(np.float32(value))


def shape_of(images) -> str:
    return str(tuple(images.shape)) if isinstance(images, Tensor) else type(images).__name__


class InputContract:
    """The contract for one ``input_range`` (low, high), ``range_check`` and ``range_margin`` (see the module)."""

    def __init__(self, input_range=(0, 1), range_check: str = "error", range_margin: float = 0.25):
        lo, hi = (float(v) for v in input_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"input_range must be (low, high) with low < high, got {input_range}")
        if range_check not in RANGE_CHECKS:
            raise ValueError(f"range_check must be one of {RANGE_CHECKS}, got {range_check!r}")
        if not (math.isfinite(range_margin) and range_margin >= 0):
            raise ValueError(f"range_margin must be a fraction >= 0 of the range's width, got {range_margin}")
        self.input_range, self.range_check, self.range_margin = (lo, hi), range_check, float(range_margin)
        self._warned = False

    def pair(self, names: tuple[str, str], a, b, *, same_count: bool = True) -> tuple[Tensor, Tensor]:
        """Two batches as float RGB in [0, 1], after checking each and that they hold images of one size (and,
        with ``same_count``, as many)."""
        for name, images in zip(names, (a, b)):
            self._check_form(name, images)
        if a.shape[2:] != b.shape[2:] or (same_count and a.shape[0] != b.shape[0]):
            what = "as many images of one size" if same_count else "images of one size"
            raise ValueError(f"{names[0]} is {shape_of(a)}, {names[1]} is {shape_of(b)}: the two batches must hold "
                             f"{what} (N, C, H, W); resize one, e.g. torch.nn.functional.interpolate("
                             f"{names[1]}, size={tuple(a.shape[2:])}, mode='bilinear', antialias=True)")
        return self._to_unit(names[0], a), self._to_unit(names[1], b)

    def images(self, name: str, images) -> Tensor:
        """One batch as float RGB in [0, 1], checked."""
        self._check_form(name, images)
        return self._to_unit(name, images)

    def _to_unit(self, name: str, images: Tensor) -> Tensor:
        if images.dtype == torch.uint8:
            x = images.float() / 255
        else:
            x = self._in_range(name, images)
            lo, hi = self.input_range
            x = x if (lo, hi) == (0, 1) else (x - lo) / (hi - lo)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    @staticmethod
    def _check_form(name: str, images) -> None:
        if not isinstance(images, Tensor) or images.dim() != 4:
            raise ValueError(f"{name} must be a batch of images of shape (N, C, H, W), got {shape_of(images)}")
        if images.shape[1] not in (1, 3):
            raise ValueError(f"{name} must have 3 (RGB) or 1 (grayscale, repeated to RGB) channels, got "
                             f"{images.shape[1]} in shape {shape_of(images)}"
                             + (f" (drop alpha: {name}[:, :3])" if images.shape[1] == 4 else ""))
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise TypeError(f"{name} must be uint8 or floating-point images, got {images.dtype}")
        if not images.numel():
            raise ValueError(f"{name} is an empty batch {shape_of(images)}: there are no images to compare")

    def _in_range(self, name: str, images: Tensor) -> Tensor:
        """``images`` after the NaN/Inf and range checks (clamped under ``range_check="clamp"``)."""
        if self.range_check == "off":
            return images
        x = images.detach()
        seen_lo, seen_hi = torch.stack(torch.aminmax(x)).tolist()  # one pass, one sync
        if not (math.isfinite(seen_lo) and math.isfinite(seen_hi)):
            nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
            bad = torch.nonzero(~torch.isfinite(x).flatten(1).all(1)).flatten().tolist()
            raise ValueError(f"{name} holds {nan} NaN and {inf} Inf values (of {x.numel()}), in image(s) "
                             f"{', '.join(map(str, bad[:10]))}{' ...' if len(bad) > 10 else ''} of the batch")
        lo, hi = self.input_range
        if self.range_check == "clamp":
            return images.clamp(lo, hi) if seen_lo < lo or seen_hi > hi else images
        margin = self.range_margin * (hi - lo)
        beyond = ([f"min {exact(seen_lo, x.dtype)}"] if seen_lo < lo - margin else []) + \
                 ([f"max {exact(seen_hi, x.dtype)}"] if seen_hi > hi + margin else [])
        if beyond and not (self.range_check == "warn" and self._warned):
            message = (f"{name} has {' and '.join(beyond)}, outside input_range=({lo:g}, {hi:g}) by more than "
                       f"range_margin={self.range_margin:g} of its width: declare the range your images use, e.g. "
                       "input_range=(-1, 1) for lpips-style images in [-1, 1] (mapped to [0, 1]), or pass "
                       "range_check='clamp' to clamp them into the range")
            if self.range_check == "error":
                raise ValueError(message)
            warnings.warn(message + " (warned once)", stacklevel=4)
            self._warned = True
        return images

    def __repr__(self) -> str:
        lo, hi = self.input_range
        return f"input_range=({lo:g}, {hi:g}), range_check={self.range_check!r}, range_margin={self.range_margin:g}"
