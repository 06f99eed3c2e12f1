"""Benchmark 4: autoencoders trained with each loss network (Pihlgren et al. 2020), scored by downstream MLPs.

One convolutional autoencoder per (loss network, tap) trains with the feature MSE at the tap between the
loss network's features of its reconstruction and of its input, all taps in lockstep on the shared training
engine; the target is the input itself, so its features are fixed and the feature cache serves every epoch
and rerun where its policy pays. The best checkpoint by validation loss encodes the MLP splits once; then
the seven MLPs of every autoencoder of the group train as one batched program (``probes``), and the score
is the test accuracy of each autoencoder's MLP with the best validation accuracy.

Protocols: ``paper`` (the published code) feeds the loss network unnormalised [0,1] images and trains the
MLPs with MSE against one-hot labels; ``standard`` applies the normalisation the weights expect and trains
the MLPs with cross-entropy.

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
from ..contract import Context
from ..sweep.results import run_metadata, tidy
from ..training import (Batch, BatchSampler, CacheKey, Task, Trainee, check_output, eval_mode,
                        feature_loss, save_checkpoints)
from .data import MODEL_SIDE, BenchmarkSplits, ImageSet, load_splits, model_input
from .model import build_autoencoder, kl_divergence
from .probes import train_probes
from .settings import AutoencoderSettings

BENCHMARK = "autoencoder"
NORMALIZE = {"paper": "none", "standard": "imagenet"}
EVAL_BATCH = 256


class Autoencoding(Task):
    """The autoencoder trained with the feature MSE at the tap (+ ``vae`` * KL for the variational variant);
    the validation loss (lower is better) picks the checkpoint."""
    name = BENCHMARK
    higher_is_better = False

    def __init__(self, splits: BenchmarkSplits, root: str, *, batch: int, embedding: int, vae: float | None):
        self.splits, self.batch, self.embedding, self.vae = splits, batch, embedding, vae
        self.dataset = splits.dataset
        self.key = CacheKey(f"autoencoder-{self.dataset}:{Path(root).resolve()}",
                            {"benchmark": BENCHMARK, "input": f"{self.dataset} at {MODEL_SIDE[self.dataset]}x"
                             f"{MODEL_SIDE[self.dataset]} (SVHN reflection-padded from 32)"})

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.splits.autoencoder_train) / self.batch)

    def build_model(self, seed, device):
        return build_autoencoder(MODEL_SIDE[self.dataset], self.embedding, vae=self.vae is not None, seed=seed,
                                 device=device)

    def _batch(self, images: ImageSet) -> Batch:
        x = model_input(images.images, self.dataset)
        target = x.mul(255).round_().to(torch.uint8)  # the input itself, as the image the loss network sees
        return Batch(x, target, [f"{images.source}:{p}" for p in images.positions.tolist()], self.key)

    def batches(self, seed):
        train = self.splits.autoencoder_train
        sampler = BatchSampler(len(train), self.batch, seed)
        while True:
            yield self._batch(train.subset(sampler.next().numpy()))

    def _loss(self, rec, features, target) -> torch.Tensor:
        loss = feature_loss(features(rec.image.float()), target)
        if self.vae is not None:
            loss = loss + self.vae * kl_divergence(rec.mean.float(), rec.logvar.float())
        return loss

    def loss(self, model, x, features, target):
        return self._loss(model(x), features, target)

    @torch.no_grad()
    def validate(self, model, trainee: Trainee):
        """The mean training loss over the validation split (targets from the cache where it pays)."""
        val, device = self.splits.autoencoder_val, trainee.net.device
        total = 0.0
        for start in range(0, len(val), EVAL_BATCH):
            batch = self._batch(val.subset(np.arange(start, min(start + EVAL_BATCH, len(val)))))
            with trainee.net.autocast():
                rec = model(batch.inputs.to(device))
            check_output(rec.image)
            target = trainee.targets(batch.target.to(device), batch.ids, batch.key)[trainee.layer]
            total += float(self._loss(rec, trainee.features, target)) * len(batch.ids)
        return total / len(val)


@torch.no_grad()
def embed(model, images: ImageSet, dataset: str, device) -> torch.Tensor:
    """The encoder's embeddings (N, embedding) of a split, in eval mode, float32 on CPU."""
    with eval_mode(model):
        return torch.cat([model.encode(model_input(images.images[i:i + EVAL_BATCH], dataset, device)).float().cpu()
                          for i in range(0, len(images), EVAL_BATCH)])


