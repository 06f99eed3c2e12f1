"""What PerceptualLoss, PerceptualMetric and LPIPS share: a loss network's per-tap distances between two image
batches, behind the input contract (input_contract.py), with everything a call could trip on checked when the
module is built (taps, tap sets, lin weights, weights source, resize) or before the network runs (images).

The loss network is held outside the module tree (no submodule, no parameters, no state_dict entries), so a
parent module's ``.train()``, ``.to()``, ``.half()``, optimizer or checkpoint never reaches it; it is built
lazily on the device of the first input and moved (rebuilt there) when the input's device changes.
"""
from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossnets.engine import LAYERS, LossNetwork, get_architecture
from lossnets.engine.input_size import probe_taps
from lossnets.engine.lin_weights import LPIPS_TAPS, load_lin_weights, lpips_layers, lpips_lin_weights
from lossnets.engine.tap_sets import LPIPS_PRESET, tap_sets, union_layers
from lossnets.engine.weights import file_state_dict, imagenet_checkpoint_path, imagenet_state_dict
from lossnets.kernels import feature_mse, perceptual_distance

from .input_contract import InputContract

DISTANCES = ("mse", "lpips")


@dataclass
class _Loaded:
    """The loss network and its lin weights on one device (a plain object, so not a submodule of the owner)."""
    net: LossNetwork
    lin: tuple[Tensor | None, ...]


def check_weights_source(arch: str, weights: str) -> None:
    """Fail now, not at the first call, when the weights cannot be had: ImageNet weights neither on disk nor
    downloadable (torchvision downloads them here if it can), or a weights file that is missing or unreadable."""
    a = get_architecture(arch)
    if weights == "imagenet":
        if not imagenet_checkpoint_path(a).is_file():
            imagenet_state_dict(a)
    elif weights != "random" and not weights.startswith(("random:", "imagenet:")):
        file_state_dict(weights)


