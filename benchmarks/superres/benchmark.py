"""Benchmark 2: single-image super-resolution (Johnson et al. 2016) trained with each loss network.

One transform network per (loss network, tap) is trained with the feature MSE at the tap between the
loss network's features of its output and of the HR image, all taps in lockstep on the shared training
engine (``lossnets.benchmarks.training``: one target pass per loss network and batch, the feature cache
for the fixed HR targets where its policy pays, collapse isolation, best checkpoint).

Validation PSNR is measured at a fixed interval; the best checkpoint is tested on each test folder
(PSNR and SSIM, see :func:`evaluate`). A model whose loss becomes NaN/inf or whose output becomes
constant is recorded as collapsed (rows with value NaN and the reason in ``status``); the others go on.

Entry points: :func:`run_cells` (the benchmark contract's), :func:`run` (the Python API's).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lossnets.engine import LossNetwork

from .. import training
from ..image_metrics import psnr, rgb_to_y, shave, ssim, to_uint8
from ..contract import Context
from ..sweep.results import run_metadata, tidy
from ..training import (Batch, BatchSampler, CacheKey, Task, Trainee, check_output, check_protocol, eval_mode,
                        feature_loss, save_checkpoints)
from .data import SRImage, SRSet, load_sr_folder, load_test_folder
from .model import build_transform_net
from .settings import SUPERRES, SuperresSettings

EVAL_BATCH = 16


def _to_float(x: torch.Tensor, device) -> torch.Tensor:
    return x.to(device, non_blocking=True).float().div_(255)


@torch.no_grad()
def predict(model: torch.nn.Module, lr: torch.Tensor, device, batch: int = EVAL_BATCH) -> torch.Tensor:
    """SR outputs in [0,1] (float32, on CPU) of uint8 LR images (N,3,h,w), in eval mode."""
    with eval_mode(model):
        return torch.cat([model(_to_float(lr[i:i + batch], device)).float().cpu() for i in range(0, len(lr), batch)])


class SuperResolution(Task):
    """Johnson et al.'s transform network trained with the feature MSE at the tap between the loss network's
    features of its output and of the HR image; validation PSNR (RGB, data range 1) picks the checkpoint."""
    name = "superres"
    higher_is_better = True

    def __init__(self, train: SRSet, val: SRSet, scale: int, protocol: str, batch: int):
        self.train, self.val, self.scale, self.protocol, self.batch = train, val, scale, protocol, batch
        size = int(train.hr.shape[-1])
        # how the HR pixels were made (independent of scale and protocol: entries are shared by all runs)
        self.key = CacheKey(f"superres-train:{Path(train.folder).resolve()}" if train.folder else "superres-train",
                            {"benchmark": "superres", "size": size,
                             "hr": "resize shorter side (bicubic, antialiased) + centre crop"})

    def build_model(self, seed, device):
        return build_transform_net(self.scale, self.protocol, seed=seed, device=device)

    def batches(self, seed):
        sampler = BatchSampler(len(self.train), self.batch, seed)
        while True:
            idx = sampler.next()
            yield Batch(self.train.lr[idx].float().div_(255), self.train.hr[idx],
                        [self.train.names[i] for i in idx.tolist()], self.key)

    def loss(self, model, lr, features, target):
        return feature_loss(features(model(lr)), target)

    def validate(self, model, trainee):
        out = predict(model, self.val.lr, trainee.net.device)
        check_output(out)
        return float(psnr(out, _to_float(self.val.hr, "cpu"), 1.0).mean())


def train_lockstep(nets: LossNetwork | list[LossNetwork], train: SRSet, val: SRSet, *, scale: int,
                   iterations: int, batch: int = 4, protocol: str = "paper", val_every: int | None = None,
                   cache=None, seed: int = 0, progress: bool = False) -> list[Trainee]:
    """Train one transform network per tap of each loss network in lockstep (``lossnets.benchmarks.training``);
    the best checkpoint by validation PSNR, checked every ``val_every`` iterations and at the end."""
    nets = [nets] if isinstance(nets, LossNetwork) else list(nets)
    task = SuperResolution(train, val, scale, protocol, batch)
    return training.train_lockstep(nets, task, steps=iterations, val_every=val_every, cache=cache, seed=seed,
                                   progress=progress, desc=f"superres x{scale} " + ",".join(n.arch.name for n in nets))


def evaluate(model: torch.nn.Module, images: list[SRImage], scale: int, protocol: str, device) -> dict[str, float]:
    """Mean PSNR and SSIM of a model over one test set.

    ``paper``: RGB of the float output on the ``size`` crops, data range 1 (SSIM averaged over channels).
    ``standard``: output rounded to uint8, Y channel (BT.601), ``scale`` pixels shaved, data range 255;
    SSIM with the 11x11 Gaussian window (sigma 1.5), equal to scikit-image on the same arrays.
    """
    check_protocol(protocol)
    p, s = [], []
    by_shape: dict[tuple, list[SRImage]] = {}
    for im in images:
        by_shape.setdefault(tuple(im.lr.shape), []).append(im)
    for group in by_shape.values():
        out = predict(model, torch.stack([im.lr for im in group]), device)
        hr = torch.stack([im.hr for im in group])
        if protocol == "paper":
            x, y, dr = out.clamp(0, 1), hr.float() / 255, 1.0
        else:
            x, y, dr = shave(rgb_to_y(to_uint8(out)), scale), shave(rgb_to_y(hr), scale), 255.0
        p.append(psnr(x, y, dr))
        s.append(ssim(x, y, dr))
    return {"psnr": float(torch.cat(p).mean()), "ssim": float(torch.cat(s).mean())}


def result_rows(models: list[Trainee], tests: dict[str, list[SRImage]], scale: int, protocol: str) -> list[dict]:
    """Tidy rows: per model and test set, psnr and ssim (NaN with the reason in ``status`` if collapsed)."""
    rows = []
    for m in models:
        scores = {}
        if m.ok:
            m.model.load_state_dict(m.best_state)
            for name, images in tests.items():
                scores[name] = evaluate(m.model, images, scale, protocol, m.net.device)
                if not all(math.isfinite(v) or v == math.inf for v in scores[name].values()):
                    m.collapse(f"non-finite test metric on {name}")
        for name in tests:
            for metric in ("psnr", "ssim"):
                rows.append({"benchmark": f"superres_x{scale}", "arch": m.net.arch.name, "layer": m.layer,
                             "weights": m.net.weights_spec, "dataset": name, "metric": metric,
                             "value": scores[name][metric] if m.ok else math.nan, "status": m.status,
                             "best_iteration": m.best_step if m.ok else np.nan,
                             "val_psnr": m.best_score if m.ok else np.nan, "val_psnr_initial": m.initial_score,
                             "config": m.gen.config,
                             "n_images": len(tests[name])})
    return rows


def train_and_test(nets: list[LossNetwork], s: SuperresSettings, *, cache=None, seed: int = 0, progress: bool = True,
                   checkpoint_dir: str | None = None) -> pd.DataFrame:
    """Train one SR model per tap of each loss network in lockstep and test each (the rows of :func:`run`)."""
    t0 = time.perf_counter()
    n_train, n_val = s.n_train or None, s.n_val or None  # 0 or None: every file
    train_set = load_sr_folder(s.train, s.size, s.scale, s.protocol, n=n_train, seed=seed)
    val_set = load_sr_folder(s.val, s.size, s.scale, s.protocol, n=n_val, seed=seed)
    tests = {name: load_test_folder(folder, s.size, s.scale, s.protocol) for name, folder in s.test.items()}
    models = train_lockstep(nets, train_set, val_set, scale=s.scale, iterations=s.iterations, batch=s.batch,
                            protocol=s.protocol, val_every=s.val_every, cache=cache, seed=seed, progress=progress)
    rows = result_rows(models, tests, s.scale, s.protocol)
    if checkpoint_dir is not None:
        save_checkpoints(models, checkpoint_dir, f"superres_x{s.scale}", scale=s.scale, protocol=s.protocol)
    meta = run_metadata(protocol=s.protocol, iterations=s.iterations, batch=s.batch, size=s.size, seed=seed,
                        n_train=n_train, device=str(nets[0].device), amp=str(nets[0].amp),
                        compiled=nets[0].compiled, seconds=round(time.perf_counter() - t0, 1))
    return tidy(rows, **meta)


def run_cells(net: LossNetwork, settings: SuperresSettings, ctx: Context) -> pd.DataFrame:
    """The benchmark's entry point (``lossnets.benchmarks.contract``): every tap of ``net`` in lockstep."""
    return train_and_test([net], settings, cache=ctx.cache, seed=ctx.seed, progress=ctx.progress)