def probe_rows(trainees: list[Trainee], splits: BenchmarkSplits, *, protocol: str, epochs: int, batch: int,
               seed: int, epoch_steps: int) -> list[dict]:
    """Tidy rows: per autoencoder the chosen MLP's test accuracy (metric ``accuracy``), and every MLP's best
    validation and test accuracy (``val_accuracy``/``test_accuracy``, column ``mlp``); NaN if collapsed."""
    ok = [t for t in trainees if t.ok]
    results = {}
    if ok:
        sets = {}
        for name, images in (("train", splits.mlp_train), ("val", splits.mlp_val), ("test", splits.mlp_test)):
            embeddings = []
            for t in ok:
                t.model.load_state_dict(t.best_state)
                embeddings.append(embed(t.model, images, splits.dataset, t.net.device))
            sets[name] = (torch.stack(embeddings), images.labels)
        device = ok[0].net.device
        scores = train_probes(sets["train"], sets["val"], sets["test"], protocol=protocol, epochs=epochs, batch=batch,
                              seed=seed, device=device)
        results = {id(t): r for t, r in zip(ok, scores)}
    rows = []
    for t in trainees:
        base = {"benchmark": BENCHMARK, "arch": t.net.arch.name, "layer": t.layer, "weights": t.net.weights_spec,
                "dataset": splits.dataset, "status": t.status, "best_epoch": math.nan, "val_loss": math.nan,
                "val_loss_initial": t.initial_score, "n_test": len(splits.mlp_test),
                "data": "synthetic" if splits.synthetic else splits.dataset, "config": t.gen.config}
        r = results.get(id(t))
        if r is None:
            rows.append({**base, "metric": "accuracy", "value": math.nan, "mlp": ""})
            continue
        base.update(best_epoch=t.best_step // epoch_steps, val_loss=t.best_score)
        rows.append({**base, "metric": "accuracy", "value": r.accuracy, "mlp": r.chosen})
        for m in r.mlps:
            rows += [{**base, "metric": "val_accuracy", "value": m.best_val_accuracy, "mlp": m.mlp},
                     {**base, "metric": "test_accuracy", "value": m.test_accuracy, "mlp": m.mlp}]
    return rows


def train_and_probe(nets: list[LossNetwork], s: AutoencoderSettings, *, cache=None, seed: int = 0,
                    progress: bool = True, checkpoint_dir: str | None = None) -> pd.DataFrame:
    """Train one autoencoder per tap of each loss network in lockstep and score each with the downstream MLPs (the
    rows of :func:`run`)."""
    nets = [n.renormalized(NORMALIZE[s.protocol]) for n in nets]
    t0 = time.perf_counter()
    rows = []
    for d in s.dataset:
        splits = load_splits(s.data, d, seed, autoencoder_limit=s.n_autoencoder, mlp_limit=s.n_mlp,
                             test_limit=s.n_test)
        task = Autoencoding(splits, s.data, batch=s.batch, embedding=s.embedding, vae=s.vae)
        epoch = task.steps_per_epoch
        trainees = training.train_lockstep(nets, task, steps=s.epochs * epoch, val_every=epoch, cache=cache, seed=seed,
                                           progress=progress, desc=f"autoencoder {d} " + ",".join(n.arch.name for n in nets))
        rows += probe_rows(trainees, splits, protocol=s.protocol, epochs=s.mlp_epochs, batch=s.mlp_batch, seed=seed,
                           epoch_steps=epoch)
        if checkpoint_dir is not None:
            save_checkpoints(trainees, checkpoint_dir, f"{BENCHMARK}_{d}", dataset=d, protocol=s.protocol,
                             embedding=s.embedding, vae=s.vae)
    meta = run_metadata(protocol=s.protocol, epochs=s.epochs, batch=s.batch, embedding=s.embedding, vae=s.vae,
                        mlp_epochs=s.mlp_epochs, mlp_batch=s.mlp_batch, seed=seed, device=str(nets[0].device),
                        amp=str(nets[0].amp), compiled=nets[0].compiled, seconds=round(time.perf_counter() - t0, 1))
    return tidy(rows, **meta)


def run_cells(net: LossNetwork, settings: AutoencoderSettings, ctx: Context) -> pd.DataFrame:
    """The benchmark's entry point (``lossnets.benchmarks.contract``): every tap of ``net`` in lockstep."""
    return train_and_probe([net], settings, cache=ctx.cache, seed=ctx.seed, progress=ctx.progress)


def run(net: LossNetwork | list[LossNetwork], data: str, *, cache=None, seed: int = 0, progress: bool = True,
        checkpoint_dir: str | None = None, **options) -> pd.DataFrame:
    """Train one autoencoder per tap of ``net`` (or of each of several loss networks) in lockstep and score each
    with the downstream MLPs.

    ``data``: the folder holding ``{train,test,extra}_32x32.mat`` (SVHN) or ``stl10_binary/`` (STL-10).
    ``options``: the other fields of :class:`AutoencoderSettings` (dataset: ``svhn``, ``stl10`` or both, one
    lockstep run each; epochs, batch, embedding; vae: the KL weight of the variational variant; mlp_epochs,
    mlp_batch, protocol; n_autoencoder/n_mlp/n_test: read only the first that many images of the autoencoder's,
    the MLPs' and the test split). Returns the tidy table (benchmark ``autoencoder``, dataset ``svhn``/``stl10``)."""
    nets = [net] if isinstance(net, LossNetwork) else list(net)
    settings = AutoencoderSettings.build(dict(data=data, **options), "autoencoder.run")
    return train_and_probe(nets, settings, cache=cache, seed=seed, progress=progress, checkpoint_dir=checkpoint_dir)


__all__ = ["run", "run_cells", "train_and_probe", "Autoencoding", "embed", "probe_rows"]
