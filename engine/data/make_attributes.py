"""Write zoo_attributes.csv: the study's Table III attributes for every torchvision classifier (run after a
torchvision upgrade, or after editing TOPOLOGY):

    python engine/data/make_attributes.py [--check]

Per architecture (torchvision's order): its family and
- ``batch_norm``: the model holds an ``nn.BatchNorm*`` module (LayerNorm, as in ViT, Swin and ConvNeXt, is not
  batch norm);
- ``conv1x1``: the model holds an ``nn.Conv2d`` with a 1 x 1 kernel (the pointwise ``nn.Linear`` layers of the
  transformers and ConvNeXt are the same operation but no convolution: they do not count);
both read from the model built on the meta device (no weights); and per family from TOPOLOGY (a reading of each
family's paper and torchvision's code, one reason each):
- ``skip_connections``: a block's input reaches its output past the block's layers (residual sums, DenseNet's and
  ShuffleNet's concatenated identity);
- ``branching``: a block splits into parallel transformations that are merged again (Inception modules, Fire
  modules, the grouped convolutions that ResNeXt calls cardinality, ShuffleNet's channel split, multi-head
  attention's heads); depthwise convolutions and squeeze-excitation do not count (the study counts EfficientNet,
  which has both, as not branching).
The study's own values for its 14 (architectures.csv) must agree; tests/engine/test_attributes.py checks that and
the file against the models. Never imported at run time (engine/attributes.py reads the file).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn

DATA = Path(__file__).parent
FIELDS = ("arch", "family", "skip_connections", "branching", "conv1x1", "batch_norm")
# family -> (skip_connections, branching, why)
TOPOLOGY = {
    "alexnet": (False, False, "plain stack of convolutions"),
    "convnext": (True, False, "residual blocks; depthwise 7x7 convolution, no parallel paths"),
    "densenet": (True, False, "dense blocks concatenate every earlier output (the study: skip, no branching)"),
    "efficientnet": (True, False, "inverted residuals (MBConv); depthwise + squeeze-excitation (the study's values)"),
    "efficientnet_v2": (True, False, "MBConv and fused-MBConv residuals, as EfficientNet"),
    "googlenet": (False, True, "Inception modules: four parallel paths concatenated (the study's values)"),
    "inception": (False, True, "Inception modules (the study's values)"),
    "maxvit": (True, True, "MBConv and attention residuals; multi-head attention"),
    "mnasnet": (True, False, "inverted residuals, as MobileNetV2"),
    "mobilenet_v2": (True, False, "inverted residuals; depthwise convolutions"),
    "mobilenet_v3": (True, False, "inverted residuals with squeeze-excitation"),
    "regnet": (True, True, "residual bottlenecks with grouped convolutions (group width), as ResNeXt"),
    "resnet": (True, False, "residual blocks (the study's values)"),
    "resnext": (True, True, "residual blocks with grouped convolutions, ResNeXt's cardinality (the study's values)"),
    "shufflenet": (True, True, "channel split into two paths, one an identity, concatenated and shuffled"),
    "squeezenet": (False, True, "Fire modules: parallel 1x1 and 3x3 expand paths (the study's values)"),
    "swin": (True, True, "residual attention/MLP blocks; multi-head (shifted-window) attention"),
    "swin_v2": (True, True, "as Swin"),
    "vgg": (False, False, "plain stack of convolutions (the study's values)"),
    "vit": (True, True, "residual attention/MLP blocks; multi-head attention"),
    "wide_resnet": (True, False, "residual blocks, as ResNet"),
}


def derived(model: nn.Module) -> dict[str, bool]:
    """The attributes read from a model: batch norm and 1x1 convolutions (see the module doc)."""
    mods = list(model.modules())
    return {"conv1x1": any(isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (1, 1) for m in mods),
            "batch_norm": any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mods)}


def row(arch) -> dict[str, str]:
    """The file's row of one registered architecture (its model from registry.meta_model)."""
    from lossnets.engine.registry import meta_model
    skip, branching, _ = TOPOLOGY[arch.family]
    values = {"skip_connections": skip, "branching": branching, **derived(meta_model(arch))}
    return {"arch": arch.name, "family": arch.family, **{k: str(values[k]) for k in FIELDS[2:]}}


def render(rows) -> str:
    lines = [",".join(FIELDS)] + [",".join(r[f] for f in FIELDS) for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = p.parse_args(argv)
    from lossnets.engine.registry import zoo
    text = render(row(a) for a in zoo().values())
    path = DATA / "zoo_attributes.csv"
    stale = not path.is_file() or path.read_text() != text
    if args.check:
        print(f"stale: {path.name}" if stale else "up to date")
        return 1 if stale else 0
    if stale:
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
