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


def test_item_without_done_reads_as_missing(tmp_path):
    fill(tmp_path, h.ids(0, 8))
    key = entry_keys(h.make_net(), "synthetic", h.PREP)["M"]
    (tmp_path / key.name / "done" / "c" / "1").unlink()  # killed between data and done of chunk 1
    net = h.make_net()
    assert FeatureCache(tmp_path).contains(net, "synthetic", h.ids(0, 8), preprocessing=h.PREP)["M"].tolist() == \
        [True] * 4 + [False] * 4
    assert_fresh(fill(tmp_path, h.ids(0, 8)), h.ids(0, 8))


def test_two_concurrent_writers(tmp_path):
    procs = [writer(tmp_path, 0, 16), writer(tmp_path, 8, 24)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.split() == ["ready", "done"]
    assert [e["items"] for e in admin.entries(tmp_path)] == [24] * 4
    assert admin.verify(tmp_path) == []
    assert_fresh(fill(tmp_path, h.ids(0, 24)), h.ids(0, 24))


def test_verify_finds_corrupted_chunk_and_cli(tmp_path, capsys):
    fill(tmp_path, h.ids(0, 8))
    key = entry_keys(h.make_net(), "synthetic", h.PREP)["S"]
    chunk = next((tmp_path / key.name / "data" / "c" / "1").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    bad = admin.verify(tmp_path)
    assert [(b["entry"], b["chunk"]) for b in bad] == [(key.name, 1)]
    assert main(["cache", "verify", str(tmp_path)]) == 2
    assert f"BAD {key.name} chunk 1" in capsys.readouterr().out
    assert main(["cache", "ls", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "squeezenet1_1" in listing and "hits" in listing
    assert main(["cache", "du", str(tmp_path)]) == 0
    assert main(["cache", "rm", str(tmp_path), key.name]) == 0
    assert len(admin.entries(tmp_path)) == 3 and admin.verify(tmp_path) == []
