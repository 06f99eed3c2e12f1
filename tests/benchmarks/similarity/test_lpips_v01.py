"""LPIPS v0.1 exactly: the tap set ``lpips`` with the shipped lin weights gives lpips.LPIPS(lpips=True)'s
distances, 2AFC and JND (same seeded random backbone; synthetic judgments)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.benchmark import run
from lossnets.benchmarks.similarity.statistics import statistics
from lossnets.engine import LossNetwork
from lossnets.engine.lin_weights import lpips_lin_weights
from lossnets.engine.tap_sets import tap_set

lpips = pytest.importorskip("lpips")
from lpips import trainer as lpips_trainer  # noqa: E402
from lpips_reference import OneBatch, images, lpips_model  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_bapps(make_bapps(tmp_path_factory.mktemp("bapps"), size=3, train_size=0, seed=4))


def _lpips_figures(model, data):
    """lpips's distances per (subset, pair name) and its scores of every subset, 2afc/val and jnd/val."""
    dists, scores, jnd_d, jnd_s = {}, {}, [], []
    with torch.no_grad():
        for sub in data.subsets.values():
            pairs = {"d0": ("ref", "p0"), "d1": ("ref", "p1")} if sub.kind == "2afc" else {"d": ("p0", "p1")}
            for name, (a, b) in pairs.items():
                dists[sub.name, name] = model(images(data, sub.index[a]), images(data, sub.index[b]),
                                              normalize=True).flatten()
            target = torch.from_numpy(sub.target).float()
            if sub.kind == "2afc":
                batch = {"ref": None, "p0": "d0", "p1": "d1", "judge": target}
                scores[sub.name], _ = lpips_trainer.score_2afc_dataset(
                    OneBatch(batch), lambda _, key, s=sub.name: dists[s, key])
            else:
                batch = {"p0": None, "p1": "d", "same": target}
                scores[sub.name], _ = lpips_trainer.score_jnd_dataset(
                    OneBatch(batch), lambda _, key, s=sub.name: dists[s, key])
                jnd_d.append(dists[sub.name, "d"])
                jnd_s.append(target)
    scores["2afc/val"] = np.mean([scores[s.name] for s in data.of_kind("2afc")])
    pooled = {"p0": None, "p1": None, "same": torch.cat(jnd_s)}
    scores["jnd/val"], _ = lpips_trainer.score_jnd_dataset(OneBatch(pooled), lambda *_: torch.cat(jnd_d))
    return dists, scores


@pytest.mark.parametrize("arch", ["alexnet", "vgg16", "squeezenet1_1"])
def test_the_lpips_tap_set_with_lpips_weights_is_lpips_v01(arch, data):
    layers = tap_set(arch, "lpips").layers
    net = LossNetwork(arch, layers, "random", seed=0, device="cpu")
    model = lpips_model(net, lpips=True, pretrained=True, version="0.1")
    expected_d, expected = _lpips_figures(model, data)
    ours = statistics(net, data, progress=False).distances(layers, lpips_lin_weights(arch).weights)
    for (sub, name), d in expected_d.items():
        np.testing.assert_allclose(ours[sub][name], d.double().numpy(), rtol=0, atol=1e-5, err_msg=f"{sub} {name}")
    df = run(net, data, layers=["lpips"], lin="lpips", progress=False)
    weighted = df[df["lin"] != "none"]
    assert set(weighted["layer"]) == {"lpips"} and weighted["lin"].str.startswith("lpips-v0.1@").all()
    assert weighted["config"].str.contains(" lin=lpips-v0.1@").all() and set(df["data"]) == {"synthetic"}
    assert len(weighted) == len(expected) and len(df) == 2 * len(expected)  # the baseline rows beside them
    for r in weighted.itertuples():
        assert r.value == pytest.approx(expected[r.dataset], abs=1e-5), r.dataset
