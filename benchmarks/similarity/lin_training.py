"""Learning LPIPS lin weights (Zhang et al. 2018) from per-pair statistics, for any loss network and tap set.

The LPIPS distance is linear in its weights, d = sum over taps and channels of w * m, so the lpips package's
training procedure runs on the statistics m of the BAPPS ``2afc/train`` triplets (see ``statistics.py``)
instead of the images: an epoch is a few matrix products, not a backbone pass over 150k triplets.

The procedure is the lpips trainer's: lin weights initialised as its 1x1 convs are (uniform in
+-1/sqrt(C)); the ranking head ``Dist2LogitLayer`` on (d0, d1, d0-d1, d0/(d1+0.1), d1/(d0+0.1)); BCE against
the judgment; Adam (lr 1e-4, betas 0.5, 0.999) over the lin weights and the head, batch 50, shuffled; the lr
constant, then decayed linearly over the last ``decay_epochs`` (lpips: 5 + 5); lin weights clamped at >= 0
after every step (only they: lpips also clamps SqueezeNet's own 1x1 convs).

Dropout: lpips drops single feature differences (p=0.5, per pixel and channel) before its lin layers. Its
expectation is the undropped distance, and its noise averages over the H*W pixels of a tap, which the
per-pair statistics no longer hold. So ``dropout=0`` (the default) trains without it; ``dropout=p`` drops
whole channels of a pair's statistics (and rescales by 1/(1-p)), a stronger regulariser than lpips's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import trange

from ..contract import Context
from .bapps import BAPPS, find_subsets, load_bapps, resolve_root, shared_bapps
from .scoring import score_2afc, score_set
from .settings import LinTraining, LinTrainSettings
from .statistics import PairStatistics, open_store, statistics


class RankingHead(nn.Module):
    """lpips' ``Dist2LogitLayer``: 1x1 convs 5 -> 32 -> 32 -> 1 with LeakyReLU(0.2) and a sigmoid, on
    (d0, d1, d0-d1, d0/(d1+eps), d1/(d0+eps)); its state_dict loads into lpips's."""

    def __init__(self, mid: int = 32):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(5, mid, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(mid, mid, 1),
                                   nn.LeakyReLU(0.2, True), nn.Conv2d(mid, 1, 1), nn.Sigmoid())

    def forward(self, d0: Tensor, d1: Tensor, eps: float = 0.1) -> Tensor:
        x = torch.stack((d0, d1, d0 - d1, d0 / (d1 + eps), d1 / (d0 + eps)), 1)
        for layer in self.model:  # a 1x1 conv on (B, C, 1, 1) is a linear map of (B, C): cheaper on a CPU
            x = F.linear(x, layer.weight.flatten(1), layer.bias) if isinstance(layer, nn.Conv2d) else layer(x)
        return x.view(-1)


def initial_lin(channels, gen: torch.Generator) -> Tensor:
    """lpips' lin layers at creation (Conv2d(C, 1, 1) init: uniform in +-1/sqrt(C)), concatenated."""
    return torch.cat([(torch.rand(c, generator=gen) * 2 - 1) / math.sqrt(c) for c in channels])


