"""Per-channel LPIPS statistics of every image pair of a BAPPS set, per tap of one loss network.

m[pair, c] = mean over (h, w) of (f0_hat - f1_hat)^2 at a tap (the fused kernel's per-channel form) is
all that any channel-weighted distance needs: the baseline is ``m.sum(1)``, LPIPS is ``m @ w``, and a tap
set sums its taps. So the backbone runs once per loss network and image (a triplet's reference once for
both of its pairs, each distinct image once per block of pairs), and scoring with other weights, or
training them, is a matrix product. With a :class:`~lossnets.cache.StatisticsStore` the statistics are
kept on disk (C floats per pair and tap, against C*H*W features) and a rerun never builds the network.
Memory: pairs x channels x 4 bytes per tap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .bapps import BAPPS, load_bapps, select_subsets

STATISTIC = "lpips-channel-m"  # what the statistics store holds (part of its entries' key)
CACHE_DATASET = "bapps"  # item ids are content digests of the decoded images, so one name serves every subset
CACHE_PREPROCESSING = {"size": 64, "resize": "PIL bilinear", "dtype": "uint8"}  # how the images were made


@dataclass
class PairStatistics:
    """``m[layer]``: (P, C) float32 statistics of the P distinct pairs; ``slots[subset][name]``: the pair of
    each item, for ``name`` "d0"/"d1" (2AFC: ref to p0/p1) or "d" (JND: p0 to p1)."""
    data: BAPPS
    m: dict[str, torch.Tensor]
    slots: dict[str, dict[str, np.ndarray]]

    def per_pair(self, layers, weights=None) -> torch.Tensor:
        """(P,) float64 distances: the sum over ``layers`` of ``m @ w`` (``weights``: a (C,) tensor per layer in
        order, or None for all ones: the baseline)."""
        total = torch.zeros(len(next(iter(self.m.values()))), dtype=torch.float64)
        for k, layer in enumerate(layers):
            m = self.m[layer].double()
            w = None if weights is None else weights[k]
            total += m.sum(1) if w is None else m @ torch.as_tensor(w).double().cpu()
        return total

    def distances(self, layers, weights=None) -> dict[str, dict[str, np.ndarray]]:
        """``{subset: {"d0","d1"} or {"d"}: (n,) float64}`` of the tap set ``layers`` with ``weights``."""
        d = self.per_pair(layers, weights).numpy()
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

    ``store``: a StatisticsStore (or None: computed in memory). Pairs go ``batch_size`` at a time, each distinct
    image of them through the network once."""
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

    if store is not None:
        m = store.get_or_compute(net, CACHE_DATASET, ids, compute, preprocessing=CACHE_PREPROCESSING,
                                 block=batch_size, progress=progress)
        return PairStatistics(data, m, slots)
    blocks = []
    for start in tqdm(range(0, len(ids), batch_size), desc=f"statistics {net.arch.name}", unit="block",
                      leave=False, disable=not progress):
        blocks.append(compute(np.arange(start, min(start + batch_size, len(ids)))))
    m = {layer: torch.cat([blk[layer] for blk in blocks]) if blocks else torch.zeros(0, 0) for layer in net.layers}
    return PairStatistics(data, m, slots)


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
