"""The similarity benchmark: features through the cache, dedupe, the command and its table."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.statistics import open_store
from lossnets.benchmarks.sweep.results import with_paper_values
from lossnets.cli import main
from lossnets.engine import LossNetwork
from lossnets.engine.lin_weights import lin_file, save_lin_weights


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_bapps(tmp_path_factory.mktemp("sim"), size=2, seed=5)


@pytest.fixture(scope="module")
def net():
    return LossNetwork("squeezenet1_1", ("E", "L"), "random", seed=1, device="cpu")


class Counting:
    """Wraps a net's extract to count the images that go through it."""

    def __init__(self, net, monkeypatch):
        self.n = 0
        orig = net.extract

        def extract(images, *a, **k):
            self.n += len(images)
            return orig(images, *a, **k)
        monkeypatch.setattr(net, "extract", extract)


def test_each_distinct_image_once(root, net, tmp_path, monkeypatch):
    d = tmp_path / "dup"
    shutil.copytree(root, d)
    shutil.copy(d / "2afc/val/cnn/ref/000000.png", d / "2afc/val/cnn/p0/000000.png")
    data = load_bapps(d)
    count = Counting(net, monkeypatch)
    dists = similarity.distances(net, data, progress=False)
    assert count.n == len(data.images) == 6 * 2 * 3 + 2 * 2 * 2 - 1  # the ref of each triplet once
    assert dists.values["E"]["2afc/val/cnn"]["d0"][0] == 0


def test_the_store_reads_back(root, net, tmp_path, monkeypatch):
    from lossnets.cache import FeatureCache
    data = load_bapps(root)
    plain = similarity.run(net, data, progress=False)
    url = str(tmp_path / "cache")
    cold = similarity.run(net, data, cache=FeatureCache(url, progress=False), progress=False)  # its root's store
    count = Counting(net, monkeypatch)
    store = open_store(url, progress=False)  # a new process: reads the zarr tier
    warm = similarity.run(net, data, subsets=["jnd"], cache=store, progress=False)
    assert count.n == 0 and store.stats()["computed"] == 0 and store.stats()["disk_hits"] == 2 * 2 * 2
    merged = cold.merge(warm, on=["layer", "dataset"], suffixes=("", "_warm"))
    assert len(merged) == 2 * 3 and list(merged["value"]) == list(merged["value_warm"])
    assert list(plain["value"]) == list(cold["value"])  # fp32 statistics: the same figures as without a store
    ones = tmp_path / "ones"  # lin weights of all ones: the baseline again, from the stored statistics
    for layer, c in (("E", 64), ("L", 512)):
        save_lin_weights(lin_file(ones, "squeezenet1_1", layer), [torch.ones(c)])
    again = similarity.run(net, data, cache=url, lin=str(ones), progress=False)
    weighted = again[again["lin"] != "none"]
    assert count.n == 0 and len(weighted) == len(cold) and np.allclose(weighted["value"], cold["value"])


def test_the_command_writes_the_table(root, tmp_path, capsys):
    out = tmp_path / "sim.csv"
    argv = ["similarity", "--data", str(root), "--archs", "alexnet", "--layers", "E", "M", "--weights", "random",
            "--seed", "2", "--device", "cpu", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    back = pd.read_csv(out)
    assert len(back) == 2 * (8 + 2)
    for col in ("benchmark", "arch", "layer", "weights", "dataset", "metric", "value", "data", "seed",
                "lossnets_version", "device", "paper_value"):
        assert col in back.columns
    assert set(back["data"]) == {"synthetic"} and set(back["weights"]) == {"random"}
    assert set(back["metric"]) == {"2afc", "jnd_map"} and back["paper_value"].isna().all()  # no published figure
    agg = back[back["dataset"] == "2afc/val"].set_index("layer")["value"]
    per = back[back["dataset"].str.startswith("2afc/val/")].groupby("layer")["value"].mean()
    assert np.allclose(agg.sort_index(), per.sort_index())
    # a cache URL stores fp32: the same figures as without a cache
    assert main([*argv, "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cached.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "cached.csv")["value"]) == list(back["value"])
    # with imagenet weights the published figure sits beside the baseline rows
    fake = pd.concat([back.assign(weights="imagenet"), back.assign(weights="imagenet", lin="trained@0")])
    row = with_paper_values(fake)[lambda d: (d["dataset"] == "2afc/val") & (d["layer"] == "E")]
    assert row["paper_value"].notna().tolist() == [True, False]
