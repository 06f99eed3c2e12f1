"""What PerceptualLoss and PerceptualMetric share: the input contract and a loss network's per-tap distances.

The loss network is held outside the module tree (no submodule, no parameters, no state_dict entries), so a
parent module's ``.train()``, ``.to()``, ``.half()``, optimizer or checkpoint never reaches it; it is built
lazily on the device of the first input and moved (rebuilt there) when the input's device changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossnets.engine import LAYERS, LossNetwork, get_architecture
from lossnets.engine.lin_weights import LPIPS_TAPS, load_lin_weights, lpips_lin_weights
from lossnets.kernels import feature_mse, perceptual_distance

DISTANCES = ("mse", "lpips")


def to_unit_range(images: Tensor, input_range: tuple[float, float]) -> Tensor:
    """The input contract: (N,1|3,H,W) images as float RGB in [0,1]. uint8 is scaled by 1/255; a float batch
    must lie in ``input_range`` (checked on every call) and is mapped from it; one channel is repeated to RGB."""
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"expected a batch of images of shape (N, C, H, W), got {shape}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"expected 3 (RGB) or 1 (grayscale, repeated to RGB) channels, got {images.shape[1]} "
                         f"in shape {tuple(images.shape)}" + (" (drop alpha: images[:, :3])" if images.shape[1] == 4
                                                               else ""))
    if images.dtype == torch.uint8:
        x = images.float() / 255
    elif images.is_floating_point():
        lo, hi = input_range
        if images.numel():
            seen_lo, seen_hi = (v.item() for v in torch.aminmax(images.detach()))
            if not (lo <= seen_lo and seen_hi <= hi):
                raise ValueError(
                    f"images span [{seen_lo:.4g}, {seen_hi:.4g}], outside the declared input_range=({lo:g}, {hi:g}); "
                    "declare the range your images use, e.g. input_range=(-1, 1) for lpips-style images in [-1, 1] "
                    "(they are then mapped to [0, 1]), or clamp them into the declared range")
        x = images if (lo, hi) == (0, 1) else (images - lo) / (hi - lo)
    else:
        raise TypeError(f"expected uint8 or floating-point images, got {images.dtype}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@dataclass
class _Loaded:
    """The loss network and its lin weights on one device (a plain object, so not a submodule of the owner)."""
    net: LossNetwork
    lin: tuple[Tensor | None, ...]


class TapDistances(nn.Module):
    """A loss network's distance between two image batches, per tap and summed with per-tap weights.

    ``distance``: "mse" (feature MSE) or "lpips" (the LPIPS distance: unit-normalised channels, optionally
    weighted per channel by ``lin``: None, "lpips" for the lpips package's v0.1 weights, or a path to a file
    in its format, checked against ``lin_sha256`` if given). ``layers``: taps (letters or module paths);
    None is the lpips taps where ``lin`` is given, else E, S, M, L. ``layer_weights``: a dict by tap or a
    sequence in tap order (default all 1). ``resize``: an (H, W) or size the images are bilinearly resized to
    before the network (None: as they come). The rest are LossNetwork's options.
    """

    def __init__(self, arch: str, layers=None, weights: str = "imagenet", *, distance: str, lin=None,
                 lin_sha256: str | None = None, reduction: str = "mean", input_range=(0, 1), layer_weights=None,
                 resize=None, amp: str | None = None, compile: bool = False, channels_last: bool = True,
                 seed: int = 0, normalize: str = "imagenet"):
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if lin is not None and distance != "lpips":
            raise ValueError("lin weights weight the LPIPS distance's channels: use distance='lpips' with lin")
        lo, hi = (float(v) for v in input_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"input_range must be (low, high) with low < high, got {input_range}")
        self.distance, self.reduction, self.input_range = distance, reduction, (lo, hi)
        self.resize = (resize, resize) if isinstance(resize, int) else (tuple(resize) if resize else None)
        layers = self._default_layers(arch, layers, lin)
        lin_weights = None
        if lin == "lpips":
            lin_weights = lpips_lin_weights(arch)
            if [get_architecture(arch).resolve(layer).module for layer in layers] != list(LPIPS_TAPS[arch][1]):
                raise ValueError(f"lin='lpips' weighs the lpips taps of {arch} {LPIPS_TAPS[arch][1]}, not {layers}")
        elif lin is not None:
            lin_weights = load_lin_weights(lin, arch, layers, sha256=lin_sha256)
        self.lin_label = lin_weights.label if lin_weights else None
        self._lin_cpu = lin_weights.weights if lin_weights else (None,) * len(layers)
        self._options = dict(arch=arch, layers=layers, weights=weights, seed=seed, normalize=normalize,
                             compile=compile, channels_last=channels_last, amp=amp)
        self._loaded = _Loaded(LossNetwork(**self._options, device="cpu", lazy=True), self._lin_cpu)
        self.layers = self._loaded.net.layers
        self.layer_weights = self._per_tap_weights(layer_weights)

    @staticmethod
    def _default_layers(arch: str, layers, lin) -> tuple:
        if layers is not None:
            return (layers,) if isinstance(layers, str) else tuple(layers)
        if lin is None:
            return LAYERS
        if arch not in LPIPS_TAPS:
            raise ValueError(f"give the layers that the lin weights belong to (lpips taps are known for "
                             f"{', '.join(LPIPS_TAPS)} only)")
        return LPIPS_TAPS[arch][1]

    def _per_tap_weights(self, layer_weights) -> tuple[float, ...]:
        if layer_weights is None:
            return (1.0,) * len(self.layers)
        if isinstance(layer_weights, dict):
            arch = get_architecture(self._options["arch"])
            by_tap = {arch.resolve(k).layer: float(v) for k, v in layer_weights.items()}
            if set(by_tap) != set(self.layers):
                raise ValueError(f"layer_weights must give every tap {self.layers} a weight, got {list(layer_weights)}")
            return tuple(by_tap[layer] for layer in self.layers)
        if len(layer_weights) != len(self.layers):
            raise ValueError(f"layer_weights has {len(layer_weights)} values for {len(self.layers)} taps {self.layers}")
        return tuple(float(v) for v in layer_weights)

    @cached_property
    def config(self) -> str:
        """The loss network's config and what this distance adds: distance, lin weights, tap weights, input
        range and resize."""
        parts = [self._loaded.net.config, f"distance={self.distance}"]
        if self.lin_label:
            parts.append(f"lin={self.lin_label}")
        if any(w != 1 for w in self.layer_weights):
            parts.append("tap_weights=" + ",".join(f"{w:g}" for w in self.layer_weights))
        lo, hi = self.input_range
        parts += [f"range=[{lo:g},{hi:g}]", "resize=" + ("x".join(map(str, self.resize)) if self.resize else "none")]
        return " ".join(parts)

    def _on(self, device: torch.device) -> _Loaded:
        """The network and lin weights on ``device`` (rebuilt there, lazily, when the input moved)."""
        if self._loaded.net.device != device:
            net = LossNetwork(**self._options, device=device, lazy=True)
            self._loaded = _Loaded(net, tuple(None if w is None else w.to(device) for w in self._lin_cpu))
        return self._loaded

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """``{tap: features}`` of images under the input contract, one pass."""
        x = to_unit_range(images, self.input_range)
        if self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False, antialias=True)
        return self._on(x.device).net(x)

    def _distance(self, a: Tensor, b: Tensor, lin: Tensor | None) -> Tensor:
        return perceptual_distance(a, b, lin) if self.distance == "lpips" else feature_mse(a, b, reduction="none")

    def per_tap(self, fa: dict[str, Tensor], fb: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{tap: (N,)}`` distances of paired features (tap weights not applied)."""
        lin = self._loaded.lin
        return {layer: self._distance(fa[layer], fb[layer], lin[i]) for i, layer in enumerate(self.layers)}

    def total(self, per_tap: dict[str, Tensor]) -> Tensor:
        """The tap-weighted sum of per-tap distances."""
        return sum(w * d for w, d in zip(self.layer_weights, per_tap.values()))

    def spatial(self, fa: dict[str, Tensor], fb: dict[str, Tensor], size) -> Tensor:
        """(N,1,H,W) map at ``size``: each tap's per-pixel distance bilinearly upsampled (as lpips'
        ``spatial=True``), tap-weighted and summed; a tap's distance is its map's mean before upsampling."""
        lin, maps = self._loaded.lin, []
        for i, layer in enumerate(self.layers):
            a, b = fa[layer], fb[layer]
            n, c, h, w = a.shape
            pixels = lambda f: f.permute(0, 2, 3, 1).reshape(n * h * w, c, 1, 1)  # noqa: E731 (a pixel a sample)
            m = self._distance(pixels(a), pixels(b), lin[i]).view(n, 1, h, w)
            maps.append(self.layer_weights[i] * F.interpolate(m, size=tuple(size), mode="bilinear",
                                                              align_corners=False))
        return sum(maps)

    def reduce(self, d: Tensor) -> Tensor:
        return d.mean() if self.reduction == "mean" else d.sum() if self.reduction == "sum" else d

    def extra_repr(self) -> str:
        return f"{self.config}, reduction={self.reduction}"
