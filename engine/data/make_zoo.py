"""Write recipes.csv and zoo_taps.csv from torchvision and its models (run after a torchvision upgrade):

    python engine/data/make_zoo.py [--check]

recipes.csv: every member of every classifier's weights enum with torchvision's metadata and preprocessing.
zoo_taps.csv: per architecture its family, the fixed input side of the model built without weights (if any) and
its taps: the study's Table II taps (extraction_layers.csv) for its 14, the tap rule's (engine/tap_rule.py) for the
others, each with channels, stride, form and relative depth (MACs up to the tap / MACs of the trunk, at 224 or the
fixed side), all traced on the meta device.
zoo_blocks.csv: per architecture its block taps by the block rule (engine/block_rule.py), in trunk order (block 1 is
the first), ending at the trunk's end, with kind, channels, stride, form and relative depth counted as the taps'.
Never imported at run time; tests/engine/test_zoo.py and tests/engine/test_blocks.py check the files.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from functools import cache
from pathlib import Path

import torch
import torchvision
from tqdm import tqdm

from lossnets.engine.block_rule import derive_blocks, prefix_macs
from lossnets.engine.recipes import FIELDS, torchvision_rows
from lossnets.engine.registry import Architecture
from lossnets.engine.tap_rule import derive, form_of, spatial, trace, trace_size

DATA = Path(__file__).parent
TAP_FIELDS = ("arch", "family", "fixed_size", "layer", "description", "module", "channels", "stride", "form",
              "rel_depth")
BLOCK_FIELDS = ("arch", "block", "module", "kind", "channels", "stride", "form", "rel_depth")
# torchvision's model families, named as their builders are: an architecture's family is the longest that
# prefixes its name
FAMILIES = ("alexnet", "convnext", "densenet", "efficientnet", "efficientnet_v2", "googlenet", "inception", "maxvit",
            "mnasnet", "mobilenet_v2", "mobilenet_v3", "regnet", "resnet", "resnext", "shufflenet", "squeezenet",
            "swin", "swin_v2", "vgg", "vit", "wide_resnet")


def family(name: str) -> str:
    return max((f for f in FAMILIES if name.startswith(f)), key=len)


def bare(name: str, fixed_size: int | None = None) -> Architecture:
    """An Architecture with nothing registered yet: enough to build the model."""
    return Architecture(name, float("nan"), None, None, "", "recipe", None, None, None, None, (),
                        fixed_size=fixed_size)


@cache
def fixed_size(name: str) -> int | None:
    """224 if the model built without weights accepts 224 x 224 but refuses 256 x 256 (ViT, MaxViT), else None."""
    model = bare(name).build(meta=True).eval()
    try:
        trace(model, (256, 256))
    except (RuntimeError, ValueError, AssertionError):
        trace(model, (224, 224))
        return 224
    return None


def recipe_fixed_size(arch: str, meta: dict) -> int | None:
    """A fixed-size model's recipe fixes the side to its min_size (torchvision's builders set it from there)."""
    return meta["min_size"][0] if fixed_size(arch) else None


def study_taps() -> dict[str, list[tuple[str, str]]]:
    taps: dict[str, list[tuple[str, str]]] = {}
    with open(DATA / "extraction_layers.csv", newline="") as f:
        for r in csv.DictReader(f):
            taps.setdefault(r["arch"], []).append((r["layer"], r["torchvision_module"]))
    return taps


def arch_rows(name: str, table_ii: list[tuple[str, str]] | None) -> tuple[list[dict], list[dict]]:
    """The architecture's rows of zoo_taps.csv and of zoo_blocks.csv."""
    fixed = fixed_size(name)
    model = bare(name, fixed).build(meta=True).eval()
    rule, trunk_end = derive(model, fixed)
    size = trace_size(fixed)
    if table_ii:  # the study's taps, described by the same trace
        shapes = trace(model, size)
        taps = []
        for layer, module in table_ii:
            form, stride, channels = spatial(shapes[module][0], size) or (form_of(shapes, module, size), 0, 0)
            taps.append((layer, "Table II", module, channels, stride, form))
    else:
        taps = [(t.layer, t.description, t.module, t.channels, t.stride, t.form) for t in rule]
    x = torch.empty(1, 3, fixed or 224, fixed or 224, device="meta")
    macs = prefix_macs(model, list(dict.fromkeys([t[2] for t in taps] + [trunk_end])), x)
    tap_rows = [dict(zip(TAP_FIELDS, (name, family(name), fixed or "", layer, desc, module, channels, stride, form,
                                      f"{macs[module] / macs[trunk_end]:.4f}")))
                for layer, desc, module, channels, stride, form in taps]
    block_rows = [dict(zip(BLOCK_FIELDS, (name, i, b.module, b.kind, b.channels, b.stride, b.form,
                                          f"{b.rel_depth:.4f}")))
                  for i, b in enumerate(derive_blocks(model, trunk_end, fixed), start=1)]
    return tap_rows, block_rows


def render(fields, rows) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = p.parse_args(argv)
    study = study_taps()
    rows = [arch_rows(a, study.get(a)) for a in tqdm(torchvision.models.list_models(module=torchvision.models),
                                                      desc="tracing on meta", unit="arch")]
    files = {"recipes.csv": render(FIELDS, torchvision_rows(recipe_fixed_size)),
             "zoo_taps.csv": render(TAP_FIELDS, [r for taps, _ in rows for r in taps]),
             "zoo_blocks.csv": render(BLOCK_FIELDS, [r for _, blocks in rows for r in blocks])}
    stale = [n for n, text in files.items() if not (DATA / n).is_file() or (DATA / n).read_text() != text]
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for n in stale:
        (DATA / n).write_text(files[n])
        print(f"wrote {DATA / n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