class TapDistances(nn.Module):
    """A loss network's distance between two image batches, per tap and summed with per-tap weights."""

    def __init__(self, arch: str, layers=None, weights: str = "imagenet", *, distance: str, reduction: str,
                 lin=None, lin_sha256: str | None = None, layer_weights=None, input_range=(0, 1),
                 range_check: str = "error", range_margin: float = 0.25, resize=None, amp: str | None = None,
                 compile: bool = False, channels_last: bool = True, seed: int = 0, normalize: str = "imagenet"):
        """Options (each checked here, so that a mistake fails now and not at the first call):

        - ``arch``: a registered architecture (``lossnets list``), or lpips's names alex, vgg, squeeze.
        - ``layers``: a tap (E, S, M, L or any module path of the model, e.g. "features.9"), a tap set (taps
          joined by "+", e.g. "E+S+M+L", or "lpips": the lpips package's taps of alexnet, vgg16 and
          squeezenet1_1), or a list of them; every tap of them is computed once, and their distances are
          summed. None: "lpips" where ``lin`` is given, else E, S, M, L. Each tap must give a spatial map
          (N, C, H, W): a tap after the classifier's flatten is refused.
        - ``weights``: "imagenet" (torchvision's ImageNet weights, downloaded now if not on disk), "random"
          (torchvision's init, seeded by ``seed``), or a path to a state_dict of the full torchvision model.
        - ``distance``: "mse" (feature MSE) or "lpips" (the LPIPS distance: unit-normalised channels,
          squared difference, summed over channels, averaged over space; with ``lin``, weighted per channel).
        - ``reduction``: over the batch, "mean", "sum" or "none" (a value per image).
        - ``lin``: per-channel weights of the LPIPS distance: None (all 1, the baseline), "lpips" (LPIPS v0.1's
          weights from the installed lpips package, for layers="lpips"), or a file in lpips's format
          (``lin{i}.model.1.weight``, shape (1, C, 1, 1), one per tap in order); ``lin_sha256``: the file's
          expected sha256.
        - ``layer_weights``: each tap's weight in the sum, a dict by tap or a sequence in tap order (None: 1; for
          the mean tap set "kumar" alone, 1 / its number of taps: Kumar et al.'s mean ensemble).
        - ``input_range``, ``range_check``, ``range_margin``: the declared range of float images (mapped to
          [0, 1]) and what a value outside it does: "error" (beyond ``range_margin`` x its width),
          "warn" (once), "clamp" or "off"; see lossnets.input_contract.
        - ``resize``: a size or (H, W) the images are resized to (bilinear, antialiased) before the network;
          None: as they come. Images must be at least the smallest size each tap accepts (computed from the
          model; the error says it). A model built for one size (ViT, MaxViT) resizes any input to that size
          itself (its config says ``resize=224(bilinear)``).
        - ``amp``: None, "bf16" or "fp16" autocast; ``compile``: torch.compile the network; ``channels_last``:
          run it in channels-last memory format; ``seed``: of ``weights="random"``; ``normalize``: "imagenet"
          (the normalisation the weights expect) or "none".
        """
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if lin is not None and distance != "lpips":
            raise ValueError("lin weights weight the LPIPS distance's channels: use distance='lpips' with lin")
        self.arch = arch = get_architecture(arch).name  # an alias becomes the registered name
        self.distance, self.reduction = distance, reduction
        self.contract = InputContract(input_range, range_check, range_margin)
        self.sets = tap_sets(arch, self._default_layers(arch, layers, lin))
        layers = union_layers(self.sets)
        self._probes = self._check_taps(arch, layers)
        self.resize = (resize, resize) if isinstance(resize, int) else (tuple(resize) if resize else None)
        if self.resize:
            self._check_size("resize is", self.resize)
        lin_weights = self._lin_weights(arch, layers, lin, lin_sha256)
        self.lin_label = lin_weights.label if lin_weights else None
        self._lin_cpu = lin_weights.weights if lin_weights else (None,) * len(layers)
        check_weights_source(arch, str(weights))
        self._options = dict(arch=arch, layers=layers, weights=weights, seed=seed, normalize=normalize,
                             compile=compile, channels_last=channels_last, amp=amp)
        self._loaded = _Loaded(LossNetwork(**self._options, device="cpu", lazy=True), self._lin_cpu)
        self.layers = self._loaded.net.layers
        self.layer_weights = self._per_tap_weights(layer_weights)
        self.reset()

    def reset(self) -> None:
        """Forget any running state (none here; PerceptualMetric keeps running sums)."""

    @classmethod
    def init_with(cls, doc: str, **defaults):
        """A copy of ``__init__`` with other keyword defaults (``distance``, ``reduction``), so that a subclass's
        help() and signature show every option with its own default, none hidden behind ``**options``."""
        init = cls.__init__
        copy = types.FunctionType(init.__code__, init.__globals__, init.__name__, init.__defaults__,
                                  init.__closure__)
        copy.__kwdefaults__ = {**init.__kwdefaults__, **defaults}
        copy.__annotations__, copy.__doc__ = init.__annotations__, doc + "\n\n        " + init.__doc__
        return copy

    @staticmethod
    def _default_layers(arch: str, layers, lin):
        if layers is not None:
            return layers
        if lin is None:
            return LAYERS
        if lpips_layers(arch) is None:
            raise ValueError(f"give the layers that the lin weights {lin} belong to (layers=None means the lpips "
                             f"taps, known for {', '.join(LPIPS_TAPS)} only, not {arch})")
        return LPIPS_PRESET

    @staticmethod
    def _check_taps(arch: str, layers) -> dict:
        """Each tap's smallest input and output shape (probed on the meta device); a tap that gives no spatial
        map (after the flatten) is refused."""
        probes, a = probe_taps(arch, layers), get_architecture(arch)
        for layer, p in probes.items():
            # the engine turns token and channels-last outputs into maps (their tap's form); the rest must be one
            if len(p.shape) != 4 and getattr(a.resolve(layer), "form", "as_is") in ("as_is", "nchw"):
                spatial, shape = [t.layer + "=" + t.module for t in a.taps], ", ".join(map(str, p.shape[1:]))
                raise ValueError(f"tap {layer!r} of {arch} gives features of shape (N, {shape}), not a spatial map "
                                 f"(N, C, H, W): a tap must come before the classifier's flatten, e.g. "
                                 f"{', '.join(spatial)}")
        return probes

    def _check_size(self, what: str, size) -> None:
        """Images of ``size`` (H, W) reach the network: refuse them if a tap needs larger ones. A model built for one
        size (ViT, MaxViT) takes any: the loss network resizes its inputs to that size (antialiased interpolation,
        which works from 1x1 up; its config says ``resize=224(...)``)."""
        h, w = size
        small = {layer: p.min_side for layer, p in self._probes.items() if not p.max_side and min(h, w) < p.min_side}
        if small:
            need = max(small.values())
            raise ValueError(f"{what} {h}x{w}, too small for {self.arch}'s tap(s) "
                             + ", ".join(f"{k} (needs at least {s}x{s})" for k, s in small.items())
                             + f": give images of at least {need}x{need} (or resize={need})")

    @staticmethod
    def _lin_weights(arch: str, layers, lin, lin_sha256):
        if lin is None:
            return None
        if lin == "lpips":
            if lpips_layers(arch) != tuple(layers):
                raise ValueError(f"lin='lpips' (LPIPS v0.1) weighs the taps of layers='lpips' of "
                                 f"{', '.join(LPIPS_TAPS)}, not {'+'.join(layers)} of {arch}")
            return lpips_lin_weights(arch)
        return load_lin_weights(lin, arch, layers, sha256=lin_sha256)

    def _per_tap_weights(self, layer_weights) -> tuple[float, ...]:
        if layer_weights is None:  # 1 each; a mean tap set alone (kumar) averages its taps, as its rows do
            one = self.sets[0] if len(self.sets) == 1 and self.sets[0].mean else None
            return (1.0 / len(one.layers) if one else 1.0,) * len(self.layers)
        if isinstance(layer_weights, dict):
            arch = get_architecture(self.arch)
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
        lo, hi = self.contract.input_range
        parts.append(f"range=[{lo:g},{hi:g}]" + (",clamped" if self.contract.range_check == "clamp" else ""))
        if self.resize or not self._loaded.net.fixed_size:  # else the network's own resize=SIZE(mode) says it
            parts.append("resize=" + ("x".join(map(str, self.resize)) if self.resize else "none"))
        return " ".join(parts)

    def _on(self, device: torch.device) -> _Loaded:
        """The network and lin weights on ``device`` (rebuilt there, lazily, when the input moved)."""
        if self._loaded.net.device != device:
            net = LossNetwork(**self._options, device=device, lazy=True)
            self._loaded = _Loaded(net, tuple(None if w is None else w.to(device) for w in self._lin_cpu))
        return self._loaded

    def checked_pair(self, names: tuple[str, str], a, b, *, same_count: bool = True,
                     contract: InputContract | None = None) -> tuple[Tensor, Tensor]:
        """Two batches under the input contract (``contract``, default this module's), resized, and checked
        against the taps' smallest inputs: float RGB in [0, 1], ready for ``features``; every error names the
        input (``names``) and the fact."""
        x, y = (contract or self.contract).pair(names, a, b, same_count=same_count)
        if self.resize:
            x, y = (F.interpolate(t, size=self.resize, mode="bilinear", align_corners=False, antialias=True)
                    for t in (x, y))
        else:
            self._check_size(f"{names[0]} and {names[1]} are", x.shape[2:])
        return x, y

    def features(self, x: Tensor) -> dict[str, Tensor]:
        """``{tap: features}`` of images that passed ``checked_pair``, one pass."""
        return self._on(x.device).net(x)

    def _distance(self, a: Tensor, b: Tensor, lin: Tensor | None) -> Tensor:
        return perceptual_distance(a, b, lin) if self.distance == "lpips" else feature_mse(a, b, reduction="none")

    def per_tap(self, fa: dict[str, Tensor], fb: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{tap: (N,)}`` distances of paired features (tap weights not applied)."""
        lin = self._loaded.lin
        return {layer: self._distance(fa[layer], fb[layer], lin[i]) for i, layer in enumerate(self.layers)}

    def per_set(self, per_tap: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{tap set: sum (kumar: mean) of its taps' distances}`` (tap weights not applied), as the command line's
        rows."""
        return {s.name: s.combine(per_tap[layer] for layer in s.layers) for s in self.sets}

    def total(self, per_tap: dict[str, Tensor]) -> Tensor:
        """The tap-weighted sum of per-tap distances."""
        return sum(w * d for w, d in zip(self.layer_weights, per_tap.values()))

    def spatial_map(self, fa: dict[str, Tensor], fb: dict[str, Tensor], size) -> Tensor:
        """(N,1,H,W) map at ``size``: each tap's per-pixel distance bilinearly upsampled (as lpips'
        ``spatial=True``), tap-weighted and summed; a tap's distance is its map's mean before upsampling."""
        return sum(w * m for w, m in zip(self.layer_weights, self.spatial_per_tap(fa, fb, size).values()))

    def spatial_per_tap(self, fa: dict[str, Tensor], fb: dict[str, Tensor], size) -> dict[str, Tensor]:
        """``{tap: (N,1,H,W)}``: each tap's per-pixel distance bilinearly upsampled to ``size`` (weights not
        applied)."""
        lin, maps = self._loaded.lin, {}
        for i, layer in enumerate(self.layers):
            a, b = fa[layer], fb[layer]
            n, c, h, w = a.shape
            pixels = lambda f: f.permute(0, 2, 3, 1).reshape(n * h * w, c, 1, 1)  # noqa: E731 (a pixel a sample)
            m = self._distance(pixels(a), pixels(b), lin[i]).view(n, 1, h, w)
            maps[layer] = F.interpolate(m, size=tuple(size), mode="bilinear", align_corners=False)
        return maps

    def reduce(self, d: Tensor) -> Tensor:
        return d.mean() if self.reduction == "mean" else d.sum() if self.reduction == "sum" else d

    def extra_repr(self) -> str:
        return f"{self.config}, reduction={self.reduction}, {self.contract!r}"
