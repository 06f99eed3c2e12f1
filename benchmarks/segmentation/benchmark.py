"""Benchmark 3: road delineation on Massachusetts Roads (Mosinska et al. 2018) trained with each loss network.

A U-Net fed RGB plus its previous prediction, applied ``refine`` times with shared weights, trains with
``sum_k k * L(y_k) / sum_k k``, L = BCE(y_k, mask) + mu * feature MSE at the tap between the loss network's
features of y_k and of the mask (each repeated to 3 channels), one model per tap in lockstep on the shared
training engine. The best checkpoint by validation quality is scored on the test split.

Protocols (defaults = the published code; ``standard`` fixes its known flaws):

- ``paper``: random ``size`` crops (+ horizontal flip) of native training tiles; validation and test tiles
  resized whole to ``size``; pixel metric at threshold 0.3. (The published code scored the 14 validation tiles
  although the paper says test: this scores the test split.)
- ``standard``: training and test at one scale (native tiles, the whole tile for validation and test, padded
  to a multiple of 16 by the U-Net), threshold 0.5, and the relaxed metric beside the pixel one.

Targets (the ground-truth maps) are fixed under ``crops="fixed:N"`` (a seeded bank of N crops per tile, reused
every epoch): their features then come from the feature cache where its policy pays. ``random`` crops (the
published code) are drawn fresh each epoch; the taps in lockstep still share one target pass per batch.

Entry points: :func:`run_cells` (the benchmark contract's), :func:`run` (the Python API's).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lossnets.engine import LossNetwork

from .. import training
from ..contract import Context
from ..sweep.results import run_metadata, tidy
from ..training import (Batch, BatchSampler, CacheKey, Task, Trainee, check_output, eval_mode,
                        feature_loss, save_checkpoints)
from .data import RoadTiles, fixed_crops, load_split, parse_crops, random_crops
from .metrics import Counts, count
from .model import Refiner, build_unet, refinement_loss
from .settings import SegmentationSettings

BENCHMARK = "segmentation"
THRESHOLDS = {"paper": 0.3, "standard": 0.5}
EVAL_BATCH = 4


@torch.no_grad()
def predict(model: Refiner, sat: torch.Tensor, device, batch: int = EVAL_BATCH) -> torch.Tensor:
    """The last refinement's road probabilities (float32 (N,1,H,W), on CPU) of uint8 aerial tiles, in eval mode."""
    with eval_mode(model):
        return torch.cat([model(sat[i:i + batch].to(device).float().div_(255))[-1].float().cpu()
                          for i in range(0, len(sat), batch)])


def score(model: Refiner, tiles: RoadTiles, device, threshold: float, tolerance: float, relaxed: bool) -> Counts:
    """The counts of the model's predictions on every tile (each tile once)."""
    return count(predict(model, tiles.sat, device)[:, 0].numpy(), tiles.mask[:, 0].numpy(), threshold, tolerance,
                 relaxed)


class RoadDelineation(Task):
    """Mosinska et al.'s refined U-Net trained with BCE + mu * the feature MSE at the tap; validation pixel
    quality picks the checkpoint."""
    name = BENCHMARK
    higher_is_better = True

    def __init__(self, train: RoadTiles, val: RoadTiles, *, size: int, batch: int, refine: int, mu: float,
                 crops: int | None, threshold: float, seed: int = 0):
        self.train, self.val, self.size, self.batch = train, val, size, batch
        self.refine, self.mu, self.threshold = refine, mu, threshold
        self.bank = fixed_crops(train, crops, size, seed) if crops else None
        self.key = CacheKey(f"segmentation-train:{Path(train.folder).resolve()}",
                            {"benchmark": BENCHMARK, "crop": size, "target": "road mask (>127) as 0/1 on 3 channels"})

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil((len(self.bank) if self.bank is not None else len(self.train)) / self.batch)

    def build_model(self, seed, device):
        return Refiner(build_unet(seed, device), self.refine)

    def _batch(self, sat: torch.Tensor, mask: torch.Tensor, ids=None) -> Batch:
        target = (mask.to(torch.uint8) * 255).expand(-1, 3, -1, -1)  # the map as an image: 0/255 on 3 channels
        return Batch((sat.float().div_(255), mask.float()), target, ids, self.key if ids else None)

    def batches(self, seed):
        gen = torch.Generator().manual_seed(seed)
        if self.bank is not None:
            sampler = BatchSampler(len(self.bank), self.batch, seed)
            while True:
                idx = sampler.next()
                yield self._batch(*self.bank.crops(idx), [self.bank.ids[i] for i in idx.tolist()])
        while True:  # the published code's epochs: one fresh crop of every tile, in a new order
            for idx in torch.randperm(len(self.train), generator=gen).split(self.batch):
                yield self._batch(*random_crops(self.train, idx, self.size, gen))

    def loss(self, model, inputs, features, target):
        sat, mask = inputs

        def term(y: torch.Tensor) -> torch.Tensor:
            y = y.float()
            return F.binary_cross_entropy(y, mask) + self.mu * feature_loss(features(y.expand(-1, 3, -1, -1)), target)
        return refinement_loss(model(sat), term)

    def validate(self, model, trainee):
        pred = predict(model, self.val.sat, trainee.net.device)
        check_output(pred)
        return count(pred[:, 0].numpy(), self.val.mask[:, 0].numpy(), self.threshold, relaxed=False).scores()["quality"]


