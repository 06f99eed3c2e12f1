"""Lease files (the cache's writer lock on object stores): one holder at a time, a live holder's heartbeat keeps
the lease, a holder that stopped beating is taken over by exactly one contender; on a local folder and on S3."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import fsspec
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from s3_server import s3  # noqa: E402,F401  (the fixture)

from lossnets.cache.lease import Lease, LeaseTimeout  # noqa: E402

BACKENDS = ("local", "s3")


@pytest.fixture(params=BACKENDS)
def where(request, tmp_path):
    """(filesystem, a lease path) on a local folder or a fresh bucket."""
    if request.param == "local":
        return fsspec.filesystem("file"), str(tmp_path / "locks" / "x.lock")
    server = request.getfixturevalue("s3")
    return fsspec.filesystem("s3", endpoint_url=server.endpoint), f"{server.bucket()}/locks/x.lock"


def test_one_holder_at_a_time(where):
    fs, path = where
    inside, most, errors = [0], [0], []

    def work():
        try:
            for _ in range(3):
                with Lease(fs, path, stale_s=30, timeout=60):
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                    time.sleep(0.01)
                    inside[0] -= 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and most[0] == 1 and not fs.exists(path)


def test_a_live_holder_keeps_the_lease_a_silent_one_is_taken_over_once(where):
    fs, path = where
    stale = 2.0  # a heartbeat every 0.1 s may come up to 1.9 s late on a loaded machine before the lease is lost
    holder = Lease(fs, path, stale_s=stale, beat_s=0.1)
    assert holder.try_acquire()
    time.sleep(stale + 0.5)  # longer than stale_s: only the heartbeat keeps it
    assert not Lease(fs, path, stale_s=stale).try_acquire()
    with pytest.raises(LeaseTimeout, match="held by"):
        Lease(fs, path, stale_s=stale, timeout=0.3).acquire()
    holder._stop.set()  # the holder dies: its heartbeat stops, its file stays
    time.sleep(stale + 0.3)
    contenders = [Lease(fs, path, stale_s=stale) for _ in range(4)]
    won = []
    threads = [threading.Thread(target=lambda c=c: won.append(c.try_acquire())) for c in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(won) == [False, False, False, True]
    assert sum(c.read()["token"] == c.token for c in contenders) == 1
    holder.release()  # the old holder back from the dead removes nothing of the new one's
    assert fs.exists(path)
    for c in contenders:
        c.release()
    assert not fs.exists(path) and fs.find(str(Path(path).parent)) == []
