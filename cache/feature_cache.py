"""FeatureCache: target-side features computed once per loss network, reused by every benchmark.

The cache never fails or falsifies a run. An item that fails its crc32 check is a miss, computed and
stored again. A store that cannot be written (full disk, read-only or removed folder, an object store
that refuses or times out) ends writing for this object; one that cannot be read ends reading too.
Each of these gives one :class:`CacheWarning` line, and the run goes on computing (see :mod:`.entry_tier`,
which the statistics store shares).
"""
from __future__ import annotations

import os
import time
from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .entry_tier import EntryTier, Result
from .hot import HotTier
from .keys import EntryKey, entry_keys, storage_dtype
from .policy import FLOPS_PER_BYTE_THRESHOLD, should_cache
from .store import STORAGE, cast_checked

USES_FLUSH_S = 10.0


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
        self.tier = EntryTier(url, codec=codec, chunk_items=chunk_items)
        self.root = self.tier.root
        self.hot = HotTier(hot_bytes, hot_device or "cpu", pin) if hot_bytes else None
        self._hot_device_auto = hot_device is None
        self.policy, self.dtype, self.chunk_items = cache_policy, dtype, chunk_items
        self.batch_size, self.threshold, self.progress = batch_size, threshold, progress
        self.counts = Counter()  # hot_hits, computed (the zarr tier counts the rest)

    def keys(self, net, dataset: str, preprocessing="") -> dict[str, EntryKey]:
        """The entry key of each of ``net``'s taps (see :mod:`.keys`)."""
        return entry_keys(net, dataset, preprocessing, self.dtype)

    def stored_layers(self, net, size: int = 224) -> list[str]:
        """The taps of ``net`` that this cache's policy stores for ``size`` x ``size`` images (the rest are
        computed on every call, by the shortest prefix that reaches them)."""
        itemsize = STORAGE[storage_dtype(net, self.dtype)][1].itemsize
        return [t.layer for t in net.taps
                if should_cache(self.policy, net.arch.name, t.module, t.layer, int(size), self.threshold, itemsize)]

    def contains(self, net, dataset: str, item_ids: Sequence[str], preprocessing="") -> dict[str, np.ndarray]:
        """Per tap, a boolean array: which items are stored (done) in the zarr tier."""
        return {layer: self.tier.contains(key, list(item_ids))
                for layer, key in self.keys(net, dataset, preprocessing).items()}

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
        out = {layer: Result(len(ids)) for layer in net.layers}
        missing = np.zeros(len(ids), bool)
        disk_hits = self.tier.counts["disk_hits"]
        for layer in stored:
            found = self._lookup(keys[layer], ids, out[layer])
            missing |= ~found
            self.tier.count_uses(keys[layer], found)
        position = {i: k for k, i in enumerate(ids)}
        todo = [ids[k] for k in np.flatnonzero(missing)]
        if todo:  # every tap in one pass, storing the stored ones
            self._compute(net, keys, stored, todo, load_images, out, position, progress)
        unstored = [layer for layer in net.layers if layer not in stored]
        rest = [ids[k] for k in np.flatnonzero(~missing)] if unstored else []
        if rest:  # the other items lack only taps that are not stored: the prefix up to those is enough
            self._compute(net.sub(unstored), keys, [], rest, load_images, out, position, progress)
        due = time.monotonic() - self.tier.uses_flushed > USES_FLUSH_S
        if todo or self.tier.counts["disk_hits"] > disk_hits or due:
            self.flush_uses()
        if not ids:
            return {layer: torch.empty(0) for layer in net.layers}
        return {layer: r.tensor.to(net.device) for layer, r in out.items()}

    def flush_uses(self) -> None:
        """Add the hit/miss counts of this object to the entries' ``uses.json`` (shown by `lossnets cache ls`).

        Done after every call that computed or read from disk; calls served by the hot tier alone flush
        at most every USES_FLUSH_S seconds, so a training loop pays no write per step."""
        self.tier.flush_uses()

    def _hot_put(self, name: str, ids: list[str], feats: torch.Tensor, n_call: int) -> None:
        """Keep ``feats`` (items ``ids``) in the hot tier, unless the whole call (``n_call`` items) would
        not fit it: an LRU scan larger than the LRU only evicts what it puts."""
        if self.hot is None or not len(feats) or n_call * feats[0].numel() * feats.element_size() > self.hot.max_bytes:
            return
        for t, i in zip(feats, ids):
            self.hot.put((name, i), t)

    def _lookup(self, key: EntryKey, ids: list[str], dest: Result) -> np.ndarray:
        """Fill ``dest`` with what the hot and zarr tiers hold; returns the found mask."""
        found = np.zeros(len(ids), bool)
        hot = [self.hot.get((key.name, i)) for i in ids] if self.hot is not None else []
        found[[k for k, t in enumerate(hot) if t is not None]] = True
        if found.any():
            dest.fill(np.flatnonzero(found), torch.stack([t for t in hot if t is not None]), fresh=True)
        self.counts["hot_hits"] += int(found.sum())
        at, feats = self.tier.read(key, ids, dest, found)
        if feats is not None:
            self._hot_put(key.name, [ids[k] for k in at], feats, len(ids))
        return found

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
                    self.tier.write(keys[layer], batch, f, tuple(images.shape[1:]))
                out[layer].fill(np.array([position[i] for i in batch]), f, fresh=True)
                if layer in stored:
                    self._hot_put(keys[layer].name, batch, f, len(position))
            self.counts["computed"] += len(batch)
            bar.update(len(batch))
        bar.close()

    def stats(self) -> dict:
        """Counters of this cache object: hot_hits, disk_hits, computed, stored, bytes read/written, damaged
        (items that failed their check), hot tier size."""
        hot = {"hot_items": len(self.hot), "hot_bytes": self.hot.bytes} if self.hot is not None else {}
        return {**self.tier.stats(self.counts), **hot}
