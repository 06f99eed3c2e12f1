"""Lease: an exclusive lock held as a file, on a local or shared folder or an object store, with a heartbeat.

The lease file is created exclusively and whole (a hard link on a mounted filesystem, local or NFS; fsspec's
``pipe_file(mode="create")`` elsewhere, which S3 (If-None-Match), GCS and MinIO make atomic) and holds its
owner (host, pid, a random token) and a heartbeat time that the holder rewrites every ``beat_s`` seconds from a
thread. A lease whose heartbeat is older than ``stale_s`` (its holder died or lost the store) is taken over:
the taker first wins an exclusive ``<lease>.break-<token>`` file, so exactly one process removes that stale
instance, and only if the file still holds it; a holder that was a process of this host and has ended is taken
over at once. Heartbeats are compared with the local clock: the machines sharing a lease need clocks within a
small fraction of ``stale_s``.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from lossnets.engine.atomic import atomic_write

STALE_S = float(os.environ.get("LOSSNETS_LEASE_STALE_S", 60))  # a heartbeat older than this is a dead holder's


class LeaseTimeout(TimeoutError):
    """A live holder kept the lease past the caller's timeout."""


def create_exclusive(fs, path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` only if no file is there, atomically and whole (a local file is written
    aside, then hard-linked into place); whether this call created it."""
    try:
        if isinstance(fs, LocalFileSystem):
            tmp = atomic_write(f"{path}.{uuid.uuid4().hex}.new", lambda f: f.write(data))
            try:
                os.link(tmp, path)
            finally:
                tmp.unlink()
        else:
            fs.pipe_file(path, data, mode="create")
    except FileExistsError:  # s3fs: a failed If-None-Match
        return False
    return True


def _gone(held: dict) -> bool:
    """Whether the holder was a process of this host that has ended (killed, say): no need to wait for its
    heartbeat to age."""
    host, _, pid = str(held.get("owner", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) has ended too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def write(fs, path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole (a rename on a local filesystem, one PUT on an object store)."""
    if isinstance(fs, LocalFileSystem):
        atomic_write(path, lambda f: f.write(data))
    else:
        fs.pipe_file(path, data)


class Lease:
    """``with Lease(fs, path):`` holds the lease at ``path`` (waiting up to ``timeout`` s for a live holder).
    :meth:`try_acquire` takes it without waiting; :meth:`release` gives it back (also on exit)."""

    def __init__(self, fs, path: str, *, stale_s: float | None = None, beat_s: float | None = None,
                 timeout: float = 600.0):
        self.fs, self.path, self.timeout = fs, path, timeout
        self.stale_s = STALE_S if stale_s is None else stale_s
        self.beat_s = beat_s or self.stale_s / 4
        self.token = uuid.uuid4().hex
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._stop: threading.Event | None = None

    def _content(self) -> bytes:
        return json.dumps({"owner": self.owner, "token": self.token, "beat": time.time()}).encode()

    def read(self) -> dict | None:
        """The lease file's content (None if absent or torn)."""
        try:
            return json.loads(self.fs.cat_file(self.path))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None

    def _live(self, held: dict) -> bool:
        return time.time() - held.get("beat", 0) <= self.stale_s and not _gone(held)

    def held_by_another(self) -> bool:
        """Whether a live holder other than this one holds the lease now."""
        held = self.read()
        return held is not None and held.get("token") != self.token and self._live(held)

    def try_acquire(self) -> bool:
        """Take the lease if it is free or stale; whether this call holds it now."""
        if not create_exclusive(self.fs, self.path, self._content()):
            held = self.read()
            if held is None or self._live(held):
                return False  # None: released since (the file is always whole)
            if not self._break(held) or not create_exclusive(self.fs, self.path, self._content()):
                return False
        self._stop = threading.Event()
        threading.Thread(target=self._beat, args=(self._stop,), daemon=True, name=f"lease {self.path}").start()
        return True

    def _break(self, held: dict) -> bool:
        """Remove the stale instance ``held`` if this process wins the right to."""
        marker = f"{self.path}.break-{held['token']}"
        if not create_exclusive(self.fs, marker, self.token.encode()):
            return False
        try:
            if self.read() == held:
                self.fs.rm_file(self.path)
        except FileNotFoundError:
            pass
        finally:
            self.fs.rm_file(marker)
        return True

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.beat_s):
            try:
                if (self.read() or {}).get("token") != self.token:
                    return  # taken over: never overwrite the new holder's file
                write(self.fs, self.path, self._content())
            except Exception:  # noqa: BLE001 - a store that fails now fails the holder's own writes too
                pass

    def acquire(self) -> None:
        deadline, wait = time.monotonic() + self.timeout, 0.02
        while not self.try_acquire():
            if time.monotonic() > deadline:
                held = self.read() or {}
                raise LeaseTimeout(f"{self.path} is held by {held.get('owner', '?')}, alive (heartbeat "
                                   f"{time.time() - held.get('beat', 0):.0f} s ago) after {self.timeout:.0f} s")
            time.sleep(wait)
            wait = min(2 * wait, 0.25)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease file if it is still this holder's."""
        if self._stop is None:
            return
        self._stop.set()
        self._stop = None
        if (self.read() or {}).get("token") == self.token:
            self.fs.rm_file(self.path)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - the store failing now: the error that got us here says more
            if exc_type is None:
                raise
