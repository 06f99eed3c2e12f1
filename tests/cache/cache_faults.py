"""Fault injection for the cache tests: stores whose writes (and reads) fail once a byte budget is spent.

``Faults.on(error, budget)`` makes every write raise ``error`` once ``budget`` more bytes are written:
ENOSPC for a full disk, PermissionError for a read-only store (budget 0), TimeoutError for an object
store that times out (``reads=True``: reads too). Local folders fail through zarr's LocalStore and the
cache's atomic JSON writes (patched by the ``faults`` fixture: chmod does not stop root); ``faulty://``
URLs are the fsspec memory filesystem failing in its own ``pipe_file``/``cat_file``.
"""
from __future__ import annotations

import io

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem


class Faults:
    error: OSError | None = None
    budget = 0
    reads = False
    written = 0  # bytes written while no fault is set

    @classmethod
    def on(cls, error: OSError, budget: int = 0, reads: bool = False) -> None:
        cls.error, cls.budget, cls.reads = error, budget, reads

    @classmethod
    def off(cls) -> None:
        cls.error, cls.reads, cls.written = None, False, 0

    @classmethod
    def charge(cls, nbytes: int) -> None:
        if cls.error is None:
            cls.written += nbytes
        elif nbytes > cls.budget:
            raise cls.error
        else:
            cls.budget -= nbytes


class FaultyMemoryFS(MemoryFileSystem):
    """The memory filesystem under ``faulty://``, failing as :class:`Faults` says."""
    protocol = ("faulty",)

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("faulty://"))

    def pipe_file(self, path, value, *args, **kwargs):
        Faults.charge(len(value))
        return super().pipe_file(path, value, *args, **kwargs)

    def cat_file(self, path, *args, **kwargs):
        if Faults.reads and Faults.error is not None:
            raise Faults.error
        return super().cat_file(path, *args, **kwargs)


fsspec.register_implementation("faulty", FaultyMemoryFS, clobber=True)


@pytest.fixture
def faults(monkeypatch):
    """:class:`Faults`, with local writes routed through it; off again after the test."""
    import zarr.storage._local as local

    from lossnets.cache import store
    put, atomic = local._put, store.atomic_write

    def faulty_put(path, value, *args, **kwargs):
        Faults.charge(len(value))
        return put(path, value, *args, **kwargs)

    def faulty_atomic(path, write):
        buf = io.BytesIO()
        write(buf)
        Faults.charge(len(buf.getvalue()))
        return atomic(path, lambda f: f.write(buf.getvalue()))

    monkeypatch.setattr(local, "_put", faulty_put)
    monkeypatch.setattr(store, "atomic_write", faulty_atomic)
    Faults.off()
    yield Faults
    Faults.off()
