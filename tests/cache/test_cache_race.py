"""Two processes writing the same entries at once, on a local folder and on S3: no damaged store, no lost or
doubled rows, the figures of a single process."""
from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cache_racer  # noqa: E402
from s3_server import s3  # noqa: E402,F401  (the fixture)

from lossnets.cache import admin  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
N = 8


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_processes_write_the_same_entries_at_once(backend, tmp_path, request):
    if backend == "local":
        url = str(tmp_path / "cache")
    else:
        server = request.getfixturevalue("s3")
        url = server.url(server.bucket())
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=cache_racer.fill, args=(url, N, barrier, str(tmp_path / f"{i}.pt"))) for i in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    racers = [torch.load(tmp_path / f"{i}.pt") for i in (0, 1)]
    cache_racer.fill(str(tmp_path / "single"), N, None, str(tmp_path / "single.pt"))
    single = torch.load(tmp_path / "single.pt")["features"]
    cache_racer.fill(url, N, None, str(tmp_path / "reader.pt"))  # a third process: reads everything back
    reader = torch.load(tmp_path / "reader.pt")
    taps = len(cache_racer.LAYERS)
    assert [r["stats"]["computed"] for r in racers] == [N, N]  # both computed every item...
    assert sum(r["stats"]["stored"] for r in racers) == N * taps  # ...and each was stored once
    assert reader["stats"]["computed"] == 0 and reader["stats"]["disk_hits"] == N * taps  # no row lost
    assert admin.verify(url) == [] and [e["items"] for e in admin.entries(url)] == [N] * taps
    for got in [reader] + racers:
        assert all(torch.equal(got["features"][k], single[k]) for k in single)
