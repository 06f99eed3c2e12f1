"""BAPPS scoring, exactly as the ``lpips`` package: 2AFC agreement and JND mAP (numpy, float64).

* 2AFC = mean of ``[d0<d1](1-g) + [d1<d0]g + 0.5[d0=d1]``.
* JND = VOC all-point average precision over the pairs sorted by ascending distance, with ``same`` as
  soft positives.

:func:`score` turns the distances of every subset into rows: per subset, then ``2afc/<split>`` (the unweighted
mean of the 2AFC subsets) and ``jnd/<split>`` (the pooled JND pairs); the ``kumar`` tap set adds Kumar et al.'s
Perceptual Score (:func:`perceptual_score`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossnets.engine.tap_sets import KUMAR_PRESET, TapSet

from .bapps import BAPPS
from .statistics import PairStatistics


def score_2afc(d0, d1, judge) -> float:
    """2AFC agreement: [d0<d1](1-g) + [d1<d0]g + 0.5[d0=d1], averaged."""
    d0, d1, g = (np.asarray(a, dtype=np.float64) for a in (d0, d1, judge))
    if not (d0.shape == d1.shape == g.shape):
        raise ValueError(f"shapes differ: d0 {d0.shape}, d1 {d1.shape}, judge {g.shape}")
    if d0.size == 0:
        return float("nan")
    return float(np.mean((d0 < d1) * (1.0 - g) + (d1 < d0) * g + (d0 == d1) * 0.5))


def voc_ap(rec, prec) -> float:
    """VOC all-point average precision: area under the precision envelope, summed where recall changes."""
    mrec = np.concatenate(([0.0], np.asarray(rec, dtype=np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(prec, dtype=np.float64), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def jnd_map(d, same) -> float:
    """JND mAP: pairs sorted by ascending distance (stable for ties), ``same`` as soft positives."""
    d, s = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=np.float64)
    if d.shape != s.shape:
        raise ValueError(f"shapes differ: d {d.shape}, same {s.shape}")
    if d.size == 0 or s.sum() == 0:
        return float("nan")
    s = s[np.argsort(d, kind="stable")]
    tp = np.cumsum(s)
    fp = np.cumsum(1.0 - s)
    prec = tp / (tp + fp)
    rec = tp / s.sum()
    return voc_ap(rec, prec)


@dataclass
class Distances:
    """Per metric (a tap or tap set) and subset: ``d0``/``d1`` (2AFC, ref to p0/p1) or ``d`` (JND, p0 to p1),
    float64."""
    data: BAPPS
    values: dict[str, dict[str, dict[str, np.ndarray]]]  # metric -> subset -> {"d0","d1"} or {"d"}


def score(dists: Distances) -> list[dict]:
    """Rows (layer, dataset, metric, value, n) of the 2AFC and JND scores and their aggregates."""
    rows = []
    data = dists.data
    for layer, per_subset in dists.values.items():
        twoafc, jnd_d, jnd_s = [], [], []
        for name, v in per_subset.items():
            sub = data.subsets[name]
            if sub.kind == "2afc":
                value = score_2afc(v["d0"], v["d1"], sub.target)
                twoafc.append((value, len(sub)))
                rows.append(dict(layer=layer, dataset=name, metric="2afc", value=value, n=len(sub)))
            else:
                value = jnd_map(v["d"], sub.target)
                jnd_d.append(v["d"])
                jnd_s.append(sub.target)
                rows.append(dict(layer=layer, dataset=name, metric="jnd_map", value=value, n=len(sub)))
        split = next(iter(per_subset)).split("/")[1] if per_subset else "val"
        if twoafc:
            rows.append(dict(layer=layer, dataset=f"2afc/{split}", metric="2afc",
                             value=float(np.mean([v for v, _ in twoafc])), n=sum(n for _, n in twoafc)))
        if jnd_d:
            rows.append(dict(layer=layer, dataset=f"jnd/{split}", metric="jnd_map",
                             value=jnd_map(np.concatenate(jnd_d), np.concatenate(jnd_s)),
                             n=sum(len(s) for s in jnd_s)))
    return rows


PERCEPTUAL_SCORE = "perceptual_score"  # the metric of Kumar et al.'s score rows


def perceptual_score(rows: list[dict]) -> list[dict]:
    """Kumar et al. (2022)'s "Perceptual Score" of one metric's score ``rows``: 100 x its 2AFC on BAPPS val's
    subsets averaged (the ``2afc/<split>`` row), as a row of metric ``perceptual_score``. Kumar et al. do not say
    whether the six subsets are averaged or their triplets pooled; averaging matches the reference figures they
    quote, so the subsets are averaged here (as lossnets' ``2afc/val`` row always is)."""
    return [dict(r, metric=PERCEPTUAL_SCORE, value=100 * r["value"]) for r in rows
            if r["metric"] == "2afc" and r["dataset"].count("/") == 1]


def score_set(stats: PairStatistics, s: TapSet, weights=None) -> list[dict]:
    """The score rows of the tap set ``s`` from ``stats``, with channel ``weights`` (None: the baseline); the
    ``kumar`` preset's baseline, Kumar et al.'s protocol, adds its Perceptual Score."""
    rows = score(Distances(stats.data, {s.name: stats.distances(s, weights)}))
    return rows + perceptual_score(rows) if s.name == KUMAR_PRESET and weights is None else rows
