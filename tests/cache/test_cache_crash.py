"""Crash safety, concurrent writers, checksums and the `lossnets cache` command."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cache_helpers as h  # noqa: E402

from lossnets.cache import FeatureCache, admin, entry_keys  # noqa: E402
from lossnets.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

WRITER = Path(__file__).parent / "cache_writer.py"


def writer(url, start, stop, delay=0.0):
    return subprocess.Popen([sys.executable, str(WRITER), str(url), str(start), str(stop), str(delay)],
                            stdout=subprocess.PIPE, text=True)


def fill(url, names):
    cache = FeatureCache(url, cache_policy="always", chunk_items=4, batch_size=4, hot_bytes=0, progress=False)
    return cache.get_or_compute(h.make_net(), "synthetic", names, h.load_images, preprocessing=h.PREP)


def assert_fresh(out, names):
    """Equal to freshly computed features up to fp16 rounding (other processes use other batch sizes)."""
    fresh = h.make_net().extract(h.load_images(names))
    for layer, f in fresh.items():
        torch.testing.assert_close(out[layer].float(), f, rtol=4e-3, atol=4e-3)


def test_sigkill_while_writing_then_next_run_completes(tmp_path):
    proc = writer(tmp_path, 0, 40, delay=0.1)
    assert proc.stdout.readline().strip() == "ready"
    done_dir = tmp_path / entry_keys(h.make_net(layers=("L",)), "synthetic", h.PREP)["L"].name / "done" / "c"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(done_dir.glob("*"))) < 2:
        time.sleep(0.02)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    net = h.make_net()
    stored = FeatureCache(tmp_path).contains(net, "synthetic", h.ids(0, 40), preprocessing=h.PREP)["L"]
    assert 0 < stored.sum() < 40
    assert admin.verify(tmp_path) == []
    assert_fresh(fill(tmp_path, h.ids(0, 40)), h.ids(0, 40))
    assert all(e["items"] == 40 for e in admin.entries(tmp_path))


@pytest.mark.parametrize("backend", h.BACKENDS)
def test_item_without_done_reads_as_missing(backend, tmp_path):
    url = h.store_url(backend, tmp_path)
    fill(url, h.ids(0, 8))
    key = entry_keys(h.make_net(), "synthetic", h.PREP)["M"]
    fs, path = h.chunk_file(url, key.name, "done")
    fs.rm(path)  # killed between data and done of chunk 1
    net = h.make_net()
    assert FeatureCache(url).contains(net, "synthetic", h.ids(0, 8), preprocessing=h.PREP)["M"].tolist() == \
        [True] * 4 + [False] * 4
    assert_fresh(fill(url, h.ids(0, 8)), h.ids(0, 8))


def test_two_concurrent_writers(tmp_path):
    procs = [writer(tmp_path, 0, 16), writer(tmp_path, 8, 24)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.split() == ["ready", "done"]
    assert [e["items"] for e in admin.entries(tmp_path)] == [24] * 4
    assert admin.verify(tmp_path) == []
    assert_fresh(fill(tmp_path, h.ids(0, 24)), h.ids(0, 24))


@pytest.mark.parametrize("backend", h.BACKENDS)
def test_verify_finds_corrupted_chunk_repairs_and_cli(backend, tmp_path, capsys):
    url = h.store_url(backend, tmp_path)
    fill(url, h.ids(0, 8))
    key = entry_keys(h.make_net(), "synthetic", h.PREP)["S"]
    fs, path = h.chunk_file(url, key.name)
    raw = bytearray(fs.cat_file(path))
    raw[len(raw) // 2] ^= 0xFF
    fs.pipe_file(path, bytes(raw))
    bad = admin.verify(url)
    assert [(b["entry"], b["chunk"]) for b in bad] == [(key.name, 1)]
    assert main(["cache", "verify", url]) == 2
    out, err = capsys.readouterr()
    assert f"BAD {key.name} chunk 1" in out and err.count("\n") == 1 and "--repair" in err
    assert main(["cache", "verify", url, "--repair"]) == 0 and "dropped" in capsys.readouterr().out
    items = {e["entry"]: e["items"] for e in admin.entries(url)}
    assert admin.verify(url) == [] and items.pop(key.name) == 8 - len(bad[0]["rows"]) and set(items.values()) == {8}
    assert main(["cache", "ls", url, "--repair"]) == 2
    assert main(["cache", "ls", url]) == 0
    listing = capsys.readouterr().out
    assert "squeezenet1_1" in listing and "hits" in listing
    assert main(["cache", "du", url]) == 0
    assert main(["cache", "rm", url, key.name]) == 0
    assert len(admin.entries(url)) == 3 and admin.verify(url) == []
