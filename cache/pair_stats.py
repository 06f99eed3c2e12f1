"""StatisticsStore: per-pair statistics of a loss network beside its features, in the same root.

A pair statistic is one float32 vector per tap and pair of items: the LPIPS per-channel statistics
m_c = mean over (h, w) of (f0_hat - f1_hat)^2 (C floats, against C*H*W features), which is all that
scoring with any channel weights, or training them, needs. Entries are the feature cache's (same
crash safety, crc32 checks, `lossnets cache ls|verify|rm`), under the dataset name ``<dataset>-pairs``
and keyed by the statistic and the features' preprocessing besides the loss network.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .feature_cache import FeatureCache, _Result
from .keys import EntryKey, canonical, entry_keys

STORE_EVERY = 4096  # pairs computed between two writes: a kill loses at most these


def pair_id(a: str, b: str) -> str:
    """The id of the (unordered) pair of items ``a`` and ``b``: the statistics are symmetric."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


class StatisticsStore(FeatureCache):
    """Per-pair, per-tap statistic vectors at ``url`` (a directory or fsspec URL), fp32 on disk.

    ``get_or_compute(net, dataset, pair_ids, compute, ...)`` returns ``{layer: (P, C)}``; only pairs
    not stored are computed, by ``compute(positions) -> {layer: (n, C)}`` in blocks.
    """

    def __init__(self, url, *, statistic: str, chunk_items: int = 1024, **options):
        super().__init__(url, hot_bytes=0, cache_policy="always", dtype="fp32", chunk_items=chunk_items, **options)
        self.statistic = statistic

    def keys(self, net, dataset: str, preprocessing="") -> dict[str, EntryKey]:
        described = {"statistic": self.statistic, "features": canonical(preprocessing)}
        return entry_keys(net, f"{dataset}-pairs", described, self.dtype)

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
        out = {layer: _Result(len(ids)) for layer in net.layers}
        missing = np.zeros(len(ids), bool)
        for layer in net.layers:
            found = self._lookup(keys[layer], ids, out[layer])
            missing |= ~found
            self._uses.setdefault(keys[layer].name, Counter()).update(hits=int(found.sum()),
                                                                     misses=int((~found).sum()))
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
            self._store(keys[layer], [ids[k] for k in at], values, (2,))
            result.fill(at, values, fresh=True)
