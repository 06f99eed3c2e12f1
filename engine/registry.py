"""The registry of loss networks: architectures and their four taps, read from data files.

A new architecture registers by adding a row to ``data/architectures.csv`` and four rows to
``data/extraction_layers.csv``; no code changes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import torchvision

DATA = Path(__file__).parent / "data"
LAYERS = ("E", "S", "M", "L")
NORMALIZATIONS = {  # per-channel (mean, std) applied to [0, 1] images
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # torchvision's googlenet/inception_v3 ImageNet weights expect this (their transform_input)
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class Tap:
    arch: str
    layer: str  # E, S, M or L
    paper_name: str
    module: str  # torchvision module path whose output is the tap
    channels: int | None = None  # channels at the tap (registered taps; None for an ad-hoc module path)


@dataclass(frozen=True)
class Architecture:
    name: str
    imagenet_top1: float
    depth: int
    mflops_224: int  # the paper's figure: multiply-accumulates at 224x224, in millions
    weights_enum: str  # torchvision weights enum member, e.g. "VGG16_Weights.IMAGENET1K_V1"
    normalization: str  # key of NORMALIZATIONS that the ImageNet weights expect
    skip_connections: bool
    branching: bool
    conv1x1: bool
    batch_norm: bool
    taps: tuple[Tap, ...]

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return NORMALIZATIONS[self.normalization]

    def tap(self, layer: str) -> Tap:
        """The tap for a layer letter or a module path; raises ValueError listing the valid ones."""
        for t in self.taps:
            if layer in (t.layer, t.module):
                return t
        valid = ", ".join(f"{t.layer}={t.module}" for t in self.taps)
        raise ValueError(f"unknown tap {layer!r} for {self.name}; valid taps: {valid}, or any module path of the "
                         f"model (as named by torchvision.models.{self.name}().named_modules())")

    def resolve(self, layer: str) -> Tap:
        """A registered tap by letter or path, or any other module path of the model as an ad-hoc tap."""
        try:
            return self.tap(layer)
        except ValueError:
            if layer and layer in dict(meta_model(self).named_modules()):
                return Tap(self.name, layer, layer, layer)
            raise

    def build(self, **kwargs) -> torch.nn.Module:
        """The full torchvision model with random init (kwargs go to the builder)."""
        if self.name in ("googlenet", "inception_v3"):
            # aux heads are never part of a loss network; transform_input is done by our normalisation
            kwargs = {"aux_logits": False, "transform_input": False, "init_weights": True, **kwargs}
        return torchvision.models.get_model(self.name, weights=None, **kwargs)

    def weights(self) -> torchvision.models.WeightsEnum:
        enum_name, member = self.weights_enum.split(".")
        return getattr(getattr(torchvision.models, enum_name), member)


@cache
def meta_model(arch: Architecture) -> torch.nn.Module:
    """The full torchvision model on the meta device: shapes without weights or memory (built once;
    read it, never change it: a network to load weights into is built anew). Built outside inference mode
    whatever the caller's mode, so that its parameters are not inference tensors that autograd-tracking callers
    (the FLOP counter) would refuse."""
    with torch.inference_mode(False), torch.device("meta"):
        return arch.build()


def _bool(s: str) -> bool:
    return s.strip().lower() in ("1", "true", "yes")


@cache
def architectures() -> dict[str, Architecture]:
    """All registered architectures by name, in the paper's order."""
    taps: dict[str, list[Tap]] = {}
    with open(DATA / "extraction_layers.csv", newline="") as f:
        for r in csv.DictReader(f):
            taps.setdefault(r["arch"], []).append(Tap(r["arch"], r["layer"], r["paper_name"], r["torchvision_module"],
                                                    int(r["channels"])))
    out = {}
    with open(DATA / "architectures.csv", newline="") as f:
        for r in csv.DictReader(f):
            name = r["arch"]
            out[name] = Architecture(
                name=name, imagenet_top1=float(r["imagenet_top1"]), depth=int(r["depth"]),
                mflops_224=int(r["mflops_224"]), weights_enum=r["weights_enum"],
                normalization=r["normalization"], skip_connections=_bool(r["skip_connections"]),
                branching=_bool(r["branching"]), conv1x1=_bool(r["conv1x1"]), batch_norm=_bool(r["batch_norm"]),
                taps=tuple(sorted(taps.get(name, ()), key=lambda t: LAYERS.index(t.layer))),
            )
    return out


# the lpips package's names of its networks, accepted everywhere an architecture is named
ALIASES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def get_architecture(name: str) -> Architecture:
    """The registered architecture by name or alias (ALIASES); raises ValueError listing the valid names."""
    archs = architectures()
    name = ALIASES.get(name, name)
    if name not in archs:
        raise ValueError(f"unknown architecture {name!r}; valid architectures: {', '.join(archs)} "
                         f"(aliases: {', '.join(f'{k}={v}' for k, v in ALIASES.items())})")
    return archs[name]


def resolve_archs(names) -> list[str]:
    """Expand None/"all" to every architecture and check the names."""
    if names is None or names == "all" or list(names) == ["all"]:
        return list(architectures())
    return [get_architecture(n).name for n in names]


def all_taps() -> list[Tap]:
    """The 56 taps of the grid."""
    return [t for a in architectures().values() for t in a.taps]
