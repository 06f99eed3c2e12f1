"""Similarity on many taps (synthetic judgments): Kumar et al.'s mean ensemble and Perceptual Score, statistics
streamed one tap at a time with the figures of the old all-in-memory path, and rescoring from a store without a
network."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity import statistics as stats_module
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.scoring import score_set
from lossnets.benchmarks.similarity.statistics import statistics
from lossnets.cache import StatisticsStore
from lossnets.cli import main
from lossnets.engine import LossNetwork
from lossnets.engine.lin_weights import lin_file, save_lin_weights
from lossnets.engine.tap_sets import tap_set, tap_sets

STAGES = ("E", "S", "M", "L")
BLOCKS = ("features.4", "features.6", "features.9", "features.10", "features.11")  # squeezenet1_1's other fires
SETS = [*STAGES, *BLOCKS, "E+S+M+L", "kumar"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_bapps(tmp_path_factory.mktemp("bapps"), size=2, train_size=0, seed=3)


@pytest.fixture(scope="module")
def data(root):
    return load_bapps(root)


def _net(layers=STAGES + BLOCKS):
    return LossNetwork("squeezenet1_1", layers, "random", seed=2, device="cpu", lazy=True)


def _old_per_pair(m: dict, layers, weights=None) -> torch.Tensor:
    """The per-pair distances as the code before streaming computed them: every tap in memory, summed in place."""
    total = torch.zeros(len(next(iter(m.values()))), dtype=torch.float64)
    for k, layer in enumerate(layers):
        total += m[layer].double().sum(1) if weights is None else m[layer].double() @ weights[k].double()
    return total


def test_the_mean_ensemble_is_the_sum_of_the_stage_taps_over_their_number(data):
    net = _net(STAGES)
    per_tap = similarity.distances(net, data, progress=False).values  # each tap's own distances
    kumar = tap_set(net.arch.name, "kumar")
    mean = statistics(net, data, progress=False).distances(kumar)
    for sub, names in mean.items():
        for name, d in names.items():
            np.testing.assert_allclose(d, sum(per_tap[t][sub][name] for t in STAGES) / len(STAGES), rtol=1e-12)
    rows = similarity.run(net, data, layers=["E+S+M+L", "kumar"], progress=False)
    by = {layer: r.set_index(["dataset", "metric"])["value"] for layer, r in rows.groupby("layer")}
    score = by["kumar"].pop(("2afc/val", "perceptual_score"))
    assert by["kumar"].equals(by["E+S+M+L"])  # 2AFC and JND rank distances: a mean scores as the sum
    assert score == 100 * by["kumar"][("2afc/val", "2afc")]


def test_streamed_statistics_give_the_old_in_memory_figures(data, tmp_path, monkeypatch):
    net = _net()
    with monkeypatch.context() as m:
        m.setattr(stats_module, "MEMORY_BYTES", 1 << 40)  # every tap in memory, as before
        old = statistics(net, data, progress=False)
    assert isinstance(old.m, dict)
    monkeypatch.setattr(stats_module, "MEMORY_BYTES", 0)  # statistics too large for memory: a temporary store
    monkeypatch.setattr(stats_module, "ROWS", 5)  # a tap scored in chunks of 5 pairs
    temporary = statistics(net, data, progress=False)
    stored = statistics(net, data, cache=str(tmp_path / "cache"), progress=False)
    g = torch.Generator().manual_seed(0)
    lin = {t: torch.rand(old.m[t].shape[1], generator=g) for t in net.layers}
    for new in (temporary, stored):
        assert not isinstance(new.m, dict)
        assert torch.equal(new.per_pair(net.layers), _old_per_pair(old.m, net.layers))
        for t in net.layers:
            assert torch.equal(new.per_pair((t,)), _old_per_pair(old.m, (t,)))
        torch.testing.assert_close(new.per_pair(net.layers, list(lin.values())),
                                   _old_per_pair(old.m, net.layers, list(lin.values())),
                                   rtol=1e-12, atol=0)
    folder = Path(temporary.m.keep.name)
    assert folder.is_dir()
    del temporary
    gc.collect()
    assert not folder.exists()  # the temporary store goes with its statistics
    for s in tap_sets(net.arch.name, SETS):  # the rows of every tap set, the kumar preset's too
        w = [lin[t] for t in s.layers]
        assert score_set(stored, s) == score_set(old, s) and score_set(stored, s, w) == score_set(old, s, w)


def test_without_a_store_statistics_stay_in_memory_up_to_memory_bytes(data, monkeypatch):
    net = _net()
    need = statistics(net, data, progress=False).pairs * sum(t.channels for t in net.taps) * 4
    monkeypatch.setattr(stats_module, "MEMORY_BYTES", need)
    assert isinstance(statistics(net, data, progress=False).m, dict)
    monkeypatch.setattr(stats_module, "MEMORY_BYTES", need - 1)
    assert not isinstance(statistics(net, data, progress=False).m, dict)


def test_scoring_many_taps_holds_one_tap_at_a_time(data, monkeypatch):
    monkeypatch.setattr(stats_module, "MEMORY_BYTES", 0)  # as a set too large for memory: a temporary store
    alive, peak = set(), []
    read = StatisticsStore.read

    def counted(self, *args, **kwargs):
        m = read(self, *args, **kwargs)
        alive.add(id(m))
        weakref.finalize(m, alive.discard, id(m))
        peak.append(len(alive))
        return m
    monkeypatch.setattr(StatisticsStore, "read", counted)
    rows = similarity.run(_net(), data, layers=SETS, progress=False)
    assert len(peak) == len(STAGES + BLOCKS) and max(peak) == 1  # each tap read once, dropped before the next
    assert set(rows["layer"]) == set(tap_set("squeezenet1_1", s).name for s in SETS)


def test_rescoring_from_the_store_builds_no_network(root, data, tmp_path):
    url = str(tmp_path / "cache")
    similarity.run(_net(), data, layers=["E"], cache=url, progress=False)  # fills every tap of the network
    ones = tmp_path / "lin"
    for s, channels in (("kumar", (64, 128, 256, 512)), ("E+S+M+L", (64, 128, 256, 512)),
                        ("features.4+features.9", (128, 384))):
        save_lin_weights(lin_file(ones, "squeezenet1_1", s), [torch.ones(c) for c in channels])
    net = _net()
    rows = similarity.run(net, data, layers=["kumar", "features.4+features.9", "E+S+M+L"], lin=str(ones), cache=url,
                          progress=False)
    assert not net.built  # the store held every pair of every tap: neither weights nor a backbone pass
    weighted = rows[rows["lin"] != "none"].set_index(["layer", "dataset", "metric"])["value"]
    baseline = rows[rows["lin"] == "none"].set_index(["layer", "dataset", "metric"])["value"]
    assert weighted.equals(baseline.loc[weighted.index])  # all-ones lin weights are the baseline
    assert len(baseline) == len(weighted) + 1  # the Perceptual Score is the baseline's only (Kumar's protocol)


def test_the_command_scores_the_kumar_preset(root, tmp_path):
    out = tmp_path / "sim.csv"
    assert main(["similarity", "--data", str(root), "--archs", "squeezenet1_1", "--layers", "E", "kumar",
                 "--weights", "random", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    back = pd.read_csv(out)
    kumar = back[back["layer"] == "kumar"].set_index(["dataset", "metric"])["value"]
    assert len(kumar) == 11 and kumar[("2afc/val", "perceptual_score")] == 100 * kumar[("2afc/val", "2afc")]