@dataclass
class Triplets:
    """2AFC triplets as rows of a statistics matrix: ``m`` (P, sum C) float32 (a pair's taps side by side),
    ``i0``/``i1`` the row of each triplet's (ref, p0) and (ref, p1) pair, ``judge`` (n,) float32."""
    m: Tensor
    i0: Tensor
    i1: Tensor
    judge: Tensor
    channels: tuple[int, ...]

    @classmethod
    def of(cls, stats: PairStatistics, layers) -> "Triplets":
        """The 2AFC triplets of every subset of ``stats`` at the taps ``layers``."""
        subs = [s for s in stats.slots if stats.data.subsets[s].kind == "2afc"]
        if not subs:
            raise ValueError(f"no 2AFC triplets in {stats.data.root} to train lin weights on")
        cat = lambda key: torch.from_numpy(np.concatenate([stats.slots[s][key] for s in subs]))  # noqa: E731
        judge = np.concatenate([stats.data.subsets[s].target for s in subs]).astype(np.float32)
        taps = [stats.m[layer] for layer in layers]  # each read once (from the store, when there is one)
        channels = tuple(m.shape[1] for m in taps)
        return cls(torch.cat(taps, 1), cat("d0"), cat("d1"), torch.from_numpy(judge), channels)

    def distances(self, w: Tensor, rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(d0, d1) of the triplets ``rows`` (default all) under weights ``w``."""
        i0, i1 = (self.i0, self.i1) if rows is None else (self.i0[rows], self.i1[rows])
        return self.m[i0] @ w, self.m[i1] @ w

    def score(self, w: Tensor) -> float:
        """2AFC agreement of all triplets (pooled) under ``w``."""
        with torch.no_grad():
            d0, d1 = self.distances(w)
        return score_2afc(d0.double().numpy(), d1.double().numpy(), self.judge.double().numpy())


@dataclass
class TrainedLin:
    """Learned lin weights (a (C,) vector per tap), the ranking head's state and one history row per epoch."""
    weights: tuple[Tensor, ...]
    head: dict
    history: list[dict] = field(default_factory=list)


def _dropped(m: Tensor, p: float, gen: torch.Generator) -> Tensor:
    if p == 0:
        return m
    return m * (torch.rand(m.shape, generator=gen) >= p) / (1 - p)


def train_lin(train: Triplets, settings: LinTraining = LinTraining(), evaluate: Callable[[tuple], dict] | None = None,
              progress: bool = False, desc: str = "lin") -> TrainedLin:
    """lpips' training procedure on the statistics ``train``; ``evaluate(weights)`` adds its figures (e.g.
    validation 2AFC) to each epoch's history row."""
    gen = torch.Generator().manual_seed(settings.seed)
    w = initial_lin(train.channels, gen).requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        head = RankingHead()  # Conv2d's own init, seeded
    opt = torch.optim.Adam([w, *head.parameters()], lr=settings.lr, betas=(settings.beta1, 0.999), foreach=True)
    bce = nn.BCELoss()
    history = []
    for epoch in trange(1, settings.epochs + 1, desc=desc, unit="epoch", leave=False, disable=not progress):
        lr = settings.lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        total, steps = torch.zeros(()), 0
        for rows in torch.randperm(len(train.judge), generator=gen).split(settings.batch):
            m0 = _dropped(train.m[train.i0[rows]], settings.dropout, gen)
            m1 = _dropped(train.m[train.i1[rows]], settings.dropout, gen)
            loss = bce(head(m0 @ w, m1 @ w), train.judge[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                w.clamp_(min=0)
            total, steps = total + loss.detach(), steps + 1  # no sync per step
        weights = tuple(v.detach().clone() for v in w.split(train.channels))
        row = dict(epoch=epoch, lr=lr, loss=total.item() / max(steps, 1), train_2afc=train.score(w.detach()))
        history.append({**row, **(evaluate(weights) if evaluate else {})})
    return TrainedLin(weights, head.state_dict(), history)  # the last epoch's


def learn_lin(net, train, sets, *, val: PairStatistics | None = None, cache=None,
              training: LinTraining = LinTraining(), out_dir=None, batch_size: int = 64,
              progress: bool = True) -> tuple[dict, pd.DataFrame]:
    """Lin weights of each tap set in ``sets`` of ``net``, learned on ``train``: a loaded ``2afc/train`` split or
    a BAPPS folder holding one (its statistics through ``cache`` when given); ``val``: statistics whose subsets are
    scored after every epoch. Writes ``out_dir/<arch>/<set>.pth`` (lpips format) and
    ``out_dir/<arch>/history.csv`` when ``out_dir`` is given. Returns ({set: LinWeights}, history table)."""
    from lossnets.engine.lin_weights import LinWeights, lin_digest, lin_file, save_lin_weights

    from ..sweep.results import write_csv_atomic
    arch = net.arch.name
    train = train if isinstance(train, BAPPS) else load_bapps(train, split="train", progress=progress)
    stats = statistics(net, train, cache=cache, batch_size=batch_size, progress=progress)
    learned, rows = {}, []
    for s in sets:
        def evaluate(weights, s=s) -> dict:
            return {f"val_{r['metric']}": r["value"] for r in score_set(val, s, weights)
                    if r["dataset"] in ("2afc/val", "jnd/val")}
        trained = train_lin(Triplets.of(stats, s.layers), training, evaluate if val is not None else None,
                            progress=progress, desc=f"lin {arch} {s.name}")
        learned[s.name] = LinWeights(trained.weights, f"trained@{lin_digest(trained.weights)[:8]}")
        rows += [dict(arch=arch, layer=s.name, weights=net.weights_spec, lin=learned[s.name].label, **h)
                 for h in trained.history]
        if out_dir is not None:
            save_lin_weights(lin_file(out_dir, arch, s.name), trained.weights)
    history = pd.DataFrame(rows).assign(data=stats.data.label)
    if out_dir is not None:
        write_csv_atomic(history, Path(out_dir) / arch / "history.csv")
    return learned, history


def run_cells(net, settings: LinTrainSettings, ctx: Context) -> pd.DataFrame:
    """The entry point of ``lossnets lin train`` (the benchmark contract's): lin weights of each of the cells' tap
    sets, learned on ``2afc/train`` (the val split scored after every epoch when there is one) and written to
    ``ctx.out_dir/<arch>/<set>.pth``; its rows are the training history."""
    from lossnets.engine.tap_sets import tap_sets
    train = shared_bapps(settings.data, split="train", progress=ctx.progress)
    store = open_store(ctx.cache, ctx.progress)
    val = None
    if find_subsets(resolve_root(settings.data, "val")):
        val = statistics(net, shared_bapps(settings.data, progress=ctx.progress), cache=store,
                         batch_size=settings.batch_size, progress=ctx.progress)
    _, history = learn_lin(net, train, tap_sets(net.arch.name, ctx.layers), val=val, cache=store,
                           training=settings.training, out_dir=ctx.out_dir, batch_size=settings.batch_size,
                           progress=ctx.progress)
    return history.assign(benchmark="lin_train")
