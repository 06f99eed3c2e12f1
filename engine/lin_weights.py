"""LPIPS lin weights: the per-channel weights of the LPIPS distance, one (C,) vector per tap, loaded strictly.

The file format is the lpips package's: a torch.save'd dict holding ``lin{i}.model.1.weight`` of shape
(1, C_i, 1, 1) for the i-th tap and nothing else. Unknown or missing keys, a wrong channel count, a negative
or non-finite weight and a sha256 mismatch are errors naming the file and the key: weights are never
silently ignored. ``lin="lpips"`` reads the LPIPS v0.1 weights shipped inside the lpips package.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lossnets.errors import LossnetsError, MissingPackageError

from .atomic import atomic_write
from .forms import cut
from .registry import get_architecture, meta_model
from .torch_files import load_torch_file

LPIPS_VERSION = "0.1"
# architecture -> (lpips's name for it, the module paths its lin layers sit on, in lin order)
LPIPS_TAPS = {
    "alexnet": ("alex", ("features.1", "features.4", "features.7", "features.9", "features.11")),
    "vgg16": ("vgg", ("features.3", "features.8", "features.15", "features.22", "features.29")),
    "squeezenet1_1": ("squeeze", ("features.1", "features.4", "features.7", "features.9", "features.10",
                                  "features.11", "features.12")),
}


class LinWeightsError(LossnetsError, ValueError):
    """A lin weights file that does not hold exactly the weights its taps need."""


@dataclass(frozen=True)
class LinWeights:
    """One (C,) float32 weight vector per tap, in tap order, and a label saying where they came from."""
    weights: tuple[torch.Tensor, ...]
    label: str  # e.g. "lpips-v0.1@3e1f09a2": version or file name @ the tensors' digest prefix


def lin_digest(weights) -> str:
    """sha256 of the weight vectors' float32 values, in order: the same weights give the same digest
    whatever file or format they came from."""
    h = hashlib.sha256()
    for w in weights:
        h.update(torch.as_tensor(w).detach().float().cpu().contiguous().numpy().tobytes())
        h.update(b";")
    return h.hexdigest()


def tap_channels(arch: str, layers) -> list[int]:
    """Channels at each tap (letters or module paths), from a forward pass on the meta device."""
    a = get_architecture(arch)
    taps = [a.resolve(layer) for layer in layers]
    out = cut(meta_model(a), taps)(torch.empty(1, 3, 224, 224, device="meta"))  # each tap in its form (ViT: C)
    return [out[t.layer].shape[1] for t in taps]


def load_lin_weights(path, arch: str, layers, *, sha256: str | None = None, version: str | None = None) -> LinWeights:
    """The lin weights in file ``path`` for ``layers`` of ``arch`` (lin{i} belongs to the i-th layer), checked
    strictly; ``sha256``: the file's expected checksum; ``version``: the label's name (default: the file name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lin weights file {path} does not exist")
    if sha256 is not None:
        seen = hashlib.sha256(path.read_bytes()).hexdigest()
        if seen != sha256.lower():
            raise LinWeightsError(f"lin weights file {path}: sha256 is {seen}, expected {sha256}")
    state = load_torch_file(path, "lin weights in lpips's format: lin{i}.model.1.weight of shape (1, C, 1, 1)")
    if not isinstance(state, dict):
        raise LinWeightsError(f"lin weights file {path} holds a {type(state).__name__}, expected a dict")
    channels = tap_channels(arch, layers)
    expected = [f"lin{i}.model.1.weight" for i in range(len(channels))]
    unknown = sorted(set(state) - set(expected))
    if unknown:
        raise LinWeightsError(f"lin weights file {path}: unknown key {unknown[0]!r} (expected exactly {expected} "
                              f"for the {len(channels)} taps {list(layers)} of {arch})")
    weights = []
    for key, c in zip(expected, channels):
        if key not in state:
            raise LinWeightsError(f"lin weights file {path}: missing key {key!r} (expected exactly {expected})")
        w = state[key]
        if not isinstance(w, torch.Tensor) or tuple(w.shape) != (1, c, 1, 1):
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise LinWeightsError(f"lin weights file {path}: {key} has shape {shape}, the tap needs (1, {c}, 1, 1)")
        if not torch.isfinite(w).all() or (w < 0).any():
            raise LinWeightsError(f"lin weights file {path}: {key} holds negative or non-finite weights "
                                  f"(min {w.min().item():.4g}); lin weights must be >= 0")
        weights.append(w.detach().float().reshape(c).clone())
    return LinWeights(tuple(weights), f"{version or path.name}@{lin_digest(weights)[:8]}")


def lpips_weights_path(arch: str) -> Path:
    """The LPIPS v0.1 lin weights file of ``arch`` inside the installed lpips package."""
    if arch not in LPIPS_TAPS:
        raise ValueError(f"lpips has lin weights for {', '.join(LPIPS_TAPS)} only, not {arch!r}")
    try:
        import lpips
    except ImportError as e:
        raise MissingPackageError("lin='lpips' reads the LPIPS v0.1 weights shipped with the lpips package, which is "
                                  "not installed: `pip install lpips`, or pass lin=PATH to a file in its format "
                                  "(lin{i}.model.1.weight, shape (1, C, 1, 1))") from e
    return Path(os.path.dirname(lpips.__file__)) / "weights" / f"v{LPIPS_VERSION}" / f"{LPIPS_TAPS[arch][0]}.pth"


def lpips_lin_weights(arch: str) -> LinWeights:
    """The LPIPS v0.1 lin weights of ``arch`` (alexnet, vgg16 or squeezenet1_1) for its lpips taps."""
    return load_lin_weights(lpips_weights_path(arch), arch, LPIPS_TAPS[arch][1], version=f"lpips-v{LPIPS_VERSION}")


def lpips_layers(arch: str) -> tuple[str, ...] | None:
    """The layer names of the lpips package's taps of ``arch`` (a registered module path as its letter), in lin
    order; None for a network lpips has no lin weights for."""
    if arch not in LPIPS_TAPS:
        return None
    a = get_architecture(arch)
    return tuple(a.resolve(m).layer for m in LPIPS_TAPS[arch][1])


def save_lin_weights(path, weights) -> Path:
    """Write ``weights`` (a (C,) vector per tap, in order) in the lpips package's format, atomically."""
    state = {f"lin{i}.model.1.weight": torch.as_tensor(w).detach().float().cpu().reshape(1, -1, 1, 1).clone()
             for i, w in enumerate(weights)}
    return atomic_write(path, lambda f: torch.save(state, f))


def lin_file(folder, arch: str, name: str) -> Path:
    """Where a folder of lin weights (as `lossnets lin train` writes it) keeps those of ``arch``'s tap set ``name``."""
    return Path(folder) / arch / f"{name}.pth"


def resolve_lin(spec, arch: str, name: str, layers) -> LinWeights:
    """The lin weights ``spec`` gives the tap set ``name`` (taps ``layers``) of ``arch``: ``"lpips"`` (LPIPS v0.1,
    for the lpips tap set of alexnet, vgg16 and squeezenet1_1), a file in the lpips format, or a folder of them
    (``<folder>/<arch>/<name>.pth``)."""
    if spec == "lpips":
        if lpips_layers(arch) != tuple(layers):
            raise LinWeightsError(f"lin 'lpips' (LPIPS v{LPIPS_VERSION}) weighs the taps of the tap set 'lpips' of "
                                  f"{', '.join(LPIPS_TAPS)}, not {name} of {arch}")
        return lpips_lin_weights(arch)
    path = Path(spec)
    if path.is_dir():
        path = lin_file(path, arch, name)
        if not path.is_file():
            raise FileNotFoundError(f"lin weights folder {spec} has no {arch}/{name}.pth for the tap set {name} "
                                    f"of {arch} (train them with `lossnets lin train --out {spec}`)")
    return load_lin_weights(path, arch, layers)
