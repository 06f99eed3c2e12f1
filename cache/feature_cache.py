"""FeatureCache: target-side features computed once per loss network, reused by every benchmark.

The cache never fails or falsifies a run. An item that fails its crc32 check is a miss, computed and
stored again. A store that cannot be written (full disk, read-only or removed folder, an object store
that refuses or times out) ends writing for this object; one that cannot be read ends reading too.
Each of these gives one :class:`CacheWarning` line, and the run goes on computing.
"""
from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .hot import HotTier
from .keys import EntryKey, entry_keys, storage_dtype
from .policy import FLOPS_PER_BYTE_THRESHOLD, should_cache
from .store import STORAGE, Entry, EntryMismatch, Root, cast_checked, codecs

USES_FLUSH_S = 10.0


class CacheWarning(RuntimeWarning):
    """The feature cache met damage or a failing store and computed instead."""


class _Result:
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


def open_cache(cache, **options) -> "FeatureCache | None":
    """A FeatureCache opened with ``options`` on ``cache`` if it is a URL or path; a cache object (or None) as given."""
    if isinstance(cache, (str, os.PathLike)):
        return FeatureCache(str(cache), **options)
    return cache


class FeatureCache:
    """Features of dataset items per tap: a hot in-memory LRU tier over a zarr tier at ``url``.

    ``url``: a directory or any fsspec URL. ``hot_bytes``: size of the hot tier (0 disables it);
    ``hot_device``: where it lives (default: the net's device; pinned host memory if ``pin``).
    ``cache_policy``: "always", "never" or "auto" (store a tap only if its prefix FLOPs per stored
    byte exceed ``threshold``, see :mod:`.policy`). ``dtype``: "fp16", "bf16" or "fp32" on disk (None:
    bf16 for nets under bf16 autocast, else fp16); results are returned in this dtype, hit or miss.
    ``codec`` and ``chunk_items`` apply to entries this cache creates.
    """

    def __init__(self, url, *, hot_bytes: int = 256 << 20, hot_device=None, pin: bool = False,
                 cache_policy: str = "auto", dtype: str | None = None, codec: str = "zstd1",
                 chunk_items: int = 64, batch_size: int = 64, threshold: float = FLOPS_PER_BYTE_THRESHOLD,
                 progress: bool = True):
        self.root = Root(url)
        codecs(codec)  # an unknown codec is the caller's error, not a store fault at the first write
        self.hot = HotTier(hot_bytes, hot_device or "cpu", pin) if hot_bytes else None
        self._hot_device_auto = hot_device is None
        self.policy, self.dtype, self.codec, self.chunk_items = cache_policy, dtype, codec, chunk_items
        self.batch_size, self.threshold, self.progress = batch_size, threshold, progress
        self._entries: dict[str, Entry] = {}
        self.counts = Counter()
        self._uses: dict[str, Counter] = {}  # hits/misses per entry not yet added to its uses.json
        self._uses_flushed = time.monotonic()
        self.off: dict[str, str] = {}  # "read"/"write" -> why that side of the zarr tier is off
        self._damaged: dict[str, set[str]] = {}  # entry -> ids whose stored copy failed its check

    def _safe(self, side: str, name: str, fn, *args):
        """``fn(*args)``, or None once ``side`` ("read" or "write") of the zarr tier is off or fails now:
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

    def keys(self, net, dataset: str, preprocessing="") -> dict[str, EntryKey]:
        """The entry key of each of ``net``'s taps (see :mod:`.keys`)."""
        return entry_keys(net, dataset, preprocessing, self.dtype)

    def _entry(self, key: EntryKey) -> Entry | None:
        if key.name not in self._entries:
            entry = self._safe("read", key.name, Entry.open, self.root, key)
            if entry is None:
                return None
            self._entries[key.name] = entry
        return self._entries[key.name] if "read" not in self.off else None

    def stored_layers(self, net, size: int = 224) -> list[str]:
        """The taps of ``net`` that this cache's policy stores for ``size`` x ``size`` images (the rest are
        computed on every call, by the shortest prefix that reaches them)."""
        itemsize = STORAGE[storage_dtype(net, self.dtype)][1].itemsize
        return [t.layer for t in net.taps
                if should_cache(self.policy, net.arch.name, t.module, t.layer, int(size), self.threshold, itemsize)]

    def contains(self, net, dataset: str, item_ids: Sequence[str], preprocessing="") -> dict[str, np.ndarray]:
        """Per tap, a boolean array: which items are stored (done) in the zarr tier."""
        out = {}
        for layer, key in self.keys(net, dataset, preprocessing).items():
            entry = self._entry(key)
            rows = self._safe("read", key.name, entry.lookup, list(item_ids)) if entry else None
            out[layer] = rows >= 0 if rows is not None else np.zeros(len(item_ids), bool)
        return out

    def get_or_compute(self, net, dataset: str, item_ids: Sequence[str],
                       load_images: Callable[[list[str]], torch.Tensor], preprocessing="",
                       progress: bool | None = None) -> dict[str, torch.Tensor]:
        """``{layer: (N, C, H, W)}`` features of ``item_ids`` in order; only missing items are computed.

        ``load_images(ids)`` returns uint8 (n, 3, H, W) images of those ids. ``preprocessing`` (a
        string or a JSON-able dict, e.g. ``{"size": 64, "resize": "bilinear"}``) must describe how
        those images were made: it is part of the key, with the net's normalisation and autocast.
        Taps the policy does not store are recomputed for every item, by the network cut at those taps
        (``net.sub``) where the stored taps are found. ``progress``: this call's bar (None: the cache's setting).
        """
        progress = self.progress if progress is None else progress
        ids = [str(i) for i in item_ids]
        if len(set(ids)) != len(ids):
            raise ValueError("item_ids repeat an id")
        if self.hot is not None and self._hot_device_auto:
            self.hot.device = net.device
        keys = self.keys(net, dataset, preprocessing)
        size = preprocessing.get("size", 224) if isinstance(preprocessing, dict) else 224
        stored = self.stored_layers(net, size[0] if isinstance(size, (tuple, list)) else size)
        out = {layer: _Result(len(ids)) for layer in net.layers}
        missing = np.zeros(len(ids), bool)
        disk_hits = self.counts["disk_hits"]
        for layer in stored:
            found = self._lookup(keys[layer], ids, out[layer])
            missing |= ~found
            uses = self._uses.setdefault(keys[layer].name, Counter())
            uses.update(hits=int(found.sum()), misses=int((~found).sum()))
        position = {i: k for k, i in enumerate(ids)}
        todo = [ids[k] for k in np.flatnonzero(missing)]
        if todo:  # every tap in one pass, storing the stored ones
            self._compute(net, keys, stored, todo, load_images, out, position, progress)
        unstored = [layer for layer in net.layers if layer not in stored]
        rest = [ids[k] for k in np.flatnonzero(~missing)] if unstored else []
        if rest:  # the other items lack only taps that are not stored: the prefix up to those is enough
            self._compute(net.sub(unstored), keys, [], rest, load_images, out, position, progress)
        if todo or self.counts["disk_hits"] > disk_hits or time.monotonic() - self._uses_flushed > USES_FLUSH_S:
            self.flush_uses()
        if not ids:
            return {layer: torch.empty(0) for layer in net.layers}
        return {layer: r.tensor.to(net.device) for layer, r in out.items()}

    def flush_uses(self) -> None:
        """Add the hit/miss counts of this object to the entries' ``uses.json`` (shown by `lossnets cache ls`).

        Done after every call that computed or read from disk; calls served by the hot tier alone flush
        at most every USES_FLUSH_S seconds, so a training loop pays no write per step."""
        for name, c in self._uses.items():
            if name in self._entries and (c["hits"] or c["misses"]):
                self._safe("write", name, self._entries[name].record_use, c["hits"], c["misses"])
                c.clear()
        self._uses_flushed = time.monotonic()

    def _hot_put(self, name: str, ids: list[str], feats: torch.Tensor, n_call: int) -> None:
        """Keep ``feats`` (items ``ids``) in the hot tier, unless the whole call (``n_call`` items) would
        not fit it: an LRU scan larger than the LRU only evicts what it puts."""
        if self.hot is None or not len(feats) or n_call * feats[0].numel() * feats.element_size() > self.hot.max_bytes:
            return
        for t, i in zip(feats, ids):
            self.hot.put((name, i), t)

    def _lookup(self, key: EntryKey, ids: list[str], dest: _Result) -> np.ndarray:
        """Fill ``dest`` with what the hot and zarr tiers hold; returns the found mask."""
        found = np.zeros(len(ids), bool)
        hot = [self.hot.get((key.name, i)) for i in ids] if self.hot is not None else []
        found[[k for k, t in enumerate(hot) if t is not None]] = True
        if found.any():
            dest.fill(np.flatnonzero(found), torch.stack([t for t in hot if t is not None]), fresh=True)
        self.counts["hot_hits"] += int(found.sum())
        entry = self._entry(key)
        if entry is None or found.all():
            return found
        ask = np.flatnonzero(~found)
        rows = self._safe("read", key.name, entry.lookup, [ids[k] for k in ask])
        if rows is None or not (rows >= 0).any():
            return found
        hit = rows >= 0
        order = np.argsort(rows[hit])  # read in row order (chunk locality)
        got = self._safe("read", key.name, entry.read, rows[hit][order])
        if got is None:
            return found
        feats, ok, why = got
        at = ask[hit][order]
        if not ok.all():
            self._damage(key.name, [ids[k] for k in at[~ok]], why)
            feats, at = feats[torch.from_numpy(ok)], at[ok]
        dest.fill(at, feats, fresh=True)
        found[at] = True
        self._hot_put(key.name, [ids[k] for k in at], feats, len(ids))
        self.counts["disk_hits"] += len(at)
        self.counts["bytes_read"] += feats.numel() * feats.element_size()
        return found

    def _damage(self, name: str, bad: list[str], why: str) -> None:
        """Items of entry ``name`` that failed their check: stored again when computed; one warning per entry."""
        if name not in self._damaged:
            warnings.warn(f"lossnets cache: {len(bad)} item(s) of entry {name} of {self.root.url} failed their "
                          f"check ({why}); computing them instead (`lossnets cache verify {self.root.url} "
                          f"--repair` drops the bad rows)", CacheWarning, stacklevel=2)
        self._damaged.setdefault(name, set()).update(bad)
        self.counts["damaged"] += len(bad)

    def _compute(self, net, keys, stored, todo, load_images, out, position, progress: bool) -> None:
        """Run ``net`` over ``todo`` in batches; store the taps in ``stored``, fill ``out``."""
        step = max(self.batch_size, self.chunk_items)
        bar = tqdm(total=len(todo), desc=f"features {net.arch.name}", unit="img",
                   disable=not progress or len(todo) < 2 * step, leave=False)
        for start in range(0, len(todo), step):
            batch = todo[start:start + step]
            images = load_images(batch)
            if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(batch):
                raise ValueError(f"load_images must return uint8 (n,3,H,W) for n={len(batch)} ids, "
                                 f"got {images.dtype} {tuple(images.shape)}")
            feats = net.extract(images, batch_size=self.batch_size, out_device="cpu")
            for layer, f in feats.items():
                f = cast_checked(f, keys[layer].dtype, f"features of {keys[layer].name}")
                if layer in stored:
                    self._store(keys[layer], batch, f, tuple(images.shape[1:]))
                out[layer].fill(np.array([position[i] for i in batch]), f, fresh=True)
                if layer in stored:
                    self._hot_put(keys[layer].name, batch, f, len(position))
            self.counts["computed"] += len(batch)
            bar.update(len(batch))
        bar.close()

    def _store(self, key: EntryKey, batch: list[str], f: torch.Tensor, input_shape: tuple[int, ...]) -> None:
        """Write ``f`` (items ``batch``) to the entry of ``key``, creating it; nothing once writes are off."""
        entry = self._entry(key) or self._safe("write", key.name, Entry.create, self.root, key, tuple(f.shape[1:]),
                                               input_shape, self.codec, self.chunk_items)
        if entry is None:
            return
        self._entries[key.name] = entry
        if list(entry.meta["input_shape"]) != list(input_shape):
            raise ValueError(f"images of shape {input_shape} for entry {entry.name} made "
                             f"from {tuple(entry.meta['input_shape'])}: put the size in `preprocessing`")
        damaged = self._damaged.get(key.name, set())
        written = self._safe("write", key.name, entry.write, batch, f, damaged)
        if written is not None:
            damaged.difference_update(batch)
            self.counts["stored"] += written
            self.counts["bytes_written"] += written * f[0].numel() * f.element_size()

    def stats(self) -> dict:
        """Counters of this cache object: hot_hits, disk_hits, computed, stored, bytes read/written, damaged
        (items that failed their check), hot tier size."""
        hot = {"hot_items": len(self.hot), "hot_bytes": self.hot.bytes} if self.hot is not None else {}
        return {**{k: self.counts[k] for k in ("hot_hits", "disk_hits", "computed", "stored", "bytes_read",
                                               "bytes_written", "damaged")}, **hot}
