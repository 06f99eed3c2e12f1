"""The cache never fails or falsifies a run: damaged chunks, full, read-only, removed or timing-out stores.

Each run's features equal an uncached run's, and each fault gives exactly one one-line CacheWarning."""
import errno
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import fsspec
import numcodecs
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import cache_helpers as h  # noqa: E402
from cache_faults import faults  # noqa: E402,F401 - the fixture

from lossnets.cache import CacheWarning, FeatureCache, admin, entry_keys  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = h.ids(0, 12)  # 3 chunks of 4 items
FULL = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def net():
    return h.make_net(layers=("E",))


@pytest.fixture(scope="module")
def uncached(net):
    return run(net, "memory://unused", policy="never")[0][0]


def run(net, url, names=NAMES, calls=2, load=h.load_images, policy="always"):
    """``calls`` passes over ``names`` (epochs) with a fresh cache object; (outputs, cache, warnings)."""
    cache = FeatureCache(url, cache_policy=policy, chunk_items=4, batch_size=4, hot_bytes=0, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [cache.get_or_compute(net, "synthetic", names, load, preprocessing=h.PREP)["E"] for _ in range(calls)]
    return outs, cache, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def check(outs, said, uncached, *words):
    """Every pass equals the uncached run; one warning line, with ``words`` in it."""
    assert all(torch.equal(o, uncached) for o in outs)
    assert len(said) == 1 and "\n" not in said[0], said
    assert all(w in said[0] for w in words), said[0]


def entry(net) -> str:
    return entry_keys(net, "synthetic", h.PREP)["E"].name


def garbage(raw: bytes) -> bytes:
    """A valid zstd frame whose content is not what was stored (values near fp16's maximum)."""
    codec = numcodecs.Zstd(level=1)
    data = np.frombuffer(codec.decode(raw), np.uint8).copy()
    data[100::997] = 0x7B  # a byte in every item
    return codec.encode(data.tobytes())


def undecodable(raw: bytes) -> bytes:
    return b"\0\0\0\0" + raw[4:]  # no zstd magic number


@pytest.mark.parametrize("backend", h.BACKENDS)
@pytest.mark.parametrize("corrupt", [undecodable, garbage])
def test_corrupted_chunk_is_recomputed_and_never_served_again(net, uncached, backend, corrupt, tmp_path):
    url = h.store_url(backend, tmp_path)
    run(net, url, calls=1)
    fs, path = h.chunk_file(url, entry(net))
    fs.pipe_file(path, corrupt(fs.cat_file(path)))
    outs, cache, said = run(net, url)
    check(outs, said, uncached, entry(net), "chunk 1", "--repair")
    assert cache.stats()["damaged"] == 4 and cache.stats()["stored"] == 4  # stored again, in new rows
    outs, cache, said = run(net, url, calls=1)
    assert torch.equal(outs[0], uncached) and said == [] and cache.stats()["disk_hits"] == 12
    assert [b["rows"] for b in admin.verify(url)] == [[4, 5, 6, 7]]  # the shadowed rows, until repaired
    admin.verify(url, repair=True)
    assert admin.verify(url) == [] and admin.entries(url)[0]["items"] == 12


@pytest.mark.parametrize("backend", h.BACKENDS)
def test_full_disk_ends_writing_and_keeps_what_was_stored(net, uncached, backend, faults, tmp_path):
    run(net, h.store_url(backend, tmp_path / "probe", "faulty"), calls=1)
    url = h.store_url(backend, tmp_path, "faulty")
    faults.on(FULL, budget=faults.written // 2)
    outs, cache, said = run(net, url)
    check(outs, said, uncached, entry(net), "No space left on device", f"{cache.stats()['stored']} item(s)")
    assert 0 < cache.stats()["stored"] < 12 and cache.stats()["disk_hits"] == cache.stats()["stored"]
    faults.off()  # space is back: the next run reads what was stored and stores the rest
    outs, cache, said = run(net, url, calls=1)
    assert torch.equal(outs[0], uncached) and said == [] and 0 < cache.stats()["stored"] < 12
    assert admin.verify(url) == [] and admin.entries(url)[0]["items"] == 12


@pytest.mark.parametrize("backend", h.BACKENDS)
@pytest.mark.parametrize("error", [PermissionError(errno.EROFS, "Read-only file system"), TimeoutError("timed out")])
def test_store_that_refuses_writes(net, uncached, backend, error, faults, tmp_path):
    url = h.store_url(backend, tmp_path, "faulty")
    run(net, url, NAMES[:6], calls=1)
    faults.on(error)
    outs, cache, said = run(net, url)
    check(outs, said, uncached, entry(net), type(error).__name__, "0 item(s)")
    assert cache.stats()["disk_hits"] == 2 * 6  # what was stored before stays readable


def test_object_store_that_times_out(net, uncached, faults, tmp_path):
    url = h.store_url("memory", tmp_path, "faulty")
    run(net, url, calls=1)
    faults.on(TimeoutError("read timed out"), reads=True)
    outs, cache, said = run(net, url)
    check(outs, said, uncached, entry(net), "read timed out", "reads and writes")
    assert cache.stats()["computed"] == 2 * 12


@pytest.mark.parametrize("backend", h.BACKENDS)
def test_cache_folder_removed_mid_run(net, uncached, backend, tmp_path):
    url = h.store_url(backend, tmp_path)
    run(net, url, NAMES[:6], calls=1)

    def load_then_remove(names):
        fs, path = fsspec.core.url_to_fs(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        return h.load_images(names)

    outs, cache, said = run(net, url, load=load_then_remove)
    check(outs, said, uncached, entry(net), "was removed")
    assert FeatureCache(url).root.entry_names() == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 384 KiB tmpfs (root with mount rights only)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mnt)],
                                                       capture_output=True).returncode:
        pytest.skip("no permission to mount a tmpfs here (the faulty:// filesystem covers a full disk)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_real_full_disk(net, uncached, small_tmpfs):
    outs, cache, said = run(net, str(small_tmpfs / "cache"))
    check(outs, said, uncached, entry(net), "No space left on device")
    assert 0 < cache.stats()["stored"] < 12 and admin.verify(small_tmpfs / "cache") == []
