"""The zarr tier: one entry per (tap, key), an append-only id index, a per-item done mask and checksums.

Layout of an entry ``<root>/<key.name>/`` (zarr v3 group):
  ``data``   (rows, C, H, W) features, chunked ``chunk_items`` rows per chunk (fp16; bf16 as raw uint16)
  ``crc``    (rows,) uint32 crc32 of each item's stored bytes
  ``done``   (rows,) uint8, 1 once the item's data and crc are written
  ``index/<start>-<stop>.json``  ids given rows start.. (one file per write, rows allocated in whole chunks)
  ``meta.json``  the full key and shapes, written last at creation; ``uses.json`` hit counts

Crash safety: every chunk of data/crc/done is written exactly once, by the writer that allocated it,
data and crc before done (only ``verify --repair`` rewrites a done chunk, to clear damaged rows). An
item killed before its done chunk reads as missing; its rows are never reused (the index file name
records the allocation), a later writer appends fresh rows.

Damage: every read checks each item's crc32; an item that fails it (or whose chunk does not decode) is
a miss, and its id is stored again in a new allocation, which shadows the bad row (latest wins). Writers hold
a lock (flock of ``<root>/.locks/<entry>.lock`` on local disks; elsewhere a lock within the process,
so object stores take one writer process per entry) while allocating and writing; compute is
outside the lock, so two processes may compute the same items but only one stores them.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import urllib.parse
import zlib
from pathlib import Path

import fsspec
import numpy as np
import torch
import zarr
import zarr.codecs as zc
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from lossnets.engine.atomic import atomic_write

from .keys import EntryKey
from .lease import Lease

MAX_ROWS = 2**40  # arrays never resize (their metadata is written once): rows are allocated, not grown
STORAGE = {"fp16": ("float16", torch.float16), "bf16": ("uint16", torch.bfloat16), "fp32": ("float32", torch.float32)}
_PROCESS_LOCKS: dict[str, threading.Lock] = {}


def codecs(name: str) -> list:
    """zarr compressors from a short name: none, zstdN (level N), lz4-shuffle (blosc lz4 with byte shuffle)."""
    if name == "none":
        return []
    if name == "lz4-shuffle":
        return [zc.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    if name == "zstd-shuffle":
        return [zc.BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")]
    if name.startswith("zstd") and name[4:].isdigit():
        return [zc.ZstdCodec(level=int(name[4:]))]
    raise ValueError(f"unknown codec {name!r}: none, zstd1..zstd22, lz4-shuffle, zstd-shuffle")


def cast_checked(x: torch.Tensor, dtype: str, what: str) -> torch.Tensor:
    """``x`` in the storage dtype; an error, never silently wrong values, where that dtype cannot hold it
    (overflow to inf, or more than 1% of the non-zero values flushed to zero, as fp16 does to the tiny
    activations of deep random-weight taps)."""
    y = x.to(STORAGE[dtype][1]).contiguous()
    if dtype != "fp32" and x.is_floating_point():
        nonzero = x != 0
        flushed = int((nonzero & (y == 0)).sum())
        overflow = bool((torch.isinf(y) & torch.isfinite(x)).any())
        if overflow or flushed > 0.01 * int(nonzero.sum()):
            raise ValueError(
                f"{what}: {dtype} cannot hold these features (max |x| = {float(x.abs().max()):.3g}, "
                f"{flushed} of {int(nonzero.sum())} non-zero values flushed to zero"
                f"{', overflow to inf' if overflow else ''}); open the FeatureCache with dtype='fp32' "
                f"(in a sweep config: cache_dtype = \"fp32\")")
    return y


def to_storage(x: torch.Tensor, dtype: str) -> np.ndarray:
    """Features as the numpy array stored on disk (bf16 as its raw 16 bits)."""
    x = x.detach().to("cpu", STORAGE[dtype][1]).contiguous()
    return x.view(torch.int16).numpy().view(np.uint16) if dtype == "bf16" else x.numpy()


def from_storage(a: np.ndarray, dtype: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.view(torch.int16).view(torch.bfloat16) if dtype == "bf16" else t


def _runs(chunks: np.ndarray) -> list[tuple[int, int]]:
    """Runs [first, last] of consecutive chunk numbers among the sorted unique ``chunks``."""
    u = np.unique(chunks)
    if len(u) == 0:
        return []
    breaks = np.flatnonzero(np.diff(u) != 1)
    return [(int(u[a]), int(u[b])) for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(u) - 1])]


def _consecutive(a: np.ndarray) -> bool:
    return len(a) > 0 and np.array_equal(a, np.arange(a[0], a[0] + len(a)))


def take(arr, rows: np.ndarray, chunk: int, errors: list | None = None) -> np.ndarray:
    """``arr[rows]`` by one slice per run of consecutive chunks (zarr's fancy indexing is O(array length)).

    Without ``errors`` a chunk that cannot be read raises; with a list, it yields zeros and
    ``(chunk number, exception)`` is appended to the list."""
    if _consecutive(rows) and rows[0] >= 0:  # consecutive rows (a rerun in stored order): one read
        try:
            return arr[int(rows[0]):int(rows[0]) + len(rows)]
        except Exception:
            if errors is None:
                raise
    out = np.zeros((len(rows), *arr.shape[1:]), arr.dtype)
    chunks = rows // chunk
    for first, last in _runs(chunks):
        sel = np.flatnonzero((chunks >= first) & (chunks <= last))
        lo, hi = int(rows[sel].min()), int(rows[sel].max()) + 1
        try:
            block = arr[lo:hi]  # the span of the rows wanted: the same chunks decoded, less copied
        except Exception as e:
            if errors is None:
                raise
            if first == last:
                errors.append((first, e))
            else:  # find the bad chunk(s) one by one
                for c in range(first, last + 1):
                    out[chunks == c] = take(arr, rows[chunks == c], chunk, errors)
            continue
        local = rows[sel] - lo
        if _consecutive(sel) and _consecutive(local):
            out[sel[0]:sel[-1] + 1] = block  # a sorted run without gaps: one copy
        else:
            out[sel] = block[local]
    return out


def item_crcs(a: np.ndarray) -> np.ndarray:
    """crc32 of each item (first axis) of a stored array."""
    return np.array([zlib.crc32(np.ascontiguousarray(r).tobytes()) for r in a], dtype=np.uint32)


class EntryMismatch(ValueError):
    """An entry's meta.json holds another key: an error of the caller's, never taken for a store fault."""


class Root:
    """A cache root: a local directory or any fsspec URL (``memory://``, ``s3://``, ...). Filesystem options come
    from the environment (e.g. ``AWS_ENDPOINT_URL``) or the URL's query: ``s3://bucket/cache?endpoint_url=URL``."""

    def __init__(self, url: str):
        base, _, query = str(url).partition("?")
        if "://" not in base or base.startswith("file://"):  # a local path is taken as it is
            base, query = str(url), ""
        self.options = dict(urllib.parse.parse_qsl(query, strict_parsing=True)) if query else {}
        self.fs, self.path = fsspec.core.url_to_fs(base, **self.options)
        if not isinstance(self.fs, (LocalFileSystem, MemoryFileSystem)):  # other processes add files:
            self.options["use_listings_cache"] = False                   # list them afresh every time
            self.fs = type(self.fs)(**{**self.fs.storage_options, **self.options})
        self.path = self.path.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        self.url = self.path if self.local else self.fs.unstrip_protocol(self.path) + (f"?{query}" if query else "")

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])

    def open_group(self, name: str, mode: str, **kwargs):
        """The zarr group of entry ``name``, through this root's filesystem options."""
        if self.local:
            return zarr.open_group(self.join(name), mode=mode, **kwargs)
        return zarr.open_group(self.fs.unstrip_protocol(self.join(name)), mode=mode,
                               storage_options=self.options or None, **kwargs)

    @contextlib.contextmanager
    def lock(self, name: str):
        """Exclusive writer lock of one entry, outside the entry (which creation may wipe): flock on a local
        disk (freed by the OS when a writer dies), a lock within the process on ``memory://`` (which is one
        process's), a :class:`~.lease.Lease` file on an object store (taken over once its holder stops beating)."""
        path = self.join(".locks", name.replace("/", "--") + ".lock")
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        elif isinstance(self.fs, MemoryFileSystem):
            with _PROCESS_LOCKS.setdefault(self.url + "/" + name, threading.Lock()):
                yield
        else:
            with Lease(self.fs, path):
                yield

    def read_json(self, path: str):
        """A JSON file's content, or None if it is absent or unreadable (a torn write)."""
        try:
            return json.loads(self.fs.cat_file(path))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None

    def write_json(self, path: str, obj) -> None:
        """Write a JSON file (atomically on local disks: temporary file, then rename)."""
        data = json.dumps(obj).encode()
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        atomic_write(path, lambda f: f.write(data))

    def entry_names(self) -> list[str]:
        """Names of every entry under the root (entry directories holding a meta.json)."""
        if not self.fs.exists(self.path):
            return []
        metas = self.fs.glob(self.join("*", "*", "*", "meta.json"))  # names are dataset/arch/layer-hash
        return sorted(p.rstrip("/")[len(self.path) + 1:-len("/meta.json")] for p in metas)


