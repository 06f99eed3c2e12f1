"""FeatureCache: hits equal fresh features, partial fills, key changes miss, dtypes, hot tier, policy."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cache_helpers as h  # noqa: E402

from lossnets.cache import FeatureCache, admin, entry_keys, prefix_flops_per_byte, should_cache  # noqa: E402
from lossnets.cache.hot import HotTier  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    return h.make_net()


class Loader:
    """load_images that records which ids it was asked for."""

    def __init__(self):
        self.asked = []

    def __call__(self, names):
        self.asked += names
        return h.load_images(names)


@pytest.mark.parametrize("backend", h.BACKENDS)
def test_hits_equal_fresh_features(net, backend, tmp_path):
    url, names = h.store_url(backend, tmp_path), h.ids(0, 20)
    first = FeatureCache(url, cache_policy="always", chunk_items=8, progress=False)
    computed = first.get_or_compute(net, "synthetic", names, Loader(), preprocessing=h.PREP)
    fresh = net.extract(h.load_images(names))
    cold = FeatureCache(url, cache_policy="always", hot_bytes=0)  # zarr tier only
    load = Loader()
    hits = cold.get_or_compute(net, "synthetic", names[::-1], load, preprocessing=h.PREP)
    assert load.asked == [] and cold.stats()["disk_hits"] == 4 * len(names)
    assert [(e["items"], e["hits"], e["misses"]) for e in admin.entries(url)] == [(20, 20, 20)] * 4
    for layer in net.layers:
        assert hits[layer].dtype == torch.float16
        assert torch.equal(hits[layer].flip(0), computed[layer])
        assert torch.equal(computed[layer], fresh[layer].half())
    again = first.get_or_compute(net, "synthetic", names, Loader(), preprocessing=h.PREP)
    assert first.stats()["hot_hits"] == 4 * len(names) and torch.equal(again["M"], computed["M"])


@pytest.mark.parametrize("backend", h.BACKENDS)
def test_partial_fill_computes_only_missing(net, backend, tmp_path):
    url = h.store_url(backend, tmp_path)
    cache = FeatureCache(url, cache_policy="always", chunk_items=4, hot_bytes=0, progress=False)
    cache.get_or_compute(net, "synthetic", h.ids(0, 6), Loader(), preprocessing=h.PREP)
    load = Loader()
    out = cache.get_or_compute(net, "synthetic", h.ids(3, 11), load, preprocessing=h.PREP)
    assert load.asked == h.ids(6, 11)
    fresh = net.extract(h.load_images(h.ids(3, 11)))
    assert all(torch.equal(out[k], fresh[k].half()) for k in net.layers)
    assert cache.contains(net, "synthetic", h.ids(9, 13), preprocessing=h.PREP)["L"].tolist() == [1, 1, 0, 0]


def test_any_key_change_is_a_miss(net, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path, cache_policy="always", progress=False)
    names = h.ids(0, 3)
    cache.get_or_compute(net, "synthetic", names, Loader(), preprocessing=h.PREP)
    seen = lambda n, **kw: cache.contains(n, kw.pop("dataset", "synthetic"), names, **kw)["E"].all()  # noqa: E731
    assert seen(net, preprocessing=h.PREP)
    assert not seen(h.make_net(seed=1, layers=("E",)), preprocessing=h.PREP)  # other weights
    assert not seen(net, preprocessing={"size": 32})
    assert not seen(net, dataset="other", preprocessing=h.PREP)
    assert not FeatureCache(tmp_path, dtype="fp32").contains(net, "synthetic", names, preprocessing=h.PREP)["E"].all()
    monkeypatch.setattr("lossnets.__version__", "9.9.9")
    assert not seen(net, preprocessing=h.PREP)


def test_tap_digest_follows_the_tensors_not_the_source(net, tmp_path):
    from lossnets import LossNetwork
    path = tmp_path / "w.pt"
    torch.save(h.make_net().body.state_dict(), path)  # the same tensors as a file
    keys = lambda n: entry_keys(n, "synthetic", h.PREP)["E"]  # noqa: E731
    from_file = LossNetwork(h.ARCH, layers=("E", "S"), weights=path, device="cpu", lazy=True)
    assert keys(net).tap_digest == net.tap_digests["E"] and keys(from_file).name == keys(net).name
    assert from_file.weights_digest != net.weights_digest  # the config names the source
    assert keys(net).name != keys(h.make_net(seed=1, layers=("E",))).name


def test_entry_with_other_metadata_is_an_error(net, tmp_path):
    cache = FeatureCache(tmp_path, cache_policy="always", progress=False)
    cache.get_or_compute(net, "synthetic", h.ids(0, 2), Loader(), preprocessing=h.PREP)
    key = entry_keys(net, "synthetic", h.PREP)["E"]
    meta_path = tmp_path / key.name / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["key"]["engine_version"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="another key"):
        FeatureCache(tmp_path).contains(net, "synthetic", h.ids(0, 2), preprocessing=h.PREP)


def test_bf16_stored_as_raw_16_bits(net):
    url, names = "memory://fc-bf16", h.ids(0, 5)
    out = FeatureCache(url, cache_policy="always", dtype="bf16", progress=False).get_or_compute(
        net, "synthetic", names, Loader(), preprocessing=h.PREP)
    back = FeatureCache(url, cache_policy="always", dtype="bf16", hot_bytes=0).get_or_compute(
        net, "synthetic", names, Loader(), preprocessing=h.PREP)
    fresh = net.extract(h.load_images(names))
    assert back["S"].dtype == torch.bfloat16 and torch.equal(back["S"], out["S"])
    assert torch.equal(back["S"], fresh["S"].bfloat16())
    import zarr
    key = entry_keys(net, "synthetic", h.PREP, "bf16")["S"]
    arr = zarr.open_group(f"{url}/{key.name}", mode="r")["data"]
    assert arr.dtype == np.uint16 and arr.attrs["bfloat16_as_uint16"]


def test_wrong_image_size_for_entry_is_an_error(net, tmp_path):
    cache = FeatureCache(tmp_path, cache_policy="always", progress=False)
    cache.get_or_compute(net, "synthetic", h.ids(0, 2), Loader(), preprocessing=h.PREP)
    small = lambda names: h.load_images(names)[:, :, :32, :32]  # noqa: E731
    with pytest.raises(ValueError, match="preprocessing"):
        cache.get_or_compute(net, "synthetic", h.ids(2, 4), small, preprocessing=h.PREP)


def test_hot_tier_is_lru_by_bytes():
    hot = HotTier(max_bytes=3 * 400)
    for i in range(3):
        hot.put(("e", str(i)), torch.zeros(100))
    hot.get(("e", "0"))
    hot.put(("e", "3"), torch.zeros(100))
    assert hot.get(("e", "1")) is None and hot.get(("e", "0")) is not None
    assert hot.bytes == 1200 and len(hot) == 3
    hot.put(("e", "big"), torch.zeros(1000))
    assert hot.get(("e", "big")) is None


def test_hot_tier_holds_calls_that_fit_and_results_are_the_callers_own(net):
    names = h.ids(0, 6)
    cache = FeatureCache("memory://fc-hot", cache_policy="always", progress=False)
    out = cache.get_or_compute(net, "synthetic", names, Loader(), preprocessing=h.PREP)
    fresh = {k: v.half() for k, v in net.extract(h.load_images(names)).items()}
    assert cache.stats()["hot_items"] == 4 * len(names)
    out["E"].zero_()  # the caller's tensor, not the hot tier's
    again = cache.get_or_compute(net, "synthetic", names, Loader(), preprocessing=h.PREP)
    assert cache.stats()["hot_hits"] == 4 * len(names) and torch.equal(again["E"], fresh["E"])
    # a call larger than the tier would only evict what it puts: its largest tap stays out
    per_item = {k: v[0].numel() * v.element_size() for k, v in fresh.items()}
    big = max(per_item, key=per_item.get)
    tight = FeatureCache("memory://fc-hot", cache_policy="always", hot_bytes=per_item[big] * (len(names) - 1))
    back = tight.get_or_compute(net, "synthetic", names, Loader(), preprocessing=h.PREP)
    name = tight.keys(net, "synthetic", h.PREP)[big].name
    assert not any(key[0] == name for key in tight.hot._items) and tight.stats()["hot_items"] > 0
    assert all(torch.equal(back[k], fresh[k]) for k in net.layers)


def test_auto_policy_stores_deep_taps_only(net):
    arch = net.arch
    fpb = [prefix_flops_per_byte(arch.name, t.module, t.layer, 64) for t in arch.taps]
    assert fpb == sorted(fpb) and fpb[0] > 0
    threshold = (fpb[1] + fpb[2]) / 2
    assert [should_cache("auto", arch.name, t.module, t.layer, 64, threshold) for t in arch.taps] == [0, 0, 1, 1]
    cache = FeatureCache("memory://fc-auto", threshold=threshold, progress=False)
    out = cache.get_or_compute(net, "synthetic", h.ids(0, 3), Loader(), preprocessing=h.PREP)
    stored = cache.contains(net, "synthetic", h.ids(0, 3), preprocessing=h.PREP)
    assert {k: bool(v.all()) for k, v in stored.items()} == {"E": False, "S": False, "M": True, "L": True}
    fresh = {k: v.half() for k, v in net.extract(h.load_images(h.ids(0, 3))).items()}
    assert all(torch.equal(out[k], fresh[k]) for k in net.layers)
    # a rerun reads M and L back and computes E and S by the prefix up to S alone
    from lossnets import LossNetwork
    lazy = LossNetwork(h.ARCH, layers=net.layers, weights="random", seed=net.seed, device="cpu", lazy=True)
    again = FeatureCache("memory://fc-auto", threshold=threshold, progress=False)
    back = again.get_or_compute(lazy, "synthetic", h.ids(0, 3), Loader(), preprocessing=h.PREP)
    assert again.stats()["disk_hits"] == 2 * 3 and not lazy.built and lazy.sub(("E", "S")).built
    assert all(torch.equal(back[k], fresh[k]) for k in net.layers)
    assert not FeatureCache("memory://fc-never", cache_policy="never").get_or_compute(
        net, "synthetic", h.ids(0, 1), Loader(), preprocessing=h.PREP)["E"].isnan().any()
    assert FeatureCache("memory://fc-never").root.entry_names() == []


def test_fp16_storage_refuses_features_it_would_flush_to_zero():
    from lossnets.cache.store import cast_checked
    ok = torch.rand(2, 3, 4, 4)
    assert cast_checked(ok, "fp16", "x").dtype == torch.float16
    with pytest.raises(ValueError, match="fp16 cannot hold.*flushed to zero.*dtype='fp32'"):
        cast_checked(ok * 1e-13, "fp16", "x")  # deep taps of random-weight networks are this small
    with pytest.raises(ValueError, match="overflow"):
        cast_checked(ok * 1e6, "fp16", "x")
    torch.testing.assert_close(cast_checked(ok * 1e-13, "fp32", "x"), ok * 1e-13)


def test_lazy_network_served_from_the_cache_is_never_built(net, tmp_path):
    from lossnets import LossNetwork
    url, names = str(tmp_path / "c"), h.ids(0, 12)
    filled = FeatureCache(url, cache_policy="always", progress=False).get_or_compute(
        net, "synthetic", names, h.load_images, preprocessing=h.PREP)
    lazy = LossNetwork(h.ARCH, layers=net.layers, weights="random", seed=net.seed, device="cpu", lazy=True)
    hits = FeatureCache(url, cache_policy="always", progress=False).get_or_compute(
        lazy, "synthetic", names, h.load_images, preprocessing=h.PREP)
    assert not lazy.built  # the digest came from the memo; nothing was cut or loaded
    for layer in net.layers:
        assert torch.equal(hits[layer], filled[layer])


@pytest.mark.parametrize("rows", [[5, 6, 7, 8, 9], [3, 17, 18, 19, 20, 21, 40], [21, 2, 9, 38, 3], [0], [41, 1]])
def test_take_equals_fancy_indexing(rows, tmp_path):
    import zarr

    from lossnets.cache.store import take
    data = np.arange(48 * 3, dtype=np.float32).reshape(48, 3)
    arr = zarr.open_array(str(tmp_path / "a"), mode="w", shape=data.shape, chunks=(4, 3), dtype="float32")
    arr[:] = data
    rows = np.array(rows)
    np.testing.assert_array_equal(take(arr, rows, 4), data[rows])
    np.testing.assert_array_equal(take(arr, rows, 4, errors=[]), data[rows])


@pytest.mark.parametrize("arch", ["googlenet", "inception_v3", "densenet121"])
def test_prefix_flops_of_all_taps_from_one_trace_equal_each_prefix_alone(arch, tmp_path, monkeypatch):
    from lossnets.cache import policy
    from lossnets.engine.profiler import count_macs
    from lossnets.engine.registry import get_architecture, meta_model
    from lossnets.engine.truncate import truncate
    monkeypatch.setenv("LOSSNETS_HOME", str(tmp_path))
    spec, x = get_architecture(arch), torch.empty(1, 3, 64, 64, device="meta")
    together = policy._registered_taps.__wrapped__(arch, 64)
    assert arch in next(iter(json.loads((tmp_path / "prefix_flops.json").read_text())))
    assert policy._registered_taps.__wrapped__(arch, 64) == together  # from the memo
    for t in spec.taps:
        alone = truncate(meta_model(spec), {t.module: t.layer})
        assert together[(t.module, t.layer)] == (2 * count_macs(alone, x), alone(x)[t.layer][0].numel())
