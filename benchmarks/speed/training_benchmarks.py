"""The training benchmarks as the speed scripts time them: a Lockstep on random data of the published shapes.

``TRAINING[name].lockstep(nets, size, batch, variant, cache=None)`` builds a ``lossnets.benchmarks.training.Lockstep``
for one variant of a benchmark (SR scale, autoencoder data set, ...); ``steps[variant]`` is the published schedule
in optimiser steps per cell, at ``size`` and ``batch``; ``anchor`` (arch, tap) is the network compared across
engine options. Only the speed matters here: images and maps are random, and the targets are fixed (they have
item ids), so a feature cache can serve them where its policy pays.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lossnets import LossNetwork
from lossnets.benchmarks.autoencoder.benchmark import Autoencoding
from lossnets.benchmarks.autoencoder.data import BenchmarkSplits, ImageSet
from lossnets.benchmarks.segmentation.benchmark import RoadDelineation
from lossnets.benchmarks.segmentation.data import RoadTiles
from lossnets.benchmarks.superres.benchmark import SuperResolution
from lossnets.benchmarks.superres.data import SRSet
from lossnets.benchmarks.training import Lockstep


@dataclass(frozen=True)
class TrainingBenchmark:
    """How the speed scripts time a training benchmark (see the module docstring)."""
    lockstep: Callable[..., Lockstep]
    size: int
    batch: int
    steps: dict[Any, int]
    anchor: tuple[str, str]

    @property
    def variants(self) -> list:
        return list(self.steps)


def sync(device: torch.device) -> None:
    """Wait for the work queued on a CUDA device (nothing to wait for elsewhere)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(run: Lockstep, iterations: int, warmup: int) -> tuple[float, float]:
    """Seconds of the ``warmup`` first steps of a lockstep run (compilation included) and of the ``iterations``
    steps after them."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        run.step()
    sync(run.device)
    t1 = time.perf_counter()
    for _ in range(iterations):
        run.step()
    sync(run.device)
    return t1 - t0, time.perf_counter() - t1


def _images(n: int, size: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def superres(nets: list[LossNetwork], size: int, batch: int, scale: int, cache=None) -> Lockstep:
    """Super-resolution at ``scale`` (HR ``size``)."""
    n = max(16, 2 * batch)
    train = SRSet(_images(n, size), _images(n, size // scale, 1), [f"{i:05d}" for i in range(n)], "")
    return Lockstep(nets, SuperResolution(train, train, scale, "paper", batch), cache=cache)


def segmentation(nets: list[LossNetwork], size: int, batch: int, crops: str, cache=None) -> Lockstep:
    """Road delineation on ``size`` crops of random tiles: ``random`` crops, or a bank of one fixed crop per tile."""
    n = max(16, 2 * batch)
    tiles = RoadTiles([f"t{i}" for i in range(n)], _images(n, size + 8), _images(n, size + 8, 1, 1) > 200, "speed")
    task = RoadDelineation(tiles, tiles, size=size, batch=batch, refine=3, mu=0.01,
                           crops=None if crops == "random" else int(crops.split(":")[1]), threshold=0.3)
    return Lockstep(nets, task, cache=cache)


def autoencoder(nets: list[LossNetwork], size: int, batch: int, dataset: str, cache=None) -> Lockstep:
    """Autoencoding of random images at the data set's stored size (SVHN 32, padded to 64; STL-10 96)."""
    n, side = max(32, 2 * batch), 32 if dataset == "svhn" else 96
    images = ImageSet(_images(n, side), None, np.arange(n), f"{dataset}/speed")
    splits = BenchmarkSplits(dataset, images, images, images, images, images, True)
    return Lockstep(nets, Autoencoding(splits, "speed", batch=batch, embedding=64, vae=None), cache=cache)


def _epochs(epochs: int, items: int, batch: int) -> int:
    return epochs * math.ceil(items / batch)


TRAINING = {
    # 200k iterations at scales 4 and 8 (Johnson et al.)
    "superres": TrainingBenchmark(superres, size=288, batch=4, steps={4: 200_000, 8: 200_000}, anchor=("vgg16", "S")),
    # 100 epochs of the 1108 training tiles, one random crop each (the published code)
    "segmentation": TrainingBenchmark(segmentation, size=224, batch=8, steps={"random": _epochs(100, 1108, 8)},
                                      anchor=("vgg19", "S")),
    # 10 epochs of 80% of SVHN extra (531,131) and of STL-10 unlabeled (100,000); the size is the data set's
    "autoencoder": TrainingBenchmark(autoencoder, size=64, batch=256,
                                     steps={"svhn": _epochs(10, 424_905, 256), "stl10": _epochs(10, 80_000, 256)},
                                     anchor=("vgg16", "S")),
}
