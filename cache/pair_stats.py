"""StatisticsStore: per-pair statistics of a loss network beside its features, in the same root.

A pair statistic is one float32 vector per tap and pair of items: the LPIPS per-channel statistics
m_c = mean over (h, w) of (f0_hat - f1_hat)^2 (C floats, against C*H*W features), which is all that
scoring with any channel weights, or training them, needs. Entries are the feature cache's (the same
:class:`~.entry_tier.EntryTier`: crash safety, crc32 checks, `lossnets cache ls|verify|rm`), under the dataset
name ``<dataset>-pairs`` and keyed by the statistic and the features' preprocessing besides the loss network.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .entry_tier import EntryTier, Result
from .keys import EntryKey, canonical, entry_keys

STORE_EVERY = 4096  # pairs computed between two writes: a kill loses at most these
STORE_BYTES = 64 * 2**20  # or, once a chunk's worth of pairs is pending, fewer: their statistics (all taps) hold more
READ_EVERY = 4096  # pairs read at a time: a tap's read holds its (P, C) result and one such chunk
DTYPE = "fp32"  # statistics are stored as computed
PAIR_SHAPE = (2,)  # an entry's "input shape": each item is made from a pair of items


def _unique(pair_ids) -> list[str]:
    ids = [str(i) for i in pair_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("pair_ids repeat a pair")
    return ids


def pair_id(a: str, b: str) -> str:
    """The id of the (unordered) pair of items ``a`` and ``b``: the statistics are symmetric."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


class StatisticsStore:
    """Per-pair, per-tap statistic vectors at ``url`` (a directory or fsspec URL), fp32 on disk.

    ``fill(net, dataset, pair_ids, compute, ...)`` computes and stores the pairs some tap lacks (``compute(positions)
    -> {layer: (n, C)}``, all taps in one call), keeping none of them; ``read(...)`` then gives one tap's ``(P, C)``,
    read in chunks, so that many taps never sit in memory at once. ``codec`` and ``chunk_items`` apply to entries
    this store creates.
    """

    def __init__(self, url, *, statistic: str, chunk_items: int = 1024, codec: str = "zstd1", progress: bool = True):
        self.tier = EntryTier(url, codec=codec, chunk_items=chunk_items)
        self.root = self.tier.root
        self.statistic, self.progress = statistic, progress
        self.counts = Counter()  # computed (the tier counts the rest)

    def keys(self, net, dataset: str, preprocessing="") -> dict[str, EntryKey]:
        """The entry key of each of ``net``'s taps: the statistic and the features' ``preprocessing``."""
        described = {"statistic": self.statistic, "features": canonical(preprocessing)}
        return entry_keys(net, f"{dataset}-pairs", described, DTYPE)

    def fill(self, net, dataset: str, pair_ids: Sequence[str], compute: Callable[[np.ndarray], dict[str, torch.Tensor]],
             preprocessing="", block: int = 64, progress: bool | None = None) -> None:
        """Store every tap's statistics of the ``pair_ids`` that any tap lacks: ``compute`` (given their positions in
        ``pair_ids``) runs ``block`` pairs at a time, and every STORE_EVERY pairs (or STORE_BYTES of statistics, but
        not less than a chunk of pairs) are written and dropped. The entries' uses count each pair found (hit) or not
        (miss). Each entry is closed after use (its index of ids goes)."""
        progress = self.progress if progress is None else progress
        ids = _unique(pair_ids)
        keys = self.keys(net, dataset, preprocessing)
        missing = np.zeros(len(ids), bool)
        for layer in net.layers:
            found = self.tier.contains(keys[layer], ids)
            missing |= ~found
            self.tier.count_uses(keys[layer], found)
            self.tier.forget(keys[layer])  # one entry's index of ids in memory at a time
        todo = np.flatnonzero(missing)
        bar = tqdm(total=len(todo), desc=f"statistics {net.arch.name}", unit="pair", leave=False,
                   disable=not progress or not len(todo))
        pending: list[tuple[np.ndarray, dict[str, torch.Tensor]]] = []
        for start in range(0, len(todo), block):
            at = todo[start:start + block]
            got = compute(at)
            pending.append((at, {layer: got[layer].detach().float().cpu() for layer in net.layers}))
            bar.update(len(at))
            pairs = sum(len(a) for a, _ in pending)
            nbytes = sum(v.nbytes for _, taps in pending for v in taps.values())
            if (pairs >= STORE_EVERY or nbytes >= STORE_BYTES and pairs >= self.tier.chunk_items
                    or start + block >= len(todo)):
                at = np.concatenate([a for a, _ in pending])
                for layer in net.layers:
                    self.tier.write(keys[layer], [ids[k] for k in at], torch.cat([v[layer] for _, v in pending]),
                                    PAIR_SHAPE)
                pending = []
        bar.close()
        self.counts["computed"] += len(todo)
        for layer in net.layers:
            self.tier.forget(keys[layer])

    def read(self, net, dataset: str, pair_ids: Sequence[str], layer: str,
             compute: Callable[[np.ndarray], dict[str, torch.Tensor]] | None = None, preprocessing="",
             block: int = 64, chunk: int = READ_EVERY) -> torch.Tensor:
        """``(P, C)`` float32 statistics of ``pair_ids`` at one tap of ``net``, in order, on the CPU, read ``chunk``
        pairs at a time. Pairs the store cannot give (damaged, or a store that failed since :meth:`fill`) are
        computed by ``compute`` ``block`` at a time (only this tap kept) and stored again; without it they are an
        error."""
        ids = _unique(pair_ids)
        key = self.keys(net, dataset, preprocessing)[layer]
        out, found = Result(len(ids)), np.zeros(len(ids), bool)
        for start in range(0, len(ids), chunk):
            part = np.ones(len(ids), bool)
            part[start:start + chunk] = False
            self.tier.read(key, ids, out, part)
            found[start:start + chunk] = part[start:start + chunk]
        todo = np.flatnonzero(~found)
        if len(todo) and compute is None:
            raise RuntimeError(f"the statistics store {self.root.url} lacks {len(todo)} pair(s) of tap {layer} of "
                               f"{net.arch.name} (fill it first)")
        for start in range(0, len(todo), block):
            at = todo[start:start + block]
            values = compute(at)[layer].detach().float().cpu()
            self.tier.write(key, [ids[k] for k in at], values, PAIR_SHAPE)
            out.fill(at, values, fresh=True)
        self.counts["computed"] += len(todo)
        self.tier.forget(key)
        return out.tensor if out.tensor is not None else torch.empty(0)

    def flush_uses(self) -> None:
        """Add this store's hits and misses to the entries' ``uses.json`` (shown by `lossnets cache ls`)."""
        self.tier.flush_uses()

    def stats(self) -> dict:
        """Counters of this store: disk_hits, computed, stored, bytes read/written, damaged (hot_hits: always 0)."""
        return self.tier.stats(self.counts)
