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
DTYPE = "fp32"  # statistics are stored as computed
PAIR_SHAPE = (2,)  # an entry's "input shape": each item is made from a pair of items


def pair_id(a: str, b: str) -> str:
    """The id of the (unordered) pair of items ``a`` and ``b``: the statistics are symmetric."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


class StatisticsStore:
    """Per-pair, per-tap statistic vectors at ``url`` (a directory or fsspec URL), fp32 on disk.

    ``get_or_compute(net, dataset, pair_ids, compute, ...)`` returns ``{layer: (P, C)}``; only pairs
    not stored are computed, by ``compute(positions) -> {layer: (n, C)}`` in blocks. ``codec`` and ``chunk_items``
    apply to entries this store creates.
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

    def get_or_compute(self, net, dataset: str, pair_ids: Sequence[str],
                       compute: Callable[[np.ndarray], dict[str, torch.Tensor]], preprocessing="",
                       block: int = 64, progress: bool | None = None) -> dict[str, torch.Tensor]:
        """``{layer: (P, C)}`` float32 statistics of ``pair_ids`` in order, on the CPU; missing pairs are
        computed ``block`` at a time by ``compute`` (given their positions in ``pair_ids``) and stored."""
        progress = self.progress if progress is None else progress
        ids = [str(i) for i in pair_ids]
        if len(set(ids)) != len(ids):
            raise ValueError("pair_ids repeat a pair")
        keys = self.keys(net, dataset, preprocessing)
        out = {layer: Result(len(ids)) for layer in net.layers}
        missing = np.zeros(len(ids), bool)
        for layer in net.layers:
            found = np.zeros(len(ids), bool)
            self.tier.read(keys[layer], ids, out[layer], found)
            missing |= ~found
            self.tier.count_uses(keys[layer], found)
        todo = np.flatnonzero(missing)
        bar = tqdm(total=len(todo), desc=f"statistics {net.arch.name}", unit="pair", leave=False,
                   disable=not progress or not len(todo))
        pending: list[tuple[np.ndarray, dict[str, torch.Tensor]]] = []
        for start in range(0, len(todo), block):
            at = todo[start:start + block]
            got = compute(at)
            pending.append((at, {layer: got[layer].detach().float().cpu() for layer in net.layers}))
            bar.update(len(at))
            if sum(len(a) for a, _ in pending) >= STORE_EVERY or start + block >= len(todo):
                self._commit(keys, ids, pending, out)
                pending = []
        bar.close()
        self.counts["computed"] += len(todo)
        self.flush_uses()
        return {layer: r.tensor if r.tensor is not None else torch.empty(0) for layer, r in out.items()}

    def _commit(self, keys, ids, pending, out) -> None:
        """Store the computed blocks (one write per tap) and put them in the result."""
        at = np.concatenate([a for a, _ in pending])
        for layer, result in out.items():
            values = torch.cat([v[layer] for _, v in pending])
            self.tier.write(keys[layer], [ids[k] for k in at], values, PAIR_SHAPE)
            result.fill(at, values, fresh=True)

    def flush_uses(self) -> None:
        """Add this store's hits and misses to the entries' ``uses.json`` (shown by `lossnets cache ls`)."""
        self.tier.flush_uses()

    def stats(self) -> dict:
        """Counters of this store: disk_hits, computed, stored, bytes read/written, damaged (hot_hits: always 0)."""
        return self.tier.stats(self.counts)
