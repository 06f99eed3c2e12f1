"""The statistics store beside the feature cache: a warm run builds no network, any weights rescore it,
damage is recomputed (synthetic judgments), the entries keep their on-disk form."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.statistics import statistics
from lossnets.cache import CacheWarning, StatisticsStore, pair_id
from lossnets.engine import LossNetwork
from lossnets.engine.lin_weights import save_lin_weights


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_bapps(make_bapps(tmp_path_factory.mktemp("bapps"), size=2, train_size=0, seed=8))


def _net(built=False):
    return LossNetwork("squeezenet1_1", ("E", "L"), "random", seed=2, device="cpu", lazy=not built)


def test_a_warm_run_reads_statistics_and_builds_no_network(data, tmp_path):
    url = str(tmp_path / "cache")
    plain = similarity.run(_net(), data, layers=["E", "E+L"], progress=False)
    cold = similarity.run(_net(), data, layers=["E", "E+L"], cache=url, progress=False)
    lin = tmp_path / "lin.pth"
    save_lin_weights(lin, [torch.rand(64), torch.rand(512)])
    net = _net()
    warm = similarity.run(net, data, layers=["E", "E+L"], lin=None, cache=url, progress=False)
    weighted = similarity.run(net, data, layers=["E+L"], lin=str(lin), cache=url, progress=False)
    assert not net.built  # the statistics store held every pair: no backbone pass, no weights loaded
    assert list(plain["value"]) == list(cold["value"]) == list(warm["value"])
    assert set(weighted["lin"]) == {"none", f"lin.pth@{weighted['lin'][weighted['lin'] != 'none'].iloc[0][8:]}"}
    base = plain[plain["layer"] == "E+L"].set_index("dataset")["value"]
    e = plain[plain["layer"] == "E"].set_index("dataset")["value"]
    assert len(base) == len(e) == len(data.subsets) + 2


def test_tap_set_distance_is_the_sum_of_its_taps(data):
    stats = statistics(_net(), data, progress=False)
    both = stats.distances(("E", "L"))
    for sub, names in both.items():
        for name, d in names.items():
            np.testing.assert_allclose(d, stats.distances(("E",))[sub][name] + stats.distances(("L",))[sub][name])


def test_damaged_statistics_are_recomputed_with_one_warning(data, tmp_path):
    url = str(tmp_path / "cache")
    first = statistics(_net(), data, cache=url, progress=False)
    store = StatisticsStore(url, statistic="lpips-channel-m", progress=False)
    entry = next(p for p in (tmp_path / "cache").glob("bapps-pairs/*/*/data/c/0/0"))
    entry.write_bytes(b"not zstd")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = statistics(_net(), data, cache=url, progress=False)
        read = {layer: again.m[layer] for layer in ("E", "L")}  # a tap is read (and checked) when used
    assert any(issubclass(w.category, CacheWarning) and "failed their check" in str(w.message) for w in seen)
    for layer in ("E", "L"):
        torch.testing.assert_close(read[layer], first.m[layer])
    assert store.root.entry_names() and all(n.startswith(("bapps/", "bapps-pairs/")) for n in store.root.entry_names())


def test_pair_entries_keep_their_on_disk_form_and_a_new_store_reads_them(tmp_path):
    ids = [pair_id(f"b{i}", f"a{i}") for i in range(5)]
    g = torch.Generator().manual_seed(0)
    values = {"E": torch.rand(5, 64, generator=g), "L": torch.rand(5, 512, generator=g)}
    calls = []

    def compute(at):
        calls.append(len(at))
        return {layer: v[torch.from_numpy(at)] for layer, v in values.items()}

    def stored(store, ids):
        store.fill(_net(), "d", ids, compute, block=2)
        return {layer: store.read(_net(), "d", ids, layer) for layer in values}

    url = str(tmp_path / "cache")
    first = stored(StatisticsStore(url, statistic="test", progress=False), ids)
    metas = [json.loads(p.read_text()) for p in sorted((tmp_path / "cache" / "d-pairs").glob("*/*/meta.json"))]
    form = [(m["item_shape"], m["input_shape"], m["chunk_items"], m["codec"], m["key"]["dataset"], m["key"]["dtype"])
            for m in metas]
    assert form == [([c], [2], 1024, "zstd1", "d-pairs", "fp32") for c in (64, 512)]  # E, L
    store = StatisticsStore(url, statistic="test", progress=False)  # a new process
    again = stored(store, ids[::-1])
    assert calls == [2, 2, 1] and store.stats()["computed"] == 0 and store.stats()["disk_hits"] == 2 * 5
    for layer, v in values.items():
        assert torch.equal(first[layer], v) and torch.equal(again[layer], v.flip(0))
