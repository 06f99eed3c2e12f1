"""Benchmark 1, perceptual similarity: BAPPS 2AFC and JND with the baseline deep perceptual distance.

Every requested tap of an architecture comes from one forward pass; each distinct image's features are
computed once per chunk of items (the reference of a triplet serves both of its distances) and go
through the feature cache when one is given, so a rerun with other subsets, other channel weights or
other scoring reads them back. Scoring is exactly the ``lpips`` package's:

* 2AFC = mean of ``[d0<d1](1-g) + [d1<d0]g + 0.5[d0=d1]`` per subset; ``2afc/val`` is the unweighted
  mean of the subsets.
* JND = VOC all-point average precision over the pairs sorted by ascending distance, with ``same`` as
  soft positives, per subset and (``jnd/val``) over the pooled pairs of all JND subsets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .bapps import BAPPS, load_bapps
from ..sweep.results import run_metadata, tidy, with_paper_values, write_csv_atomic

BENCHMARK = "similarity"
CACHE_DATASET = "bapps"  # item ids are content digests of the decoded images, so one name serves every subset
CACHE_PREPROCESSING = {"size": 64, "resize": "PIL bilinear", "dtype": "uint8"}


# ---------------------------------------------------------------------------------------------
# scoring (numpy, float64)

def score_2afc(d0, d1, judge) -> float:
    """2AFC agreement: [d0<d1](1-g) + [d1<d0]g + 0.5[d0=d1], averaged."""
    d0, d1, g = (np.asarray(a, dtype=np.float64) for a in (d0, d1, judge))
    if not (d0.shape == d1.shape == g.shape):
        raise ValueError(f"shapes differ: d0 {d0.shape}, d1 {d1.shape}, judge {g.shape}")
    if d0.size == 0:
        return float("nan")
    return float(np.mean((d0 < d1) * (1.0 - g) + (d1 < d0) * g + (d0 == d1) * 0.5))


def voc_ap(rec, prec) -> float:
    """VOC all-point average precision: area under the precision envelope, summed where recall changes."""
    mrec = np.concatenate(([0.0], np.asarray(rec, dtype=np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(prec, dtype=np.float64), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def jnd_map(d, same) -> float:
    """JND mAP: pairs sorted by ascending distance (stable for ties), ``same`` as soft positives."""
    d, s = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=np.float64)
    if d.shape != s.shape:
        raise ValueError(f"shapes differ: d {d.shape}, same {s.shape}")
    if d.size == 0 or s.sum() == 0:
        return float("nan")
    s = s[np.argsort(d, kind="stable")]
    tp = np.cumsum(s)
    fp = np.cumsum(1.0 - s)
    prec = tp / (tp + fp)
    rec = tp / s.sum()
    return voc_ap(rec, prec)


# ---------------------------------------------------------------------------------------------
# distances

@dataclass
class Distances:
    """Per layer and subset: ``d0``/``d1`` (2AFC, ref to p0/p1) or ``d`` (JND, p0 to p1), float64."""
    data: BAPPS
    values: dict[str, dict[str, dict[str, np.ndarray]]]  # layer -> subset -> {"d0","d1"} or {"d"}


def _perceptual_distance():
    from lossnets.kernels import perceptual_distance  # the fused kernel (CPU: the PyTorch reference)
    return perceptual_distance


def _open_cache(cache, progress: bool = True):
    from lossnets.cache import open_cache
    # fp32 on disk: a cached run gives the same figures as an uncached one. fp16 (the cache's default)
    # flushes the tiny activations of deep taps of random-weight nets (googlenet, efficientnet: ~1e-13)
    # to zero, and the distances then tie.
    return open_cache(cache, dtype="fp32", progress=progress)


def _features(net, data: BAPPS, idx: np.ndarray, cache, batch_size: int, progress: bool) -> dict[str, torch.Tensor]:
    """Features of the images data.images[idx] (idx distinct), every tap of net from one pass."""
    if cache is not None:
        keys = [data.keys[i] for i in idx]
        feats = cache.get_or_compute(net, CACHE_DATASET, keys, data.load_images, preprocessing=CACHE_PREPROCESSING,
                                     progress=progress)
        return {layer: feats[layer] for layer in net.layers}
    return net.extract(data.images[torch.from_numpy(idx)], batch_size=batch_size, out_device=net.device)


def _pairs(subs):
    """Every distance to compute: image indices (a, b), the item each belongs to (for chunking) and
    where its value goes (subset, "d0"/"d1"/"d", count of that array)."""
    a, b, item, slots = [], [], [], []
    at = 0
    for sub in subs:
        pairs = {"d0": ("ref", "p0"), "d1": ("ref", "p1")} if sub.kind == "2afc" else {"d": ("p0", "p1")}
        for name, (x, y) in pairs.items():
            a.append(sub.index[x])
            b.append(sub.index[y])
            item.append(at + np.arange(len(sub)))
            slots.append((sub.name, name, len(sub)))
        at += len(sub)
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    a, b, item = cat(a), cat(b), cat(item)
    order = np.argsort(item, kind="stable")  # the pairs of one item side by side (a triplet's ref once)
    return a, b, item, slots, order


def distances(net, data, *, subsets=None, cache=None, batch_size: int = 64, channel_weights=None,
              progress: bool = True) -> Distances:
    """The baseline distances of every layer of net on every (chosen) subset of data.

    ``channel_weights``: optional ``{layer: (C,) tensor}`` (the LPIPS w; default all ones).
    Items (triplets and pairs, across subsets) are processed in chunks of ``batch_size``; in each chunk
    every distinct image's features are computed (or read from the cache) once -- a triplet's reference
    once for both of its distances -- and each layer's distances come from one kernel call.
    """
    data = data if isinstance(data, BAPPS) else load_bapps(data, subsets, progress=progress)
    cache = _open_cache(cache, progress)
    dist = _perceptual_distance()
    chosen = [s for s in data.subsets.values() if subsets is None or s.name in _names(data, subsets)]
    a, b, item, slots, order = _pairs(chosen)
    n_items = sum(len(s) for s in chosen)
    flat = {layer: np.zeros(len(a), np.float64) for layer in net.layers}
    weights = {layer: None if channel_weights is None or channel_weights.get(layer) is None
               else torch.as_tensor(channel_weights[layer]) for layer in net.layers}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_items, desc=f"{net.arch.name} {','.join(net.layers)}", unit="item", leave=False)
    bounds = np.searchsorted(item[order], np.arange(0, n_items + batch_size, batch_size))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if lo == hi:
            continue
        sel = order[lo:hi]
        uniq, inv = np.unique(np.concatenate([a[sel], b[sel]]), return_inverse=True)
        ia, ib = torch.from_numpy(inv[:len(sel)]), torch.from_numpy(inv[len(sel):])
        feats = _features(net, data, uniq, cache, batch_size, progress)
        for layer in net.layers:
            f = feats[layer]
            w = weights[layer]
            ia_d, ib_d = ia.to(f.device), ib.to(f.device)
            d = dist(f[ia_d], f[ib_d], None if w is None else w.to(f.device))
            flat[layer][sel] = d.detach().double().cpu().numpy()
        if bar is not None:
            bar.update(int(item[sel[-1]] - item[sel[0]] + 1))
    if bar is not None:
        bar.close()
    values = {layer: {} for layer in net.layers}
    at = 0
    for sub_name, name, n in slots:
        for layer in net.layers:
            values[layer].setdefault(sub_name, {})[name] = flat[layer][at:at + n]
        at += n
    return Distances(data, values)


def _names(data: BAPPS, subsets) -> set[str]:
    from .bapps import select_subsets
    return set(select_subsets(list(data.subsets), subsets))


def score(dists: Distances) -> list[dict]:
    """Rows (layer, dataset, metric, value, n) of the 2AFC and JND scores and their aggregates."""
    rows = []
    data = dists.data
    for layer, per_subset in dists.values.items():
        twoafc, jnd_d, jnd_s = [], [], []
        for name, v in per_subset.items():
            sub = data.subsets[name]
            if sub.kind == "2afc":
                value = score_2afc(v["d0"], v["d1"], sub.target)
                twoafc.append((value, len(sub)))
                rows.append(dict(layer=layer, dataset=name, metric="2afc", value=value, n=len(sub)))
            else:
                value = jnd_map(v["d"], sub.target)
                jnd_d.append(v["d"])
                jnd_s.append(sub.target)
                rows.append(dict(layer=layer, dataset=name, metric="jnd_map", value=value, n=len(sub)))
        if twoafc:
            rows.append(dict(layer=layer, dataset="2afc/val", metric="2afc",
                             value=float(np.mean([v for v, _ in twoafc])), n=sum(n for _, n in twoafc)))
        if jnd_d:
            rows.append(dict(layer=layer, dataset="jnd/val", metric="jnd_map",
                             value=jnd_map(np.concatenate(jnd_d), np.concatenate(jnd_s)),
                             n=sum(len(s) for s in jnd_s)))
    return rows


def run(net, data, *, subsets=None, cache=None, batch_size: int = 64, progress: bool = True,
        channel_weights=None) -> pd.DataFrame:
    """Tidy rows (benchmark, arch, layer, weights, dataset, metric, value, n, data) for every layer of net.

    ``data``: a loaded :class:`BAPPS` or a folder; ``cache``: a FeatureCache, its URL, or None.
    The ``data`` column says ``synthetic`` for a set made by ``make-bapps`` and ``bapps`` otherwise.
    """
    data = data if isinstance(data, BAPPS) else load_bapps(data, subsets, progress=progress)
    dists = distances(net, data, subsets=subsets, cache=cache, batch_size=batch_size,
                      channel_weights=channel_weights, progress=progress)
    config = _config(net, data, channel_weights)
    rows = [dict(benchmark=BENCHMARK, arch=net.arch.name, weights=net.weights_spec, **r, data=data.label,
                 config=config) for r in score(dists)]
    return tidy(rows)


def _config(net, data: BAPPS, channel_weights) -> str:
    """The rows' configuration string: the network's, the distance, its channel weights (a tap without
    any counts as empty in the digest), the input."""
    parts = [net.config, "distance=lpips"]
    if channel_weights:
        from lossnets.engine.lin_weights import lin_digest
        ws = [channel_weights.get(layer) for layer in net.layers]
        parts.append(f"lin=channel_weights@{lin_digest([torch.empty(0) if w is None else w for w in ws])[:8]}")
    h, w = data.images.shape[-2:]
    return " ".join(parts + ["range=uint8", f"resize={h}x{w}({CACHE_PREPROCESSING['resize']})"])


def evaluate(archs=None, layers=("E", "S", "M", "L"), data=None, *, weights: str = "imagenet", seed: int = 0,
             device=None, amp=None, compile: bool = False, cache=None, out=None, subsets=None,
             batch_size: int = 64, progress: bool = True) -> pd.DataFrame:
    """The similarity benchmark over a grid of architectures x layers; writes ``out`` (CSV) atomically
    after every architecture. With imagenet weights the table has a ``paper_value`` column."""
    from lossnets.engine import LossNetwork, resolve_archs
    if data is None:
        raise ValueError("no BAPPS folder given (make one with `lossnets data make-bapps DIR`)")
    data = data if isinstance(data, BAPPS) else load_bapps(data, subsets, progress=progress)
    cache_url = str(cache) if isinstance(cache, (str, Path)) else (type(cache).__name__ if cache else None)
    cache = _open_cache(cache, progress)
    names = resolve_archs(archs)
    meta = run_metadata(seed=seed, amp=amp or "none", compiled=bool(compile), batch_size=batch_size,
                        cache=cache_url or "none")
    frames = []
    iterator = names
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(names, desc="similarity", unit="arch")
    df = tidy([])
    for arch in iterator:
        net = LossNetwork(arch, layers, weights, seed=seed, normalize="imagenet", device=device,
                          compile=compile, amp=amp, lazy=True)  # built only if the cache lacks features
        frames.append(run(net, data, subsets=subsets, cache=cache, batch_size=batch_size, progress=progress))
        df = _finish(frames, meta, device=str(net.device), weights=weights)
        if out is not None:
            write_csv_atomic(df, out)
        del net
    return df


def _finish(frames, meta, *, device, weights) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)
    df = tidy(df.to_dict("records"), **meta, device=device)
    if weights == "imagenet":
        df = with_paper_values(df)
    return df
