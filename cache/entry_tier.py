"""EntryTier: the entries of one cache root as one cache object uses them, shared by the feature cache and the
statistics store.

It opens each entry once, reads items (a row that fails its crc32 check is a miss, shadowed by the copy computed
next), writes them, and counts hits and misses per entry for ``uses.json``. A store that cannot be written ends
writing for this object; one that cannot be read ends reading too. Each gives one :class:`CacheWarning` line.
"""
from __future__ import annotations

import time
import warnings
from collections import Counter

import numpy as np
import torch

from .keys import EntryKey
from .store import Entry, EntryMismatch, Root, codecs

COUNTERS = ("hot_hits", "disk_hits", "computed", "stored", "bytes_read", "bytes_written", "damaged")


class CacheWarning(RuntimeWarning):
    """A cache met damage or a failing store and computed instead."""


class Result:
    """One tap's ``(N, ...)`` result of a call, filled piece by piece (hot hits, disk reads, computed
    batches). A fresh tensor that covers every item in order becomes the result as it is (no copy)."""

    def __init__(self, n: int):
        self.n, self.tensor = n, None

    def fill(self, positions: np.ndarray, values: torch.Tensor, fresh: bool) -> None:
        """``values[k]`` is item ``positions[k]``; ``fresh``: nobody else holds ``values``."""
        if self.tensor is None:
            if fresh and len(positions) == self.n and np.array_equal(positions, np.arange(self.n)):
                self.tensor = values
                return
            self.tensor = values.new_empty((self.n, *values.shape[1:]))
        self.tensor[torch.from_numpy(np.asarray(positions, dtype=np.int64))] = values


