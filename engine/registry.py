"""The registry of loss networks: architectures and their taps, read from data files.

The study's 14 (``architectures()``): a row of ``data/architectures.csv`` and their Table II taps in
``data/extraction_layers.csv``. The zoo (``zoo()``): every torchvision classifier, its taps in ``data/zoo_taps.csv``
(for the other 66 by the tap rule of tap_rule.py, derived from the model by ``engine/data/make_zoo.py``; for the 14
their Table II taps with stride, form and relative depth) and its weight recipes in ``data/recipes.csv``.
Reading the registry builds no model.
"""
from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from functools import cache

import torch
import torchvision
from torch import nn

from .catalog import (ALIASES, LAYERS, Tap, arch_fields, arch_names, blocks, canonical, study_rows,  # noqa: F401
                      taps, zoo_rows)
from .recipes import Recipe, get_recipe, parse_spec, recipes
from .tap_rule import form_of, trace, trace_size

NORMALIZATIONS = {  # per-channel (mean, std) applied to [0, 1] images
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # torchvision's googlenet/inception_v3 ImageNet weights expect this (their transform_input)
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class Architecture:
    name: str
    imagenet_top1: float  # of the recipe that ``imagenet`` names (the study's V1 for the 14, else the DEFAULT)
    depth: int | None  # the paper's figure (None outside the study)
    mflops_224: int | None  # the paper's figure: multiply-accumulates at 224x224, in millions (None outside it)
    weights_enum: str  # the recipe ``imagenet`` names, e.g. "VGG16_Weights.IMAGENET1K_V1"
    normalization: str  # "inception" where the model's transform_input is done by our normalisation, else "recipe"
    skip_connections: bool | None  # the paper's attributes (None outside the study)
    branching: bool | None
    conv1x1: bool | None
    batch_norm: bool | None
    taps: tuple[Tap, ...]
    family: str = ""
    study: bool = True  # one of the study's 14
    fixed_size: int | None = None  # the only input side the model built without weights accepts (ViT, MaxViT)

    @property
    def recipes(self) -> tuple[Recipe, ...]:
        """Every ImageNet weight recipe of the architecture (torchvision's enum)."""
        return recipes()[self.name]

    def recipe(self, weights: str = "imagenet") -> Recipe | None:
        """The recipe a weights spec names (``imagenet``, ``imagenet:NAME``); None for random weights or a file."""
        return parse_spec(self.name, str(weights), self.weights_enum.split(".")[1])

    def mean_std(self, recipe: Recipe | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) for [0, 1] images: the recipe's (default: the one ``imagenet`` names)."""
        if self.normalization in NORMALIZATIONS:
            return NORMALIZATIONS[self.normalization]
        recipe = recipe or self.recipe()
        return recipe.mean, recipe.std

    def tap(self, layer: str) -> Tap:
        """The tap for a layer letter or a module path; raises ValueError listing the valid ones."""
        for t in self.taps:
            if layer in (t.layer, t.module):
                return t
        valid = ", ".join(f"{t.layer}={t.module}" for t in self.taps)
        raise ValueError(f"unknown tap {layer!r} for {self.name}; valid taps: {valid}, or any module path of the "
                         f"model (as named by torchvision.models.{self.name}().named_modules())")

    def resolve(self, layer: str) -> Tap:
        """A registered tap by letter or path, a block tap by its path (catalog.blocks), or any other module path
        of the model as an ad-hoc tap."""
        try:
            return self.tap(layer)
        except ValueError:
            if block := next((b for b in blocks(self.name) if b.module == layer), None):
                return block
            if layer and layer in dict(meta_model(self).named_modules()):
                return Tap(self.name, layer, layer, layer, form=_adhoc_form(self, layer))
            raise

    def build(self, size: int | None = None, meta: bool = False, **kwargs) -> torch.nn.Module:
        """The full torchvision model with random init (kwargs go to the builder); ``size``: the fixed input side
        of a model that has one (a ViT recipe's 384), ``meta``: on the meta device (shapes only, nothing
        initialised)."""
        if self.name in ("googlenet", "inception_v3"):
            # aux heads are never part of a loss network; transform_input is done by our normalisation
            kwargs = {"aux_logits": False, "transform_input": False, "init_weights": True, **kwargs}
        if size is not None and size != self.fixed_size:
            if self.fixed_size is None:
                raise ValueError(f"{self.name} has no fixed input size to set to {size}")
            init = inspect.signature(type(meta_model(self)).__init__).parameters
            kwargs[next(k for k in ("image_size", "input_size") if k in init)] = size
        with params_on_meta() if meta else contextlib.nullcontext():
            return torchvision.models.get_model(self.name, weights=None, **kwargs)

    def weights(self) -> torchvision.models.WeightsEnum:
        enum_name, member = self.weights_enum.split(".")
        return getattr(getattr(torchvision.models, enum_name), member)


@contextlib.contextmanager
def params_on_meta():
    """Every parameter and buffer a module registers goes to the meta device (as accelerate's
    init_empty_weights): unlike ``torch.device("meta")`` this lets builders compute with real tensors (RegNet's
    widths)."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self, name, tensor, persistent=True):
        register_buffer(self, name, None if tensor is None else tensor.to("meta"), persistent)
    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


@cache
def meta_model(arch: Architecture, size: int | None = None) -> torch.nn.Module:
    """The full torchvision model on the meta device (``size``: see Architecture.build): shapes without weights or
    memory (built once; read it, never change it: a network to load weights into is built anew). Built outside
    inference mode whatever the caller's mode, so that its parameters are not inference tensors that
    autograd-tracking callers (the FLOP counter) would refuse."""
    with torch.inference_mode(False):
        return arch.build(size, meta=True).eval()


@cache
def _adhoc_form(arch: Architecture, module: str) -> str:
    """The form of an ad-hoc tap, from its output's shape in a meta forward pass (tap_rule.form_of)."""
    return form_of(trace(meta_model(arch), trace_size(arch.fixed_size)), module, trace_size(arch.fixed_size))


def _bool(s: str) -> bool:
    return s.strip().lower() in ("1", "true", "yes")


@cache
def architectures() -> dict[str, Architecture]:
    """The study's 14 architectures by name, in the paper's order (their Table II taps, with stride, form and
    relative depth from data/zoo_taps.csv)."""
    return {name: Architecture(
        name=name, imagenet_top1=float(r["imagenet_top1"]), depth=int(r["depth"]),
        mflops_224=int(r["mflops_224"]), weights_enum=r["weights_enum"],
        normalization=r["normalization"], skip_connections=_bool(r["skip_connections"]),
        branching=_bool(r["branching"]), conv1x1=_bool(r["conv1x1"]), batch_norm=_bool(r["batch_norm"]),
        taps=taps(name), **arch_fields(name)) for name, r in study_rows().items()}


@cache
def zoo() -> dict[str, Architecture]:
    """Every torchvision classifier by name (torchvision's order): the study's 14 as architectures() has them,
    the others with the tap rule's taps and torchvision's DEFAULT recipe."""
    study = architectures()
    out = {}
    for name in zoo_rows():
        if name in study:
            out[name] = study[name]
            continue
        default = get_recipe(name)
        out[name] = Architecture(
            name=name, imagenet_top1=default.acc1, depth=None, mflops_224=None,
            weights_enum=f"{default.enum}.{default.name}", normalization="recipe", skip_connections=None,
            branching=None, conv1x1=None, batch_norm=None, taps=taps(name), study=False,
            **arch_fields(name))
    return out


def get_architecture(name: str) -> Architecture:
    """The architecture (any of the zoo) by name or alias (ALIASES); raises ValueError listing the valid names."""
    return zoo()[canonical(name)]


resolve_archs = arch_names  # None/"all" -> the study's 14, "zoo" -> every classifier; names checked


def all_taps() -> list[Tap]:
    """The 56 taps of the grid."""
    return [t for a in architectures().values() for t in a.taps]
