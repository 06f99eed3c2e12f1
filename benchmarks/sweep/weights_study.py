"""Architecture against weights: what a run with random-weight and ImageNet loss networks says about Liu et al.'s
claim (CVPR 2021) that a perceptual loss owes its success to the architecture, not to the trained weights.

Input: tidy rows of single-tap loss networks with ``score`` (one benchmark, dataset and metric), ``arch``,
``layer``, ``weights``, ``seed`` and ``value``, and ``signed`` (the value, negated where lower is better).
Random-weight cells are aggregated over seeds (mean, sample std, n); ImageNet weights have no seed, their
repeated rows (if any) are averaged the same way.

- ``seed_cells``: per (score, source, arch, layer) the mean, std and n over seeds.
- ``random_minus_imagenet``: per loss network and random scheme, the seed mean minus the ImageNet value.
- ``rank_agreement``: per score and scheme, Spearman's rho between architectures ranked under random weights
  (each by its best tap, per seed) and under ImageNet weights; its mean over seeds and the [min, max] interval.
- ``scheme_ranks``: per score that several schemes ran, each random scheme's rank (1 best) by its mean signed value
  over the loss networks that every source ran; ImageNet's mean beside them, unranked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

IMAGENET = "imagenet"


def weights_source(weights: pd.Series) -> pd.Series:
    """The weights column as sources: ``random`` is ``random:torchvision``; other strings as they are."""
    w = weights.astype(str)
    return w.where(w != "random", "random:torchvision")


def is_random(source: pd.Series) -> pd.Series:
    return source.astype(str).str.startswith("random:")


def seed_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (score, source, arch, layer): ``mean``, ``std`` (sample std over seeds; NaN for one) and ``n`` (seeds)
    of ``value`` and the mean of ``signed``."""
    rows = rows.assign(source=weights_source(rows["weights"]))
    keys = ["score", "source", "arch", "layer"]
    g = rows.groupby(keys, sort=False)
    out = g["value"].agg(mean="mean", std="std", n="count").join(g["signed"].mean())
    return out.reset_index()


def random_minus_imagenet(cells: pd.DataFrame) -> pd.DataFrame:
    """Per score, loss network (arch, layer) and random scheme: the seed mean, its std and n, the ImageNet
    value and ``difference`` = random mean - ImageNet (its sign as the metric's: for error-like metrics a negative
    difference favours random weights)."""
    imagenet = cells[cells["source"] == IMAGENET].set_index(["score", "arch", "layer"])["mean"].rename(IMAGENET)
    rand = cells[is_random(cells["source"])].join(imagenet, on=["score", "arch", "layer"], how="inner")
    rand["difference"] = rand["mean"] - rand[IMAGENET]
    return rand[["score", "arch", "layer", "source", "mean", "std", "n", IMAGENET, "difference"]].reset_index(drop=True)


def best_tap_values(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (score, source, seed, arch): the ``signed`` value of the architecture's best tap (its highest)."""
    rows = rows.assign(source=weights_source(rows["weights"]))
    keys = ["score", "source", "seed", "arch"]
    return rows.groupby(keys, sort=False)["signed"].max().reset_index()


def rank_agreement(rows: pd.DataFrame) -> pd.DataFrame:
    """Per score and random scheme: Spearman's rho of the architectures (each by its best tap) under that scheme
    against ImageNet weights, one rho per seed; ``rho`` their mean, ``rho_min``/``rho_max`` the interval over
    seeds, ``seeds`` and ``archs`` (the architectures both ran; rho needs three)."""
    best = best_tap_values(rows)
    imagenet = best[best["source"] == IMAGENET].groupby(["score", "arch"])["signed"].mean()
    out = []
    for (score, source), d in best[is_random(best["source"])].groupby(["score", "source"], sort=False):
        rhos, archs = [], 0
        for _, s in d.groupby("seed", sort=True):
            ref = imagenet.get(score)
            if ref is None:
                continue
            both = s.set_index("arch")["signed"].to_frame("random").join(ref.rename(IMAGENET), how="inner")
            archs = max(archs, len(both))
            if len(both) >= 3:
                rhos.append(float(spearmanr(both["random"], both[IMAGENET]).statistic))
        if rhos:
            out.append({"score": score, "source": source, "rho": float(np.mean(rhos)), "rho_min": min(rhos),
                        "rho_max": max(rhos), "seeds": len(rhos), "archs": archs})
    return pd.DataFrame(out, columns=["score", "source", "rho", "rho_min", "rho_max", "seeds", "archs"])


def scheme_ranks(cells: pd.DataFrame) -> pd.DataFrame:
    """Per score that two or more random schemes ran: each source's mean (over the loss networks every source ran)
    of the seed-mean value, and each random scheme's ``rank`` among the schemes (1 best; ImageNet's is left
    empty)."""
    out = []
    for score, d in cells.groupby("score", sort=False):
        nets = d.groupby(["arch", "layer"])["source"].nunique()
        common = nets[nets == d["source"].nunique()].index
        d = d.set_index(["arch", "layer"]).loc[common].reset_index()
        means = d.groupby("source", sort=False)[["mean", "signed"]].mean()
        rand = means[is_random(means.index.to_series())]
        if len(rand) < 2:
            continue  # one scheme: nothing to rank
        ranks = rand["signed"].rank(ascending=False, method="average")
        for source, row in means.iterrows():
            out.append({"score": score, "source": source, "mean": row["mean"], "networks": len(common),
                        "rank": ranks.get(source, np.nan)})
    return pd.DataFrame(out, columns=["score", "source", "mean", "networks", "rank"])
