"""BAPPS scoring, exactly as the ``lpips`` package: 2AFC agreement and JND mAP (numpy, float64).

* 2AFC = mean of ``[d0<d1](1-g) + [d1<d0]g + 0.5[d0=d1]``.
* JND = VOC all-point average precision over the pairs sorted by ascending distance, with ``same`` as
  soft positives.
"""
from __future__ import annotations

import numpy as np


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