class Entry:
    """One tap's features for one key; open with :meth:`open` (None if absent) or :meth:`create`."""

    def __init__(self, root: Root, name: str, meta: dict):
        self.root, self.name, self.meta = root, name, meta
        self.dtype = meta["key"]["dtype"]
        self.chunk_items = meta["chunk_items"]
        group = root.open_group(name, mode="r+")
        self.data, self.crc, self.done = group["data"], group["crc"], group["done"]
        self._segments: dict[str, list[str]] = {}
        self._rows: dict[str, int] = {}

    @classmethod
    def open(cls, root: Root, key: EntryKey) -> Entry | None:
        meta = root.read_json(root.join(key.name, "meta.json"))
        if meta is None:
            return None
        if meta.get("key") != key.to_dict():
            raise EntryMismatch(f"cache entry {root.url}/{key.name} was written for another key "
                             f"({meta.get('key')}); remove it with `lossnets cache rm`")
        return cls(root, key.name, meta)

    @classmethod
    def create(cls, root: Root, key: EntryKey, item_shape: tuple[int, ...], input_shape: tuple[int, ...],
               codec: str = "zstd1", chunk_items: int = 64) -> Entry:
        """Open the entry, creating it (under its lock) if absent or half-created."""
        with root.lock(key.name):
            entry = cls.open(root, key)
            if entry is not None:
                return entry
            group = root.open_group(key.name, mode="w",
                                    attributes={"lossnets_key": key.to_dict(), "storage_dtype": key.dtype})
            zdtype = STORAGE[key.dtype][0]
            group.create_array("data", shape=(MAX_ROWS, *item_shape), chunks=(chunk_items, *item_shape),
                               dtype=zdtype, compressors=codecs(codec), fill_value=0,
                               attributes={"bfloat16_as_uint16": key.dtype == "bf16"})
            for name, dt in (("crc", "uint32"), ("done", "uint8")):
                group.create_array(name, shape=(MAX_ROWS,), chunks=(chunk_items,), dtype=dt, compressors=None,
                                   fill_value=0)
            meta = {"key": key.to_dict(), "item_shape": list(item_shape), "input_shape": list(input_shape),
                    "chunk_items": chunk_items, "codec": codec}
            root.write_json(root.join(key.name, "meta.json"), meta)
            return cls(root, key.name, meta)

    # -- index ------------------------------------------------------------------------------------
    def _segment_files(self) -> list[str]:
        d = self.root.join(self.name, "index")
        try:
            return sorted(p.rsplit("/", 1)[-1] for p in self.root.fs.ls(d, detail=False) if p.endswith(".json"))
        except FileNotFoundError:
            return []

    def refresh(self) -> dict[str, int]:
        """id -> row of its latest allocation (torn index files are skipped: their items read as missing).
        Index files gone from the store (the entry was removed) forget everything read before."""
        files = self._segment_files()
        if not set(self._segments) <= set(files):
            self._segments, self._rows = {}, {}
        new = False
        for f in files:
            if f not in self._segments:
                ids = self.root.read_json(self.root.join(self.name, "index", f))
                if ids is not None:
                    self._segments[f], new = ids, True
        if new:
            self._rows = {}
            for f in sorted(self._segments):
                start = int(f.split("-")[0])
                self._rows.update((i, start + k) for k, i in enumerate(self._segments[f]))
        return self._rows

    def next_row(self) -> int:
        files = self._segment_files()
        return int(files[-1].split("-")[1].removesuffix(".json")) if files else 0

    def allocations(self) -> list[tuple[int, int]]:
        """(start, stop) of every row allocation, including torn ones."""
        return [tuple(int(x) for x in f.removesuffix(".json").split("-")) for f in self._segment_files()]

    # -- done mask --------------------------------------------------------------------------------
    def done_rows(self, rows: np.ndarray) -> np.ndarray:
        """Boolean done mask of ``rows``; a chunk that cannot be read counts as not done."""
        return take(self.done, rows, self.chunk_items, errors=[]).astype(bool)

    def lookup(self, ids: list[str]) -> np.ndarray:
        """Row of each id that is stored and done, -1 otherwise."""
        index = self.refresh()
        rows = np.array([index.get(i, -1) for i in ids], dtype=np.int64)
        have = rows >= 0
        rows[have] = np.where(self.done_rows(rows[have]), rows[have], -1)
        return rows

    # -- data -------------------------------------------------------------------------------------
    def read(self, rows: np.ndarray) -> tuple[torch.Tensor, np.ndarray, str]:
        """Features of ``rows``, which of them match their stored crc32, and what failed ("" if none).

        A chunk that does not decode reads as zeros, which fail their crc (unless the item was zeros)."""
        errors: list = []
        data = take(self.data, rows, self.chunk_items, errors)
        ok = item_crcs(data) == take(self.crc, rows, self.chunk_items, errors)
        bad = sorted({int(r) // self.chunk_items for r in rows[~ok]})
        undecodable = [f"chunk {c} does not decode ({type(e).__name__}: {e})" for c, e in errors if c in bad]
        mismatch = f"crc32 mismatch in chunk{'s' * (len(bad) > 1)} {str(bad)[1:-1]}" if bad else ""
        why = "; ".join(undecodable) or mismatch
        return from_storage(data, self.dtype), ok, " ".join(why.split())

    def write(self, ids: list[str], features: torch.Tensor, replace=()) -> int:
        """Store the items of ``ids`` not yet done, and those in ``replace`` (damaged: their new rows
        shadow the old); returns how many were written. An entry removed from the store is an error."""
        with self.root.lock(self.name):
            if not self.root.fs.exists(self.root.join(self.name, "meta.json")):
                raise FileNotFoundError(f"cache entry {self.root.url}/{self.name} was removed (no meta.json)")
            rows = self.lookup(ids)
            todo = [k for k in range(len(ids)) if rows[k] < 0 or ids[k] in replace]
            if not todo:
                return 0
            c = self.chunk_items
            start = -(-self.next_row() // c) * c
            stop = start + -(-len(todo) // c) * c
            self.root.write_json(self.root.join(self.name, "index", f"{start:015d}-{stop:015d}.json"),
                                 [ids[k] for k in todo])
            stored = to_storage(features[todo], self.dtype)
            for off in range(0, len(todo), c):
                part = stored[off:off + c]
                pad = np.zeros((c, *part.shape[1:]), part.dtype)
                pad[:len(part)] = part
                crc, done = np.zeros(c, np.uint32), np.zeros(c, np.uint8)
                crc[:len(part)], done[:len(part)] = item_crcs(part), 1
                r = start + off
                self.data[r:r + c] = pad
                self.crc[r:r + c] = crc
                self.done[r:r + c] = done  # last: the commit of this chunk
            self.refresh()
            return len(todo)

    def drop(self, rows: np.ndarray) -> None:
        """Mark ``rows`` not done (they read as missing), rewriting their done chunks under the lock."""
        c = self.chunk_items
        with self.root.lock(self.name):
            for chunk in np.unique(rows // c):
                lo = int(chunk) * c
                done = take(self.done, np.arange(lo, lo + c), c, errors=[])
                done[rows[rows // c == chunk] - lo] = 0
                self.done[lo:lo + c] = done

    def record_use(self, hits: int, misses: int) -> None:
        """Add to the entry's persistent hit/miss counters (shown by `lossnets cache ls`)."""
        path = self.root.join(self.name, "uses.json")
        with self.root.lock(self.name):
            uses = self.root.read_json(path) or {"hits": 0, "misses": 0}
            self.root.write_json(path, {"hits": uses["hits"] + hits, "misses": uses["misses"] + misses})
