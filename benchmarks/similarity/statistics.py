"""Per-channel LPIPS statistics of every image pair of a BAPPS set, per tap of one loss network.

m[pair, c] = mean over (h, w) of (f0_hat - f1_hat)^2 at a tap (the fused kernel's per-channel form) is
all that any channel-weighted distance needs: the baseline is ``m.sum(1)``, LPIPS is ``m @ w``, and a tap
set sums its taps (a mean ensemble averages them). So the backbone runs once per loss network and image (a
triplet's reference once for both of its pairs, each distinct image once per block of pairs), and scoring with
other weights, or training them, is a matrix product. With a :class:`~lossnets.cache.StatisticsStore` the
statistics are kept on disk (C floats per pair and tap, against C*H*W features) and a rerun never builds the
network.

Memory: a tap's statistics take pairs x channels x 4 bytes. Through a store they never sit in memory together:
each block of pairs is written as it is computed (all taps from one forward pass), and scoring reads one tap at
a time, in chunks, and drops it (a tap's baseline per-pair sums, P float64, are kept). Without a store, statistics
of up to MEMORY_BYTES in all are held in memory (resnet50's four stage taps over BAPPS val: 1.3 GB); more go
through a temporary store (a folder under the system's temp directory, removed with the statistics), so that peak
memory stays near one tap's share whatever the taps.
"""
from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .bapps import BAPPS, load_bapps, select_subsets

STATISTIC = "lpips-channel-m"  # what the statistics store holds (part of its entries' key)
CACHE_DATASET = "bapps"  # item ids are content digests of the decoded images, so one name serves every subset
CACHE_PREPROCESSING = {"size": 64, "resize": "PIL bilinear", "dtype": "uint8"}  # how the images were made
MEMORY_BYTES = 2 << 30  # without a store, statistics up to this size in all are held in memory; more: a temporary store
MEMORY_TAPS = 4  # the same for taps of unknown channels (ad-hoc module paths): this many are held in memory
ROWS = 2048  # pairs turned into float64 at a time when scoring a tap


class StoredTaps(Mapping):
    """``{layer: (P, C)}`` of a filled StatisticsStore, each tap read from it when asked for (in chunks) and
    not kept: holding one tap costs that tap's share only. ``keep``: an object the store needs alive (a
    temporary folder)."""

    def __init__(self, store, net, ids: list[str], compute, batch_size: int, keep=None):
        self.store, self.net, self.ids, self.compute, self.batch_size, self.keep = \
            store, net, ids, compute, batch_size, keep

    def __getitem__(self, layer: str) -> torch.Tensor:
        if layer not in self.net.layers:
            raise KeyError(layer)
        return self.store.read(self.net, CACHE_DATASET, self.ids, layer, self.compute,
                               preprocessing=CACHE_PREPROCESSING, block=self.batch_size)

    def __iter__(self):
        return iter(self.net.layers)

    def __len__(self) -> int:
        return len(self.net.layers)


@dataclass
class PairStatistics:
    """``m[layer]``: (P, C) float32 statistics of the P distinct pairs (a dict, or :class:`StoredTaps` read on
    each use); ``slots[subset][name]``: the pair of each item, for ``name`` "d0"/"d1" (2AFC: ref to p0/p1) or
    "d" (JND: p0 to p1)."""
    data: BAPPS
    m: Mapping[str, torch.Tensor]
    slots: dict[str, dict[str, np.ndarray]]
    pairs: int
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # each tap's baseline per-pair distances, once

    def per_tap(self, layer: str, w=None) -> torch.Tensor:
        """(P,) float64 distances at one tap: ``m @ w``, or ``m.sum(1)`` for ``w`` None (the baseline, kept); the
        tap's statistics are dropped on return."""
        if w is None and layer in self.sums:
            return self.sums[layer]
        m = self.m[layer]
        w = None if w is None else torch.as_tensor(w).double().cpu()
        d = torch.cat([c.double().sum(1) if w is None else c.double() @ w for c in m.split(ROWS)]) if len(m) else \
            torch.zeros(self.pairs, dtype=torch.float64)
        if w is None:
            self.sums[layer] = d
        return d

    def per_pair(self, taps, weights=None) -> torch.Tensor:
        """(P,) float64 distances of ``taps`` (a TapSet: its sum or mean; or layer names: their sum), each tap's
        ``m @ w`` (``weights``: a (C,) tensor per tap in order, or None for all ones: the baseline)."""
        from lossnets.engine.tap_sets import TapSet
        s = taps if isinstance(taps, TapSet) else TapSet("+".join(taps), tuple(taps))
        ws = (None,) * len(s.layers) if weights is None else weights
        return s.combine(self.per_tap(layer, w) for layer, w in zip(s.layers, ws))

    def distances(self, taps, weights=None) -> dict[str, dict[str, np.ndarray]]:
        """``{subset: {"d0","d1"} or {"d"}: (n,) float64}`` of ``taps`` (see :meth:`per_pair`) with ``weights``."""
        d = self.per_pair(taps, weights).numpy()
        return {sub: {name: d[idx] for name, idx in slot.items()} for sub, slot in self.slots.items()}