def result_rows(trainees: list[Trainee], test: RoadTiles, *, threshold: float, tolerance: float, relaxed: bool,
                epoch_steps: int) -> list[dict]:
    """Tidy rows: per model the pixel (and relaxed) scores on the test split (NaN with the reason in ``status``
    if collapsed)."""
    rows = []
    for t in trainees:
        scores = {}
        if t.ok:
            t.model.load_state_dict(t.best_state)
            scores = score(t.model, test, t.net.device, threshold, tolerance, relaxed).scores()
        metrics = ["completeness", "correctness", "quality"]
        metrics += [f"relaxed_{m}" for m in metrics] if relaxed else []
        for metric in metrics:
            rows.append({"benchmark": BENCHMARK, "arch": t.net.arch.name, "layer": t.layer, "weights": t.net.weights_spec,
                         "dataset": "mrd", "metric": metric, "value": scores.get(metric, math.nan), "status": t.status,
                         "best_epoch": t.best_step // epoch_steps if t.ok else np.nan,
                         "val_quality": t.best_score if t.ok else np.nan, "val_quality_initial": t.initial_score,
                         "n_tiles": len(test), "data": "synthetic" if test.synthetic else "mrd", "config": t.gen.config})
    return rows


def train_and_test(nets: list[LossNetwork], s: SegmentationSettings, *, cache=None, seed: int = 0,
                   progress: bool = True, checkpoint_dir: str | None = None) -> pd.DataFrame:
    """Train one delineation model per tap of each loss network in lockstep and test each (the rows of :func:`run`)."""
    threshold = THRESHOLDS[s.protocol] if s.threshold is None else s.threshold
    t0 = time.perf_counter()
    eval_size = s.size if s.protocol == "paper" else None
    train = load_split(s.data, "train")
    val, test = load_split(s.data, "valid", eval_size), load_split(s.data, "test", eval_size)
    task = RoadDelineation(train, val, size=s.size, batch=s.batch, refine=s.refine, mu=s.mu,
                           crops=parse_crops(s.crops), threshold=threshold, seed=seed)
    epoch = task.steps_per_epoch
    trainees = training.train_lockstep(nets, task, steps=s.epochs * epoch, val_every=epoch, cache=cache, seed=seed,
                                       progress=progress,
                                       desc=f"segmentation {','.join(n.arch.name for n in nets)}")
    rows = result_rows(trainees, test, threshold=threshold, tolerance=s.tolerance, relaxed=s.protocol == "standard",
                       epoch_steps=epoch)
    if checkpoint_dir is not None:
        save_checkpoints(trainees, checkpoint_dir, BENCHMARK, refine=s.refine, protocol=s.protocol)
    meta = run_metadata(protocol=s.protocol, epochs=s.epochs, batch=s.batch, size=s.size, refine=s.refine, mu=s.mu,
                        crops=s.crops, threshold=threshold, tolerance=s.tolerance, seed=seed,
                        device=str(nets[0].device), amp=str(nets[0].amp), compiled=nets[0].compiled,
                        seconds=round(time.perf_counter() - t0, 1))
    return tidy(rows, **meta)


def run_cells(net: LossNetwork, settings: SegmentationSettings, ctx: Context) -> pd.DataFrame:
    """The benchmark's entry point (``lossnets.benchmarks.contract``): every tap of ``net`` in lockstep."""
    return train_and_test([net], settings, cache=ctx.cache, seed=ctx.seed, progress=ctx.progress)


def run(net: LossNetwork | list[LossNetwork], data: str, *, cache=None, seed: int = 0, progress: bool = True,
        checkpoint_dir: str | None = None, **options) -> pd.DataFrame:
    """Train and test one delineation model per tap of ``net`` (or of each of several loss networks) in lockstep.

    ``data``: the Massachusetts Roads folder (``train``, ``valid``/``val``, ``test`` splits in the official or
    the published code's layout). ``options``: the other fields of :class:`SegmentationSettings` (epochs, batch,
    size, refine, mu, protocol, crops, threshold: the pixel metric's, default 0.3 ``paper``, 0.5 ``standard``;
    tolerance: the relaxed metric's, in pixels of the scored tiles). ``checkpoint_dir``: where to save each best
    state_dict. Returns the tidy table (benchmark ``segmentation``, dataset ``mrd``)."""
    nets = [net] if isinstance(net, LossNetwork) else list(net)
    settings = SegmentationSettings.build(dict(data=data, **options), "segmentation.run")
    return train_and_test(nets, settings, cache=cache, seed=seed, progress=progress, checkpoint_dir=checkpoint_dir)


__all__ = ["run", "run_cells", "train_and_test", "RoadDelineation", "predict", "score", "result_rows"]
