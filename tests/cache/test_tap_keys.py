"""A tap's cache key depends only on what the tap depends on: other tap sets, other benchmarks and old caches
(SYNTHETIC BAPPS set, seeded random weights)."""
from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cache_helpers as h  # noqa: E402

from lossnets.benchmarks import training  # noqa: E402
from lossnets.benchmarks.similarity import benchmark as similarity  # noqa: E402
from lossnets.benchmarks.similarity.bapps import load_bapps  # noqa: E402
from lossnets.benchmarks.similarity.made import make_bapps  # noqa: E402
from lossnets.cache import CacheWarning, FeatureCache, admin, entry_keys  # noqa: E402
from lossnets.cache.keys import EntryKey  # noqa: E402
from lossnets.engine import LossNetwork  # noqa: E402
from lossnets.engine.digests import tap_state_keys  # noqa: E402
from lossnets.engine.loss_network import LossNetwork as _LN  # noqa: E402
from lossnets.engine.registry import get_architecture, meta_model  # noqa: E402
from lossnets.engine.truncate import truncate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def builds(monkeypatch):
    """The (architecture, taps) of every network cut and loaded while the test runs."""
    seen, build = [], _LN._build

    def counted(self):
        seen.append((self.arch.name, self.layers))
        build(self)
    monkeypatch.setattr(_LN, "_build", counted)
    return seen


@pytest.mark.parametrize("arch", ["googlenet", "resnet18"])
def test_tap_state_keys_are_those_of_the_network_cut_at_the_tap(arch):
    spec = get_architecture(arch)
    together = tap_state_keys(truncate(meta_model(spec), {t.module: t.layer for t in spec.taps}))
    for t in spec.taps:  # the reference: FX's own dead-code elimination of the graph cut at the tap alone
        assert together[t.layer] == sorted(truncate(meta_model(spec), {t.module: t.layer}).state_dict())


def test_similarity_reruns_with_other_tap_sets_build_no_network(tmp_path, builds):
    data = load_bapps(make_bapps(tmp_path / "bapps", size=2, train_size=0, seed=8))
    url = str(tmp_path / "cache")

    def run(layers):
        taps = sorted({t for s in layers for t in s.split("+")}, key="ESML".index)
        net = LossNetwork("squeezenet1_1", taps, "random", seed=2, device="cpu", lazy=True)
        return similarity.run(net, data, layers=layers, cache=url, progress=False).set_index(
            ["layer", "dataset", "metric"])

    first = run(["E", "S", "M", "L"])
    assert builds == [("squeezenet1_1", ("E", "S", "M", "L"))]
    runs = [run(["E"]), run(["S", "M"]), run(["E+S+M+L"])]
    assert builds == [("squeezenet1_1", ("E", "S", "M", "L"))]  # every later run read the store
    configs = {c.split(" ")[1] for r in [first, *runs] for c in r["config"]}
    assert len(configs) == 1 and "seed2@" in configs.pop()  # one digest whatever the taps
    for r in runs[:2]:
        assert r["value"].equals(first.loc[r.index, "value"])
    assert len(admin.entries(url)) == 4  # one entry per tap, found by every run


class Identity(training.Task):
    """A toy training task on fixed SYNTHETIC targets: a 1x1 conv trained towards the identity."""
    name = "identity"

    def __init__(self):
        self.images = h.load_images(h.ids(0, 6))
        self.key = training.CacheKey("toy-identity", h.PREP)

    def build_model(self, seed, device):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return torch.nn.Conv2d(3, 3, 1).to(device)

    def batches(self, seed):
        sampler = training.BatchSampler(len(self.images), 3, seed)
        while True:
            idx = sampler.next()
            yield training.Batch(self.images[idx].float() / 255, self.images[idx],
                                 [h.ids(0, 6)[i] for i in idx.tolist()], self.key)

    def loss(self, model, x, features, target):
        return training.feature_loss(features(model(x)), target)

    def validate(self, model, trainee):
        return 0.0


def test_training_with_fewer_taps_reads_the_targets_of_a_run_with_more(tmp_path):
    url = str(tmp_path / "cache")
    full = FeatureCache(url, cache_policy="always", hot_bytes=0, progress=False)
    training.train_lockstep(h.make_net(), Identity(), steps=2, cache=full)
    assert full.stats()["computed"] > 0
    fewer = FeatureCache(url, cache_policy="always", hot_bytes=0, progress=False)
    net = LossNetwork(h.ARCH, ("E", "S"), "random", seed=0, device="cpu")
    training.train_lockstep(net, Identity(), steps=2, cache=fewer)
    assert fewer.stats()["computed"] == 0 and fewer.stats()["disk_hits"] > 0


def test_two_random_seeds_never_share_an_entry():
    names = [{k.name for k in entry_keys(h.make_net(seed), "synthetic", h.PREP).values()} for seed in (0, 1)]
    assert len(names[0]) == len(names[1]) == 4 and not names[0] & names[1]


def test_entries_of_the_old_keys_are_reported_stale_once_and_never_read(tmp_path):
    url, names = str(tmp_path / "cache"), h.ids(0, 4)
    net = h.make_net(layers=("E",))
    FeatureCache(url, cache_policy="always", progress=False).get_or_compute(net, "synthetic", names, h.load_images,
                                                                             preprocessing=h.PREP)
    key = entry_keys(net, "synthetic", h.PREP)["E"]
    # rewrite the entry the way lossnets 0.1.0 keyed it: the digest of the whole loaded prefix
    old = {k: v for k, v in key.to_dict().items() if k != "tap_digest"} | {"weights_digest": "0" * 64}
    meta_path = tmp_path / "cache" / key.name / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["key"] = old
    meta_path.write_text(json.dumps(meta))
    stale_name = key.name.rsplit("-", 1)[0] + "-0123456789abcdef"
    shutil.move(tmp_path / "cache" / key.name, tmp_path / "cache" / stale_name)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert admin.verify(url) == []
    assert [str(w.message).count(stale_name) for w in seen if issubclass(w.category, CacheWarning)] == [1]
    assert admin.stale(url) == [stale_name]
    again = FeatureCache(url, cache_policy="always", progress=False)
    again.get_or_compute(net, "synthetic", names, h.load_images, preprocessing=h.PREP)
    assert again.stats()["computed"] == len(names)  # recomputed under the new key, the old entry never read
    assert sorted(admin.entries(url), key=lambda e: e["entry"])[0]["hits"] == 0
    assert {f for f in EntryKey.__dataclass_fields__} - set(old) == {"tap_digest"}