class EntryTier:
    """Entries under ``url`` (a directory or any fsspec URL); ``codec`` and ``chunk_items`` apply to entries this
    object creates. ``counts``: disk_hits, bytes_read, stored, bytes_written, damaged; ``off``: "read"/"write" ->
    why that side is off."""

    def __init__(self, url, *, codec: str = "zstd1", chunk_items: int = 64):
        self.root = Root(url)
        codecs(codec)  # an unknown codec is the caller's error, not a store fault at the first write
        self.codec, self.chunk_items = codec, chunk_items
        self.counts = Counter()
        self.off: dict[str, str] = {}
        self.uses_flushed = time.monotonic()
        self._entries: dict[str, Entry] = {}
        self._uses: dict[str, Counter] = {}  # hits/misses per entry not yet added to its uses.json
        self._damaged: dict[str, set[str]] = {}  # entry -> ids whose stored copy failed its check

    def guarded(self, side: str, name: str, fn, *args):
        """``fn(*args)``, or None once ``side`` ("read" or "write") of the tier is off or fails now:
        a failure turns it off (a read failure both sides) with one warning."""
        if side in self.off:  # a read failure turns off both sides
            return None
        try:
            return fn(*args)
        except EntryMismatch:
            raise
        except Exception as e:  # noqa: BLE001 - the cache must never fail a run
            self.off[side] = self.off["write"] = f"{type(e).__name__}: {' '.join(str(e).split())}"
            mb = self.counts["bytes_written"] / 1e6
            warnings.warn(f"lossnets cache: {'reading' if side == 'read' else 'storing'} entry {name} of "
                          f"{self.root.url} failed ({self.off[side]}); the cache is off for "
                          f"{'reads and writes' if side == 'read' else 'writes'} in this process, "
                          f"{self.counts['stored']} item(s) ({mb:.1f} MB) stored before; computing instead",
                          CacheWarning, stacklevel=2)
            return None

    def entry(self, key: EntryKey) -> Entry | None:
        """The entry of ``key`` if it exists and reads are on."""
        if key.name not in self._entries:
            entry = self.guarded("read", key.name, Entry.open, self.root, key)
            if entry is None:
                return None
            self._entries[key.name] = entry
        return self._entries[key.name] if "read" not in self.off else None

    def forget(self, key: EntryKey) -> None:
        """Close the entry of ``key`` (and let go of its index of ids) after adding its counted uses: a caller that
        goes through many entries one after another holds one index at a time. It opens again when used."""
        self.flush_uses()
        self._entries.pop(key.name, None)

    def contains(self, key: EntryKey, ids: list[str]) -> np.ndarray:
        """Which of ``ids`` the entry of ``key`` holds (done), as a boolean array."""
        entry = self.entry(key)
        rows = self.guarded("read", key.name, entry.lookup, list(ids)) if entry else None
        return rows >= 0 if rows is not None else np.zeros(len(ids), bool)

    def read(self, key: EntryKey, ids: list[str], dest: Result,
             found: np.ndarray) -> tuple[np.ndarray, torch.Tensor | None]:
        """Fill ``dest`` with the stored items among the ``ids`` not yet ``found`` (set in place); returns their
        positions in ``ids`` and their values, in the order read."""
        entry = self.entry(key)
        none = np.zeros(0, np.int64), None
        if entry is None or found.all():
            return none
        ask = np.flatnonzero(~found)
        rows = self.guarded("read", key.name, entry.lookup, [ids[k] for k in ask])
        if rows is None or not (rows >= 0).any():
            return none
        hit = rows >= 0
        order = np.argsort(rows[hit])  # read in row order (chunk locality)
        got = self.guarded("read", key.name, entry.read, rows[hit][order])
        if got is None:
            return none
        feats, ok, why = got
        at = ask[hit][order]
        if not ok.all():
            self._damage(key.name, [ids[k] for k in at[~ok]], why)
            feats, at = feats[torch.from_numpy(ok)], at[ok]
        dest.fill(at, feats, fresh=True)
        found[at] = True
        self.counts["disk_hits"] += len(at)
        self.counts["bytes_read"] += feats.numel() * feats.element_size()
        return at, feats

    def _damage(self, name: str, bad: list[str], why: str) -> None:
        """Items of entry ``name`` that failed their check: stored again when computed; one warning per entry."""
        if name not in self._damaged:
            warnings.warn(f"lossnets cache: {len(bad)} item(s) of entry {name} of {self.root.url} failed their "
                          f"check ({why}); computing them instead (`lossnets cache verify {self.root.url} "
                          f"--repair` drops the bad rows)", CacheWarning, stacklevel=2)
        self._damaged.setdefault(name, set()).update(bad)
        self.counts["damaged"] += len(bad)

    def write(self, key: EntryKey, ids: list[str], values: torch.Tensor, input_shape: tuple[int, ...]) -> None:
        """Store ``values`` (items ``ids``, made from inputs of ``input_shape``) in the entry of ``key``, creating
        it; nothing once writes are off. Damaged copies of those items are replaced."""
        entry = self.entry(key) or self.guarded("write", key.name, Entry.create, self.root, key,
                                                tuple(values.shape[1:]), input_shape, self.codec, self.chunk_items)
        if entry is None:
            return
        self._entries[key.name] = entry
        if list(entry.meta["input_shape"]) != list(input_shape):
            raise ValueError(f"images of shape {input_shape} for entry {entry.name} made "
                             f"from {tuple(entry.meta['input_shape'])}: put the size in `preprocessing`")
        damaged = self._damaged.get(key.name, set())
        written = self.guarded("write", key.name, entry.write, ids, values, damaged)
        if written is not None:
            damaged.difference_update(ids)
            self.counts["stored"] += written
            self.counts["bytes_written"] += written * values[0].numel() * values.element_size()

    def count_uses(self, key: EntryKey, found: np.ndarray) -> None:
        """Count a lookup of ``key``: ``found`` items were hits, the others misses (see :meth:`flush_uses`)."""
        self._uses.setdefault(key.name, Counter()).update(hits=int(found.sum()), misses=int((~found).sum()))

    def flush_uses(self) -> None:
        """Add the counted hits and misses to the entries' ``uses.json`` (shown by `lossnets cache ls`)."""
        for name, c in self._uses.items():
            if name in self._entries and (c["hits"] or c["misses"]):
                self.guarded("write", name, self._entries[name].record_use, c["hits"], c["misses"])
                c.clear()
        self.uses_flushed = time.monotonic()

    def stats(self, own: Counter) -> dict:
        """The counters of a cache object: its ``own`` (hot_hits, computed) and this tier's, in ``COUNTERS`` order."""
        return {k: own[k] + self.counts[k] for k in COUNTERS}
