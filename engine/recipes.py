"""ImageNet weight recipes: every member of torchvision's weights enums, read from ``data/recipes.csv``.

Per recipe the metadata torchvision publishes (acc@1, acc@5, GFLOPS, parameters), its preprocessing (resize and
crop sizes, interpolation, mean and std) and the fixed input size of models that have one (ViT, MaxViT). The file
is written by ``engine/data/make_zoo.py`` from torchvision's enums and checked against them by a test, so that
reading it imports no model code. ``imagenet`` names an architecture's default recipe, ``imagenet:NAME`` any other.
"""
from __future__ import annotations

import csv
import os
import urllib.error
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
PREFIX = "imagenet"
EVERY = f"{PREFIX}:all"  # every recipe of each architecture, each its own loss network (sweeps and the CLI)
FIELDS = ("arch", "recipe", "enum", "default", "acc1", "acc5", "gflops", "params", "fixed_size", "crop_size",
          "resize_size", "interpolation", "mean", "std", "url", "file")


class WeightsNotFoundError(FileNotFoundError):
    """ImageNet weights are neither on disk nor downloadable."""


@dataclass(frozen=True)
class Recipe:
    arch: str
    name: str  # the enum member, e.g. IMAGENET1K_V2
    enum: str  # the enum class, e.g. ResNet50_Weights
    default: bool  # torchvision's DEFAULT for the architecture
    acc1: float  # NaN where torchvision publishes none (vgg16's IMAGENET1K_FEATURES)
    acc5: float
    gflops: float  # torchvision's "_ops": multiply-accumulates of the whole model at crop_size, in billions
    params: int
    fixed_size: int | None  # the only input side the model accepts with these weights (ViT, MaxViT)
    crop_size: int
    resize_size: int
    interpolation: str  # "bilinear" or "bicubic"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    url: str
    file: str

    @property
    def spec(self) -> str:
        """The weights spec that names this recipe: ``imagenet:NAME``."""
        return f"{PREFIX}:{self.name}"

    @property
    def checkpoint_path(self) -> Path:
        """Where torchvision's download cache keeps (or would keep) this recipe's file."""
        import torch  # here, so that reading the recipes imports no torch
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file

    def state_dict(self) -> dict:
        """The recipe's state_dict, from torchvision's cache (downloaded there first if absent, its hash checked);
        offline and absent, a WeightsNotFoundError naming the file and its URL, with nothing printed before it
        (torchvision's own download prints a "Downloading:" line first)."""
        import torch
        import torchvision

        weights = getattr(getattr(torchvision.models, self.enum), self.name)
        path = self.checkpoint_path
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                digest = torch.hub.HASH_REGEX.search(self.file)
                torch.hub.download_url_to_file(self.url, str(path), digest and digest.group(1), progress=False)
            return weights.get_state_dict(progress=False, check_hash=True)
        except (urllib.error.URLError, OSError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and "download" not in str(e).lower() and "hash" not in str(e).lower():
                raise
            raise WeightsNotFoundError(
                f"ImageNet weights {self.arch} {self.spec} are not on disk and could not be downloaded ({e}). "
                f"torchvision wants the file {self.checkpoint_path}: download {self.url} and put it there "
                f"(the folder follows $TORCH_HOME, now {torch.hub.get_dir()})."
            ) from e


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(v) for v in s.split())


@cache
def recipes() -> dict[str, tuple[Recipe, ...]]:
    """Every recipe by architecture, in torchvision's enum order."""
    out: dict[str, list[Recipe]] = {}
    with open(DATA / "recipes.csv", newline="") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["arch"], []).append(Recipe(
                arch=r["arch"], name=r["recipe"], enum=r["enum"], default=r["default"] == "True",
                acc1=float(r["acc1"]), acc5=float(r["acc5"]), gflops=float(r["gflops"]), params=int(r["params"]),
                fixed_size=int(r["fixed_size"]) if r["fixed_size"] else None, crop_size=int(r["crop_size"]),
                resize_size=int(r["resize_size"]), interpolation=r["interpolation"], mean=_floats(r["mean"]),
                std=_floats(r["std"]), url=r["url"], file=r["file"]))
    return {a: tuple(rs) for a, rs in out.items()}


def get_recipe(arch: str, name: str | None = None) -> Recipe:
    """The recipe ``name`` of ``arch`` (None: torchvision's DEFAULT); raises ValueError listing the valid ones."""
    rs = recipes().get(arch, ())
    for r in rs:
        if r.name == name or (name is None and r.default):
            return r
    raise ValueError(f"unknown weight recipe {name!r} for {arch}; valid: "
                     f"{', '.join(r.spec for r in rs) or 'none (not in data/recipes.csv)'}")


def parse_spec(arch: str, weights: str, study_recipe: str | None = None) -> Recipe | None:
    """The recipe a weights spec names: ``imagenet`` (``study_recipe`` where given, else the DEFAULT) or
    ``imagenet:NAME``; None for any other spec (random weights, a file)."""
    if weights == PREFIX:
        return get_recipe(arch, study_recipe)
    if weights == EVERY:
        raise ValueError(f"{EVERY} names several loss networks, one per recipe of {arch} "
                         f"({', '.join(every_recipe(arch, EVERY))}): a sweep or a command's --weights expands it")
    if weights.startswith(PREFIX + ":"):
        return get_recipe(arch, weights[len(PREFIX) + 1:])
    return None


def every_recipe(arch: str, weights: str) -> list[str]:
    """The weights specs a spec stands for on ``arch``: each recipe's ``imagenet:NAME`` for ``imagenet:all``,
    else the spec itself."""
    return [r.spec for r in recipes().get(arch, ())] if weights == EVERY else [weights]


def expand_every(weights: str) -> list[str]:
    """``imagenet:all`` as every recipe name of the zoo (``imagenet:NAME``; a grid runs each on the architectures
    that have it), any other spec as itself."""
    return list(dict.fromkeys(r.spec for rs in recipes().values() for r in rs)) if weights == EVERY else [weights]


def torchvision_rows(fixed_size) -> list[dict[str, str]]:
    """recipes.csv's rows from torchvision's own enums (for the maker script and the test that the file is
    current). ``fixed_size(arch, recipe_meta)``: the recipe's fixed input side or None, probed from the model."""
    import torchvision

    rows = []
    for arch in torchvision.models.list_models(module=torchvision.models):
        enum = torchvision.models.get_model_weights(arch)
        for w in enum:
            t, m = w.transforms(), w.meta
            metrics = m["_metrics"]["ImageNet-1K"]
            size = fixed_size(arch, m)
            rows.append({
                "arch": arch, "recipe": w.name, "enum": enum.__name__, "default": str(w == enum.DEFAULT),
                "acc1": repr(float(metrics["acc@1"])), "acc5": repr(float(metrics["acc@5"])),
                "gflops": repr(float(m["_ops"])), "params": str(m["num_params"]),
                "fixed_size": "" if size is None else str(size), "crop_size": str(t.crop_size[0]),
                "resize_size": str(t.resize_size[0]), "interpolation": t.interpolation.value,
                "mean": " ".join(repr(float(v)) for v in t.mean), "std": " ".join(repr(float(v)) for v in t.std),
                "url": w.url, "file": os.path.basename(w.url)})
    return rows