def run(net: LossNetwork | list[LossNetwork], train: str, val: str, test: dict[str, str] | list[str], *,
        scale: int | list[int] = 4, cache=None, seed: int = 0, progress: bool = True,
        checkpoint_dir: str | None = None, **options) -> pd.DataFrame:
    """Train and test one SR model per tap of ``net`` (or of each of several loss networks) in lockstep.

    ``train``/``val``: image folders (``n_train``/``n_val`` files sampled with ``seed`` from the sorted list; 0 or
    None takes all). ``test``: dataset name -> folder (or ``["NAME=DIR", ...]``). ``scale``: 4, 8 or a list (one
    lockstep run per scale). ``options``: the other fields of :class:`SuperresSettings` (iterations, batch, size,
    protocol, val_every, n_train, n_val). ``cache``: a ``lossnets.cache.FeatureCache`` or its URL for the target
    features. ``checkpoint_dir``: where to save each model's best state_dict as
    ``superres_x{scale}_{arch}_{layer}_{weights}.pt`` (default: kept in memory only).
    Returns the tidy table (``benchmark`` ``superres_x4``/``superres_x8``, ``dataset`` the test names, ``metric``
    psnr/ssim, ``status``)."""
    nets = [net] if isinstance(net, LossNetwork) else list(net)
    runs = SUPERRES.runs(dict(train=train, val=val, test=test, scale=scale, **options), "superres.run")
    return pd.concat([train_and_test(nets, s, cache=cache, seed=seed, progress=progress,
                                     checkpoint_dir=checkpoint_dir) for s in runs], ignore_index=True)


__all__ = ["run", "run_cells", "train_and_test", "train_lockstep", "evaluate", "predict", "SuperResolution", "result_rows"]
