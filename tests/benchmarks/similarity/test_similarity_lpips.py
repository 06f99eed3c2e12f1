"""Agreement with the lpips package (its baseline, lpips=False) on a made set, for every 2AFC and JND figure.

Both sides get the same random weights and normalised input (``lpips_reference``); lpips's own
``score_2afc_dataset``/``score_jnd_dataset`` score its distances. The judgments here are synthetic.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.benchmark import distances, run
from lossnets.benchmarks.similarity.scoring import score
from lossnets.engine import LossNetwork

lpips = pytest.importorskip("lpips")
from lpips import trainer as lpips_trainer  # noqa: E402
from lpips_reference import LPIPS_LAYERS, OneBatch, images, lpips_model  # noqa: E402

# our taps E,S,M,L that lpips has, plus lpips layers that are no tap of ours (asked by module path)
CASES = {
    "alexnet": ("E", "S", "M", "features.9", "L"),
    "vgg16": ("E", "S", "M", "features.22", "L"),
    "squeezenet1_1": ("E", "features.4", "M", "features.9", "L"),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_bapps(tmp_path_factory.mktemp("bapps"), size=3, seed=3)
    return load_bapps(root)


def _lpips_scores(model, net: LossNetwork, data):
    """{(layer, dataset): score} from lpips's distances and lpips's scoring functions."""
    idx_of = LPIPS_LAYERS[net.arch.name][1]
    layer_idx = {t.layer: idx_of[t.module] for t in net.taps}
    per = {}  # (subset, pair) -> list of (N,) per lpips layer
    with torch.no_grad():
        for sub in data.subsets.values():
            pairs = (("ref", "p0"), ("ref", "p1")) if sub.kind == "2afc" else (("p0", "p1"),)
            for a, b in pairs:
                _, res = model(images(data, sub.index[a]), images(data, sub.index[b]), retPerLayer=True,
                               normalize=True)
                per[(sub.name, b)] = [r.flatten() for r in res]
    out, dists = {}, {}
    for layer, k in layer_idx.items():
        func = lambda key_a, key_b: per[key_b][k]  # noqa: E731  (the loader passes keys, not images)
        jnd_keys, jnd_same = [], []
        for sub in data.subsets.values():
            target = torch.from_numpy(sub.target).float()  # as lpips's loader reads the .npy files
            if sub.kind == "2afc":
                batch = {"ref": None, "p0": (sub.name, "p0"), "p1": (sub.name, "p1"), "judge": target}
                score, _ = lpips_trainer.score_2afc_dataset(OneBatch(batch), func)
                dists[(layer, sub.name, "d0")] = per[(sub.name, "p0")][k].numpy()
                dists[(layer, sub.name, "d1")] = per[(sub.name, "p1")][k].numpy()
            else:
                batch = {"p0": None, "p1": (sub.name, "p1"), "same": target}
                score, _ = lpips_trainer.score_jnd_dataset(OneBatch(batch), func)
                dists[(layer, sub.name, "d")] = per[(sub.name, "p1")][k].numpy()
                jnd_keys.append((sub.name, "p1"))
                jnd_same.append(target)
            out[(layer, sub.name)] = score
        pooled = torch.cat([per[key][k] for key in jnd_keys])
        batch = {"p0": None, "p1": "pooled", "same": torch.cat(jnd_same)}
        out[(layer, "jnd/val")], _ = lpips_trainer.score_jnd_dataset(
            OneBatch(batch), lambda a, b: pooled)
        out[(layer, "2afc/val")] = np.mean([out[(layer, s.name)] for s in data.of_kind("2afc")])
    return out, dists


@pytest.mark.parametrize("arch", list(CASES))
def test_agrees_with_lpips(arch, data):
    net = LossNetwork(arch, CASES[arch], "random", seed=0, normalize="imagenet", device="cpu")
    model = lpips_model(net)
    expected, lp_dists = _lpips_scores(model, net, data)
    dists = distances(net, data, progress=False)
    rows = score(dists)
    assert len(rows) == len(expected) == len(net.layers) * (len(data.subsets) + 2)
    for r in rows:
        assert r["value"] == pytest.approx(expected[(r["layer"], r["dataset"])], abs=1e-6), (r["layer"], r["dataset"])
    # the distances themselves, not only the scores built on them
    for (layer, sub, name), d in lp_dists.items():
        np.testing.assert_allclose(dists.values[layer][sub][name], d, rtol=2e-5, atol=1e-7)
    if arch == "alexnet":  # the public entry point gives the same figures, labelled synthetic
        df = run(net, data, progress=False)
        assert list(df["value"]) == [r["value"] for r in rows]
        assert set(df["data"]) == {"synthetic"} and set(df["benchmark"]) == {"similarity"}