def _pairs(data: BAPPS, names: list[str]):
    """Distinct pairs (image indices a, b; ids) in item order, and each item's pair per subset and name."""
    from lossnets.cache import pair_id
    position: dict[str, int] = {}
    a, b, slots = [], [], {}
    for name in names:
        sub = data.subsets[name]
        kinds = {"d0": ("ref", "p0"), "d1": ("ref", "p1")} if sub.kind == "2afc" else {"d": ("p0", "p1")}
        slot = {k: np.zeros(len(sub), np.int64) for k in kinds}
        for i in range(len(sub)):  # an item's pairs side by side: a triplet's reference is computed once
            for k, (x, y) in kinds.items():
                ia, ib = int(sub.index[x][i]), int(sub.index[y][i])
                pid = pair_id(data.keys[ia], data.keys[ib])
                if pid not in position:
                    position[pid] = len(a)
                    a.append(ia)
                    b.append(ib)
                slot[k][i] = position[pid]
        slots[name] = slot
    return np.asarray(a, np.int64), np.asarray(b, np.int64), list(position), slots


def pair_statistics(net, data: BAPPS, *, subsets=None, store=None, batch_size: int = 64,
                    progress: bool = True) -> PairStatistics:
    """The statistics of every pair of the (chosen) subsets of ``data`` at every tap of ``net``.

    ``store``: a StatisticsStore (filled here, each tap then read from it when used), or None: computed in memory
    up to MEMORY_BYTES (see :func:`fits_in_memory`), through a temporary store beyond. Pairs go ``batch_size`` at a time, each
    distinct image of them through the network once."""
    from lossnets.kernels import perceptual_distance
    names = select_subsets(list(data.subsets), subsets)
    a, b, ids, slots = _pairs(data, names)

    def compute(at: np.ndarray) -> dict[str, torch.Tensor]:
        uniq, inv = np.unique(np.concatenate([a[at], b[at]]), return_inverse=True)
        feats = net.extract(data.images[torch.from_numpy(uniq)], batch_size=batch_size, out_device=net.device)
        out = {}
        for layer in net.layers:
            f = feats[layer]
            ia, ib = (torch.from_numpy(i).to(f.device) for i in (inv[:len(at)], inv[len(at):]))
            out[layer] = perceptual_distance(f[ia], f[ib], per_channel=True).float().cpu()
        return out

    keep = None
    if store is None and not fits_in_memory(net, len(ids)):
        keep = tempfile.TemporaryDirectory(prefix="lossnets-statistics-")  # removed when the statistics go
        from lossnets.cache import StatisticsStore
        store = StatisticsStore(keep.name, statistic=STATISTIC, codec="none", progress=progress)  # read back soon
    if store is not None:
        store.fill(net, CACHE_DATASET, ids, compute, preprocessing=CACHE_PREPROCESSING, block=batch_size,
                   progress=progress)
        return PairStatistics(data, StoredTaps(store, net, ids, compute, batch_size, keep), slots, len(ids))
    blocks = []
    for start in tqdm(range(0, len(ids), batch_size), desc=f"statistics {net.arch.name}", unit="block",
                      leave=False, disable=not progress):
        blocks.append(compute(np.arange(start, min(start + batch_size, len(ids)))))
    m = {layer: torch.cat([blk[layer] for blk in blocks]) if blocks else torch.zeros(0, 0) for layer in net.layers}
    return PairStatistics(data, m, slots, len(ids))


def fits_in_memory(net, pairs: int) -> bool:
    """Whether the statistics of ``pairs`` pairs at every tap of ``net`` (pairs x channels x 4 bytes per tap) take at
    most MEMORY_BYTES; for taps of unknown channels, whether there are at most MEMORY_TAPS."""
    channels = [t.channels for t in net.taps]
    if None in channels:
        return len(channels) <= MEMORY_TAPS
    return pairs * sum(channels) * 4 <= MEMORY_BYTES


def open_store(cache, progress: bool = True):
    """The statistics store on ``cache``: a URL, a FeatureCache (its root) or a StatisticsStore; None for None."""
    from lossnets.cache import FeatureCache, StatisticsStore
    if cache is None or isinstance(cache, StatisticsStore):
        return cache
    url = cache.root.url if isinstance(cache, FeatureCache) else str(cache)
    return StatisticsStore(url, statistic=STATISTIC, progress=progress)


def statistics(net, data, *, subsets=None, cache=None, batch_size: int = 64, progress: bool = True) -> PairStatistics:
    """The per-channel statistics of every pair of ``data`` (a BAPPS or a folder) at every tap of ``net``, through
    the statistics store on ``cache`` (see :func:`open_store`) when one is given."""
    data = data if isinstance(data, BAPPS) else load_bapps(data, subsets, progress=progress)
    return pair_statistics(net, data, subsets=subsets, store=open_store(cache, progress), batch_size=batch_size,
                           progress=progress)
