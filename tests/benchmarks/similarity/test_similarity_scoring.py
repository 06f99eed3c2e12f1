"""Scoring formulas against the lpips package's own (numpy only, fast)."""
from __future__ import annotations

import numpy as np
import pytest

from lossnets.benchmarks.similarity.scoring import jnd_map, score_2afc, voc_ap

lpips = pytest.importorskip("lpips")


def _lpips_jnd(ds, sames):  # the body of lpips.trainer.score_jnd_dataset after its loop
    order = np.argsort(ds)
    s = sames[order]
    tps = np.cumsum(s)
    fps = np.cumsum(1 - s)
    fns = np.sum(s) - tps
    return lpips.voc_ap(tps / (tps + fns), tps / (tps + fps))


@pytest.mark.parametrize("seed", range(5))
def test_jnd_map_matches_lpips(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    d = rng.random(n)
    same = rng.integers(0, 4, n) / 3  # fractions of 3 raters, as in BAPPS jnd
    assert jnd_map(d, same) == pytest.approx(_lpips_jnd(d, same), abs=1e-12)


def test_voc_ap_matches_lpips():
    rng = np.random.default_rng(7)
    rec = np.sort(rng.random(50))
    prec = rng.random(50)
    assert voc_ap(rec, prec) == pytest.approx(lpips.voc_ap(rec, prec), abs=1e-12)


def test_2afc_formula_and_ties():
    d0 = np.array([0.1, 0.5, 0.3, 0.2])
    d1 = np.array([0.2, 0.4, 0.3, 0.2])
    g = np.array([0.2, 0.6, 1.0, 0.0])
    # [d0<d1](1-g) + [d1<d0]g + 0.5[d0=d1]
    assert score_2afc(d0, d1, g) == pytest.approx((0.8 + 0.6 + 0.5 + 0.5) / 4)


def test_jnd_map_perfect_and_degenerate():
    assert jnd_map([0.1, 0.2, 0.9, 1.0], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert np.isnan(jnd_map([0.1, 0.2], [0, 0]))  # no positives: undefined
    with pytest.raises(ValueError):
        jnd_map([0.1, 0.2], [1.0])
