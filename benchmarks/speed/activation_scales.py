"""How each random-weight initialisation scheme carries the scale of activations and gradients through depth.

    python -m benchmarks.speed.activation_scales [--archs vgg16 resnet18 alexnet] [--schemes ...]
                                                 [--sizes 64 224] [--seeds 0] [--images 4]

For every architecture, scheme (``weights="random:SCHEME"``), seed and input size, photo patches (the crops
of scikit-image's bundled photos that the made data sets use) go through the loss network cut at every
block: each ReLU of a plain network, the stem's ReLU and each residual block of a ResNet. Per block it
records the std of the activations, and the std of the gradient at the input of a perceptual loss at that
block alone (the mean squared difference of the block's features of each image and of the next one), both
divided by the first block's. A scheme that keeps scales has ratios near 1 at every depth. Writes
benchmarks/speed/results/activation_scales.{csv,md}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from lossnets import LossNetwork
from lossnets.benchmarks.data.photos import photo_patches
from lossnets.engine import get_architecture
from lossnets.engine.init_schemes import SCHEMES
from lossnets.engine.registry import meta_model

RESULTS = Path(__file__).parent / "results"


def blocks(arch: str) -> list[str]:
    """Module paths of the blocks, in forward order: residual blocks, and ReLUs outside them."""
    out = []
    for name, m in meta_model(get_architecture(arch)).named_modules():
        if any(name.startswith(b + ".") for b in out):
            continue
        if isinstance(m, (BasicBlock, Bottleneck)) or (isinstance(m, nn.ReLU) and not name.startswith("classifier")):
            out.append(name)
    return out


def tap_blocks(arch: str, paths: list[str]) -> dict[str, str]:
    """``{block: tap letter}`` for the blocks whose output is a registered tap (a stack of residual blocks: its
    last block)."""
    out = {}
    for t in get_architecture(arch).taps:
        inside = [p for p in paths if p == t.module or p.startswith(t.module + ".")]
        if inside:
            out[inside[-1]] = t.layer
    return out


def measure(arch: str, scheme: str, seed: int, images: torch.Tensor) -> pd.DataFrame:
    """One row per block: std of the activations and of the input gradient of a loss at that block alone."""
    paths = blocks(arch)
    net = LossNetwork(arch, paths, f"random:{scheme}", seed=seed, device="cpu", channels_last=False)
    x = images.clone().requires_grad_(True)
    feats = net(x)
    rows = []
    for path in paths:
        f = feats[net.arch.resolve(path).layer]
        loss = (f - f.roll(1, dims=0)).pow(2).mean()
        (grad,) = torch.autograd.grad(loss, x, retain_graph=True)
        rows.append({"block": path, "act_std": f.std().item(), "grad_std": grad.std().item()})
    df = pd.DataFrame(rows)
    df["act_ratio"] = df["act_std"] / df["act_std"].iloc[0]
    df["grad_ratio"] = df["grad_std"] / df["grad_std"].iloc[0]
    df["tap"] = df["block"].map(tap_blocks(arch, paths)).fillna("")
    df.insert(0, "depth", range(1, len(df) + 1))
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, scheme and size (means over seeds): the ratios at the last block and at the taps, and
    the range of the activation ratio over all blocks."""
    keys = ["arch", "size", "scheme"]
    g = df.groupby(keys + ["depth", "tap"], sort=False)[["act_ratio", "grad_ratio"]].mean().reset_index()
    out = []
    for (arch, size, scheme), d in g.groupby(keys, sort=False):
        row = {"arch": arch, "size": size, "scheme": scheme, "blocks": len(d),
               "act_last": d["act_ratio"].iloc[-1], "act_min": d["act_ratio"].min(),
               "act_max": d["act_ratio"].max(), "grad_last": d["grad_ratio"].iloc[-1]}
        row.update({f"act_{t}": v for t, v in zip(d["tap"], d["act_ratio"]) if t})
        out.append(row)
    return pd.DataFrame(out)


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=["vgg16", "resnet18", "alexnet"])
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 224])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--out", default=str(RESULTS / "activation_scales"))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    frames = []
    for size in args.sizes:
        patches = np.stack(photo_patches(args.images, size, seed=0))
        images = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
        for arch in args.archs:
            for scheme in args.schemes:
                for seed in args.seeds:
                    df = measure(arch, scheme, seed, images)
                    frames.append(df.assign(arch=arch, scheme=scheme, seed=seed, size=size))
                    last = df.iloc[-1]
                    print(f"{arch} {size}px {scheme} seed {seed}: activation std x{last.act_ratio:.2f}, "
                          f"input gradient std x{last.grad_ratio:.2f} at block {len(df)}", flush=True)
    df = pd.concat(frames, ignore_index=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    table = summary(df)
    text = (f"# Activation and gradient scales through depth, per initialisation scheme\n\n"
            f"`python -m benchmarks.speed.activation_scales {' '.join(argv)}`\n\n"
            f"{args.images} photo patches per size, seeds {args.seeds} (ratios averaged over seeds). Ratios are "
            "to the first block (each ReLU of vgg16/alexnet, stem ReLU and each residual block of resnet18): "
            "`act_*` the activation std, `grad_last` the std of the input gradient of a loss at the last block "
            "alone against one at the first block. `act_E..act_L`: at the study's taps.\n\n"
            + table.to_markdown(index=False, floatfmt=".2f") + "\n")
    out.with_suffix(".md").write_text(text)
    print(text)
    return df


if __name__ == "__main__":
    main()
