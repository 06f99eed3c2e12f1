"""Administration of a cache root: list entries, disk use, verify checksums, remove entries."""
from __future__ import annotations

import warnings

import numpy as np
from tqdm.auto import tqdm

from . import CacheWarning
from .keys import is_current
from .store import Entry, Root, item_crcs


def _open(root: Root, name: str) -> Entry:
    return Entry(root, name, root.read_json(root.join(name, "meta.json")))


def _done_rows(entry: Entry) -> np.ndarray:
    rows = np.concatenate([np.arange(a, b) for a, b in entry.allocations()] or [np.zeros(0, np.int64)])
    return rows[entry.done_rows(rows)]


def _du(root: Root, path: str) -> int:
    return int(root.fs.du(path, total=True)) if root.fs.exists(path) else 0


def entries(url) -> list[dict]:
    """One row per entry: name, key fields, items stored, bytes on disk, hits and misses recorded."""
    root = Root(url)
    out = []
    for name in root.entry_names():
        entry = _open(root, name)
        key, uses = entry.meta["key"], root.read_json(root.join(name, "uses.json")) or {}
        out.append({"entry": name, "arch": key["arch"], "layer": key["layer"], "dataset": key["dataset"],
                    "dtype": key["dtype"], "engine_version": key["engine_version"],
                    "item_shape": "x".join(map(str, entry.meta["item_shape"])), "items": len(_done_rows(entry)),
                    "bytes": _du(root, root.join(name)), "hits": uses.get("hits", 0), "misses": uses.get("misses", 0)})
    return out


def disk_usage(url) -> int:
    """Bytes under the cache root."""
    root = Root(url)
    return _du(root, root.path)


def stale(url) -> list[str]:
    """Entries keyed the way of an older lossnets (see ``keys.is_current``): never read, only taking space."""
    root = Root(url)
    return [n for n in root.entry_names() if not is_current((root.read_json(root.join(n, "meta.json")) or {})
                                                            .get("key", {}))]


def verify(url, names=None, repair: bool = False) -> list[dict]:
    """Recompute each stored item's crc32; returns the bad chunks as {entry, chunk, rows, reason}.
    ``repair``: mark those rows not done, so they read as missing and the next run recomputes them.
    Stale entries (see :func:`stale`) are not checked: one CacheWarning names them all."""
    root = Root(url)
    old = stale(url)
    if old:
        warnings.warn(f"lossnets cache: {len(old)} stale entry(ies) under {root.url}, keyed by an older lossnets "
                      f"(by the digest of the whole loaded prefix) and never read: {', '.join(old)}; "
                      f"`lossnets cache rm {root.url} NAME...` frees their space", CacheWarning, stacklevel=2)
    bad = []
    for name in tqdm([n for n in names or root.entry_names() if n not in old], desc="verify", unit="entry",
                     leave=False):
        entry = _open(root, name)
        c = entry.chunk_items
        rows = _done_rows(entry)
        found = []
        for chunk in np.unique(rows // c):
            sel = rows[rows // c == chunk]
            try:
                data = entry.data[chunk * c:(chunk + 1) * c][sel - chunk * c]
                crc = entry.crc[chunk * c:(chunk + 1) * c][sel - chunk * c]
            except Exception as e:  # a chunk that no longer decodes
                found.append({"entry": name, "chunk": int(chunk), "rows": sel.tolist(), "reason": f"unreadable: {e}"})
                continue
            wrong = sel[item_crcs(data) != crc]
            if len(wrong):
                found.append({"entry": name, "chunk": int(chunk), "rows": wrong.tolist(),
                              "reason": "checksum mismatch"})
        if repair and found:
            entry.drop(np.concatenate([b["rows"] for b in found]))
        bad += found
    return bad


def remove(url, names) -> list[str]:
    """Remove the entries whose name starts with any of ``names`` (e.g. a dataset or dataset/arch)."""
    root = Root(url)
    gone = [n for n in root.entry_names() if any(n.startswith(p) for p in names)]
    for name in gone:
        root.fs.rm(root.join(name), recursive=True)
    return gone
