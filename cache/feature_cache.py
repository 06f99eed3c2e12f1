"""FeatureCache: target-side features computed once per loss network, reused by every benchmark."""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .hot import HotTier
from .keys import EntryKey, entry_keys, storage_dtype
from .policy import FLOPS_PER_BYTE_THRESHOLD, should_cache
from .store import STORAGE, Entry, Root, cast_checked

USES_FLUSH_S = 10.0


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
        self.hot = HotTier(hot_bytes, hot_device or "cpu", pin) if hot_bytes else None
        self._hot_device_auto = hot_device is None
        self.policy, self.dtype, self.codec, self.chunk_items = cache_policy, dtype, codec, chunk_items
        self.batch_size, self.threshold, self.progress = batch_size, threshold, progress
        self._entries: dict[str, Entry] = {}
        self.counts = Counter()
        self._uses: dict[str, Counter] = {}  # hits/misses per entry not yet added to its uses.json
        self._uses_flushed = time.monotonic()

    def keys(self, net, dataset: str, preprocessing="") -> dict[str, EntryKey]:
        """The entry key of each of ``net``'s taps (see :mod:`.keys`)."""
        return entry_keys(net, dataset, preprocessing, self.dtype)

    def _entry(self, key: EntryKey) -> Entry | None:
        if key.name not in self._entries:
            entry = Entry.open(self.root, key)
            if entry is None:
                return None
            self._entries[key.name] = entry
        return self._entries[key.name]

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
            out[layer] = entry.lookup(list(item_ids)) >= 0 if entry else np.zeros(len(item_ids), bool)
        return out

    def get_or_compute(self, net, dataset: str, item_ids: Sequence[str],
                       load_images: Callable[[list[str]], torch.Tensor], preprocessing="") -> dict[str, torch.Tensor]:
        """``{layer: (N, C, H, W)}`` features of ``item_ids`` in order; only missing items are computed.

        ``load_images(ids)`` returns uint8 (n, 3, H, W) images of those ids. ``preprocessing`` (a
        string or a JSON-able dict, e.g. ``{"size": 64, "resize": "bilinear"}``) must describe how
        those images were made: it is part of the key, with the net's normalisation and autocast.
        Taps the policy does not store are recomputed for every item, by the network cut at those taps
        (``net.sub``) where the stored taps are found.
        """
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
            self._compute(net, keys, stored, todo, load_images, out, position)
        unstored = [layer for layer in net.layers if layer not in stored]
        rest = [ids[k] for k in np.flatnonzero(~missing)] if unstored else []
        if rest:  # the other items lack only taps that are not stored: the prefix up to those is enough
            self._compute(net.sub(unstored), keys, [], rest, load_images, out, position)
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
                self._entries[name].record_use(c["hits"], c["misses"])
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
        rows = entry.lookup([ids[k] for k in ask])
        hit = rows >= 0
        if hit.any():
            order = np.argsort(rows[hit])  # read in row order (chunk locality)
            feats, at = entry.read(rows[hit][order]), ask[hit][order]
            dest.fill(at, feats, fresh=True)
            found[at] = True
            self._hot_put(key.name, [ids[k] for k in at], feats, len(ids))
            self.counts["disk_hits"] += int(hit.sum())
            self.counts["bytes_read"] += feats.numel() * feats.element_size()
        return found

    def _compute(self, net, keys, stored, todo, load_images, out, position) -> None:
        """Run ``net`` over ``todo`` in batches; store the taps in ``stored``, fill ``out``."""
        step = max(self.batch_size, self.chunk_items)
        bar = tqdm(total=len(todo), desc=f"features {net.arch.name}", unit="img",
                   disable=not self.progress or len(todo) < 2 * step, leave=False)
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
                    entry = self._entry(keys[layer]) or Entry.create(
                        self.root, keys[layer], tuple(f.shape[1:]), tuple(images.shape[1:]), self.codec,
                        self.chunk_items)
                    self._entries[keys[layer].name] = entry
                    if list(entry.meta["input_shape"]) != list(images.shape[1:]):
                        raise ValueError(f"images of shape {tuple(images.shape[1:])} for entry {entry.name} made "
                                         f"from {tuple(entry.meta['input_shape'])}: put the size in `preprocessing`")
                    written = entry.write(batch, f)
                    self.counts["stored"] += written
                    self.counts["bytes_written"] += written * f[0].numel() * f.element_size()
                out[layer].fill(np.array([position[i] for i in batch]), f, fresh=True)
                if layer in stored:
                    self._hot_put(keys[layer].name, batch, f, len(position))
            self.counts["computed"] += len(batch)
            bar.update(len(batch))
        bar.close()

    def stats(self) -> dict:
        """Counters of this cache object: hot_hits, disk_hits, computed, stored, bytes read/written, hot tier size."""
        hot = {"hot_items": len(self.hot), "hot_bytes": self.hot.bytes} if self.hot is not None else {}
        return {**{k: self.counts[k] for k in ("hot_hits", "disk_hits", "computed", "stored", "bytes_read",
                                               "bytes_written")}, **hot}
