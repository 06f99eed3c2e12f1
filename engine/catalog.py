"""The registry's data files read with the csv module alone: names and taps without importing torch.

The study's 14 are the rows of ``data/architectures.csv`` (their Table II names in ``data/extraction_layers.csv``),
the zoo every architecture of ``data/zoo_taps.csv``, the block taps of each in ``data/zoo_blocks.csv`` (the block
rule of block_rule.py). registry.py builds its Architecture records on these; the command line's ``lossnets list``
prints them, so that it starts without torch.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
LAYERS = ("E", "S", "M", "L")
# the lpips package's names of its networks, accepted everywhere an architecture is named
ALIASES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
LIST_COLUMNS = ("arch", "family", "layer", "paper_name", "module", "channels", "form", "stride", "rel_depth")
BLOCK_COLUMNS = ("arch", "family", "block", "layer", "module", "kind", "channels", "form", "stride", "rel_depth")
# names of the layers specs that stand for several taps (expand_layers)
BLOCKS, STAGES = "blocks", "stages"
RECIPE_COLUMNS = ("arch", "weights", "default", "acc1", "acc5", "gflops", "params", "fixed_size", "crop_size")


@dataclass(frozen=True)
class Tap:
    arch: str
    layer: str  # E, S, M or L (ViT: also E_cls ... L_cls, the class token forms)
    paper_name: str  # the paper's name of a Table II tap; what the tap rule picked for the others
    module: str  # torchvision module path whose output is the tap
    channels: int | None = None  # channels at the tap (registered taps; None for an ad-hoc module path)
    form: str = "nchw"  # how the module's output becomes (N, C, H, W): see forms.py
    stride: int | None = None  # input side / tap side (1 for a class token)
    rel_depth: float | None = None  # MACs up to the tap / MACs of the whole trunk, at 224 (or the fixed size)


def _read(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


@cache
def _by_arch(name: str) -> dict[str, list[dict[str, str]]]:
    """A data file's rows by architecture, in the file's order."""
    rows: dict[str, list[dict[str, str]]] = {}
    for r in _read(name):
        rows.setdefault(r["arch"], []).append(r)
    return rows


def zoo_rows() -> dict[str, list[dict[str, str]]]:
    """data/zoo_taps.csv by architecture, in torchvision's order."""
    return _by_arch("zoo_taps.csv")


@cache
def study_rows() -> dict[str, dict[str, str]]:
    """data/architectures.csv by architecture: the study's 14, in the paper's order."""
    return {r["arch"]: r for r in _read("architectures.csv")}


@cache
def taps(name: str) -> tuple[Tap, ...]:
    """The registered taps of an architecture (its canonical name): the study's carry their Table II names, checked
    against data/extraction_layers.csv; the others the tap rule's description."""
    rows = zoo_rows()[name]
    if name not in study_rows():
        return tuple(_tap(r, r["description"]) for r in rows)
    paper = {r["layer"]: r for r in _read("extraction_layers.csv") if r["arch"] == name}
    if [(r["module"], r["channels"]) for r in rows] != [(paper[x]["torchvision_module"], paper[x]["channels"])
                                                        for x in LAYERS]:
        raise ValueError(f"{name}: data/zoo_taps.csv disagrees with data/extraction_layers.csv")
    return tuple(_tap(r, paper[r["layer"]]["paper_name"]) for r in rows)


def _tap(r: dict[str, str], paper_name: str) -> Tap:
    return Tap(r["arch"], r["layer"], paper_name, r["module"], int(r["channels"]), r["form"], int(r["stride"]),
               float(r["rel_depth"]))


@cache
def blocks(name: str) -> tuple[Tap, ...]:
    """The block taps of an architecture (name or alias), in trunk order, from data/zoo_blocks.csv: each named by
    its module path (layer == module), paper_name its kind (the block's class name, "conv-ReLU" or "trunk end");
    the last ends the trunk (rel_depth 1.0)."""
    name = canonical(name)
    return tuple(Tap(name, r["module"], r["kind"], r["module"], int(r["channels"]), r["form"], int(r["stride"]),
                     float(r["rel_depth"])) for r in _by_arch("zoo_blocks.csv")[name])


