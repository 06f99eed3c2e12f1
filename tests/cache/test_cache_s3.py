"""The cache on an S3-compatible object store (moto's server on 127.0.0.1, through s3fs): cold then warm, the
server stopped mid-run and back, `lossnets cache ls|du|verify|rm` on the bucket (SYNTHETIC data, random weights)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cache_helpers as h  # noqa: E402
from s3_server import s3  # noqa: E402,F401  (the fixture)

from lossnets.benchmarks.similarity import benchmark as similarity  # noqa: E402
from lossnets.benchmarks.similarity.bapps import load_bapps  # noqa: E402
from lossnets.benchmarks.similarity.made import make_bapps  # noqa: E402
from lossnets.cache import CacheWarning, FeatureCache, admin  # noqa: E402
from lossnets.cli import main  # noqa: E402
from lossnets.engine import LossNetwork  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cold_then_warm_run_on_a_bucket(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)  # the endpoint from the environment
    url = f"s3://{s3.bucket()}/cache"
    data = load_bapps(make_bapps(tmp_path / "bapps", size=2, train_size=0, seed=8))
    nets = [LossNetwork("squeezenet1_1", ("E", "L"), "random", seed=2, device="cpu", lazy=True) for _ in range(2)]
    cold, warm = (similarity.run(net, data, layers=["E", "E+L"], cache=url, progress=False) for net in nets)
    assert nets[0].built and not nets[1].built  # the warm run read every statistic from the bucket
    assert list(cold["value"]) == list(warm["value"])
    assert len(admin.entries(url)) == 2 and admin.verify(url) == []


def test_server_stopped_mid_run_then_back(s3):
    url, names = s3.url(s3.bucket()), h.ids(0, 8)
    net = h.make_net(layers=("E", "L"))

    def load_then_stop(ids):  # the server goes away after the lookups, before anything is stored
        s3.stop()
        return h.load_images(ids)

    cache = FeatureCache(url, cache_policy="always", chunk_items=4, progress=False)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = cache.get_or_compute(net, "synthetic", names, load_then_stop, preprocessing=h.PREP)
    finally:
        s3.start()
    assert [issubclass(w.category, CacheWarning) for w in seen] == [True], [str(w.message) for w in seen]
    fresh = net.extract(h.load_images(names))
    assert all(torch.equal(out[k], fresh[k].half()) for k in net.layers)  # uncached figures, all of them
    assert admin.verify(url) == [] and admin.stale(url) == []  # the server back: no damage
    again = FeatureCache(url, cache_policy="always", chunk_items=4, progress=False)
    back = again.get_or_compute(net, "synthetic", names, h.load_images, preprocessing=h.PREP)
    assert again.stats()["computed"] == len(names) and all(torch.equal(back[k], out[k]) for k in net.layers)
    assert admin.verify(url) == [] and [e["items"] for e in admin.entries(url)] == [len(names)] * 2


def test_cache_commands_on_the_bucket(s3, capsys):
    url = s3.url(s3.bucket())
    FeatureCache(url, cache_policy="always", progress=False).get_or_compute(
        h.make_net(layers=("E", "L")), "synthetic", h.ids(0, 3), h.load_images, preprocessing=h.PREP)
    names = [e["entry"] for e in admin.entries(url)]
    assert len(names) == 2 and main(["cache", "ls", url]) == 0
    listing = capsys.readouterr().out
    assert all(n in listing for n in names)
    assert main(["cache", "du", url]) == 0 and float(capsys.readouterr().out.split()[0]) > 0
    assert main(["cache", "verify", url]) == 0 and "all checksums match" in capsys.readouterr().out
    assert main(["cache", "rm", url, names[0]]) == 0 and names[0] in capsys.readouterr().out
    assert [e["entry"] for e in admin.entries(url)] == names[1:]