def layer_name(name: str, layer: str) -> str:
    """The name rows and outputs give a tap: a registered tap's letter for its letter or module path (a block
    at a stage tap's module is that stage tap), else ``layer`` itself."""
    return next((t.layer for t in taps(canonical(name)) if layer in (t.layer, t.module)), layer)


def expand_layers(name: str, specs) -> tuple[str, ...]:
    """``specs`` (a layers spec or a sequence) with "blocks" replaced by the architecture's block taps (each by
    layer_name: its module path, or the letter of the stage tap at that module) and "stages" by E, S, M, L;
    anything else unchanged; order kept, duplicates dropped."""
    specs = (specs,) if isinstance(specs, str) else tuple(specs)
    out: list[str] = []
    for spec in specs:
        if spec == BLOCKS:
            out += [layer_name(name, b.module) for b in blocks(name)]
        else:
            out += list(LAYERS) if spec == STAGES else [spec]
    return tuple(dict.fromkeys(out))


def relative_depth(name: str, layer: str) -> float | None:
    """The relative depth (MACs up to the tap / MACs of the trunk) of a registered tap (letter or module path) or
    block tap of an architecture; None for anything else (tap sets, ad-hoc module paths)."""
    for t in taps(canonical(name)) + blocks(name):
        if layer in (t.layer, t.module):
            return t.rel_depth
    return None


def arch_fields(name: str) -> dict:
    """The family and fixed input side (None: any) of an architecture, from data/zoo_taps.csv."""
    first = zoo_rows()[name][0]
    return {"family": first["family"], "fixed_size": int(first["fixed_size"]) if first["fixed_size"] else None}


def canonical(name: str) -> str:
    """An architecture's name from its name or alias (ALIASES); raises ValueError listing the valid names."""
    name = ALIASES.get(name, name)
    if name not in zoo_rows():
        raise ValueError(f"unknown architecture {name!r}; valid architectures: {', '.join(zoo_rows())} "
                         f"(aliases: {', '.join(f'{k}={v}' for k, v in ALIASES.items())})")
    return name


def arch_names(names) -> list[str]:
    """Expand None/"all" to the study's 14 and "zoo" to every torchvision classifier (also inside a list), and
    check the names."""
    if names is None or isinstance(names, str):
        names = [names or "all"]
    out = []
    for n in names:
        out += list(study_rows()) if n == "all" else list(zoo_rows()) if n == "zoo" else [canonical(n)]
    return list(dict.fromkeys(out))


def list_rows(names=None) -> list[dict]:
    """The rows ``lossnets list`` prints (LIST_COLUMNS), one per registered tap of ``names`` (see arch_names)."""
    return [{"arch": t.arch, "family": arch_fields(a)["family"], "layer": t.layer, "paper_name": t.paper_name,
             "module": t.module, "channels": t.channels, "form": t.form, "stride": t.stride,
             "rel_depth": f"{t.rel_depth:.4f}"} for a in arch_names(names) for t in taps(a)]


def block_list_rows(names=None) -> list[dict]:
    """The rows ``lossnets list --blocks`` prints (BLOCK_COLUMNS), one per block tap of ``names`` (see arch_names):
    ``layer`` is the name its rows carry (layer_name)."""
    return [{"arch": a, "family": arch_fields(a)["family"], "block": i, "layer": layer_name(a, t.module),
             "module": t.module, "kind": t.paper_name, "channels": t.channels, "form": t.form, "stride": t.stride,
             "rel_depth": f"{t.rel_depth:.4f}"} for a in arch_names(names) for i, t in enumerate(blocks(a), start=1)]


def recipe_rows(names=None) -> list[dict]:
    """The rows ``lossnets list --recipes`` prints (RECIPE_COLUMNS), one per ImageNet weight recipe of ``names``:
    ``weights`` is the spec that names it; ``default`` marks what ``imagenet`` means (the study's V1 for its 14)."""
    from .recipes import recipes
    rows = []
    for a in arch_names(names):
        study = study_rows().get(a, {}).get("weights_enum", "").partition(".")[2]
        rows += [{"arch": a, "weights": r.spec, "default": r.name == study if study else r.default,
                  "acc1": r.acc1, "acc5": r.acc5, "gflops": r.gflops, "params": r.params,
                  "fixed_size": r.fixed_size or "", "crop_size": r.crop_size} for r in recipes()[a]]
    return rows
