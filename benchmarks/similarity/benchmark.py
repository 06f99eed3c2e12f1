"""Benchmark 1, perceptual similarity: BAPPS 2AFC and JND of the deep perceptual distance of every loss network.

Every tap of an architecture comes from one forward pass, which yields the per-channel statistics of every
image pair (``statistics.py``); each metric is then a weighted sum of them: a tap or a tap set (taps summed,
``E+S+M+L``, ``lpips``), with all channel weights 1 (the paper's baseline) or LPIPS lin weights (shipped,
from a file, or learned here: ``lin_training.py``). With a cache the statistics are stored beside the
features, so a rerun with other weights reads kilobytes per pair. Scoring is the ``lpips`` package's
(``scoring.py``); ``2afc/val`` is the unweighted mean of the 2AFC subsets, ``jnd/val`` the pooled JND pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lossnets.engine.tap_sets import TapSet, tap_sets, union_layers

from .bapps import BAPPS, load_bapps
from .lin_training import LinTraining
from .scoring import jnd_map, score_2afc
from .statistics import CACHE_PREPROCESSING, STATISTIC, PairStatistics, pair_statistics
from ..sweep.results import BASELINE, run_metadata, tidy, with_paper_values, write_csv_atomic

BENCHMARK = "similarity"


# ---------------------------------------------------------------------------------------------
# distances

@dataclass
class Distances:
    """Per metric (a tap or tap set) and subset: ``d0``/``d1`` (2AFC, ref to p0/p1) or ``d`` (JND, p0 to p1),
    float64."""
    data: BAPPS
    values: dict[str, dict[str, dict[str, np.ndarray]]]  # metric -> subset -> {"d0","d1"} or {"d"}


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


def distances(net, data, *, subsets=None, cache=None, batch_size: int = 64, progress: bool = True) -> Distances:
    """The baseline distances of every tap of net on every (chosen) subset of data."""
    stats = statistics(net, data, subsets=subsets, cache=cache, batch_size=batch_size, progress=progress)
    return Distances(stats.data, {layer: stats.distances((layer,)) for layer in net.layers})


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
        split = next(iter(per_subset)).split("/")[1] if per_subset else "val"
        if twoafc:
            rows.append(dict(layer=layer, dataset=f"2afc/{split}", metric="2afc",
                             value=float(np.mean([v for v, _ in twoafc])), n=sum(n for _, n in twoafc)))
        if jnd_d:
            rows.append(dict(layer=layer, dataset=f"jnd/{split}", metric="jnd_map",
                             value=jnd_map(np.concatenate(jnd_d), np.concatenate(jnd_s)),
                             n=sum(len(s) for s in jnd_s)))
    return rows


def score_set(stats: PairStatistics, s: TapSet, weights=None) -> list[dict]:
    """The score rows of the tap set ``s`` from ``stats``, with channel ``weights`` (None: the baseline)."""
    return score(Distances(stats.data, {s.name: stats.distances(s.layers, weights)}))


def run(net, data, *, layers=None, lin=None, subsets=None, cache=None, batch_size: int = 64,
        training: LinTraining | dict | None = None, out_dir=None, progress: bool = True) -> pd.DataFrame:
    """Tidy rows (benchmark, arch, layer, weights, dataset, metric, value, n, lin, data, config) per tap set.

    ``layers``: tap sets (``E``, ``E+S+M+L``, ``lpips``; default each tap of ``net``), all of whose taps ``net``
    must have. Every tap set gets its baseline rows (``lin`` = "none"); ``lin`` adds rows scored with channel
    weights: "lpips", a file or folder of lin weights (see :func:`~lossnets.engine.lin_weights.resolve_lin`), or
    "train" (learned on the set's ``2afc/train`` split with ``training``, a LinTraining or a dict of its fields,
    written under ``out_dir/lin`` if given).
    ``data``: a loaded :class:`BAPPS` or a folder; ``cache``: a cache URL, a FeatureCache or a StatisticsStore (the
    pair statistics are stored there, beside any features), or None. The ``data`` column says ``synthetic`` for
    made data.
    """
    from lossnets.engine.lin_weights import resolve_lin
    data = data if isinstance(data, BAPPS) else load_bapps(data, subsets, progress=progress)
    sets = tap_sets(net.arch.name, net.layers if layers is None else layers)
    lacking = [t for t in union_layers(sets) if t not in net.layers]
    if lacking:
        raise ValueError(f"the loss network has taps {net.layers}; the tap sets {[s.name for s in sets]} also "
                         f"need {lacking}")
    # bad weights or a missing train split are errors before any network runs
    lins = {s.name: resolve_lin(lin, net.arch.name, s.name, s.layers) for s in sets} if lin not in (None, "train") \
        else {}
    train = load_bapps(data.root, split="train", progress=progress) if lin == "train" else None
    training = LinTraining(**training) if isinstance(training, dict) else training or LinTraining()
    stats = statistics(net, data, subsets=subsets, cache=cache, batch_size=batch_size, progress=progress)
    if train is not None:
        from .lin_training import learn_lin
        lins = learn_lin(net, train, sets, val=stats, cache=cache, training=training,
                         out_dir=None if out_dir is None else Path(out_dir) / "lin", batch_size=batch_size,
                         progress=progress)[0]
    rows = []
    for s in sets:
        scored = [(BASELINE, None)] + ([(lins[s.name].label, lins[s.name].weights)] if s.name in lins else [])
        for label, weights in scored:
            config = _config(net, data, label)
            rows += [dict(benchmark=BENCHMARK, arch=net.arch.name, weights=net.weights_spec, **r, lin=label,
                          data=data.label, config=config) for r in score_set(stats, s, weights)]
    return tidy(rows)


def _config(net, data: BAPPS, lin: str) -> str:
    """The rows' configuration string: the network's, the distance, its channel weights, the input."""
    parts = [net.config, "distance=lpips"] + ([f"lin={lin}"] if lin != BASELINE else [])
    h, w = data.images.shape[-2:]
    return " ".join(parts + ["range=uint8", f"resize={h}x{w}({CACHE_PREPROCESSING['resize']})"])


def evaluate(archs=None, layers=("E", "S", "M", "L"), data=None, *, lin=None, weights: str = "imagenet",
             seed: int = 0, device=None, amp=None, compile: bool = False, cache=None, out=None, subsets=None,
             batch_size: int = 64, training: LinTraining | None = None, lin_out=None,
             progress: bool = True) -> pd.DataFrame:
    """The similarity benchmark over a grid of architectures x tap sets (one network pass per architecture for
    all of its taps); writes ``out`` (CSV) atomically after every architecture. ``lin`` and ``training``: as
    :func:`run`; ``lin_out``: where learned weights go. With imagenet weights the table has a ``paper_value``
    column (for baseline rows)."""
    from lossnets.engine import LossNetwork, resolve_archs
    if data is None:
        raise ValueError("no BAPPS folder given (make one with `lossnets data make-bapps DIR`)")
    data = data if isinstance(data, BAPPS) else load_bapps(data, subsets, progress=progress)
    cache_url = str(cache) if isinstance(cache, (str, Path)) else (type(cache).__name__ if cache else None)
    store = open_store(cache, progress)
    names = resolve_archs(archs)
    plans = {arch: tap_sets(arch, layers) for arch in names}  # every tap set checked before any work
    meta = run_metadata(seed=seed, amp=amp or "none", compiled=bool(compile), batch_size=batch_size,
                        cache=cache_url or "none")
    frames = []
    iterator = names
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(names, desc="similarity", unit="arch")
    df = tidy([])
    for arch in iterator:
        net = LossNetwork(arch, union_layers(plans[arch]), weights, seed=seed, normalize="imagenet", device=device,
                          compile=compile, amp=amp, lazy=True)  # built only if no store holds what it needs
        frames.append(run(net, data, layers=[s.name for s in plans[arch]], lin=lin, subsets=subsets,
                          cache=store, batch_size=batch_size, training=training, out_dir=lin_out,
                          progress=progress))
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
        if "lin" in df.columns:  # the paper scored the baseline only
            df.loc[df["lin"] != BASELINE, "paper_value"] = float("nan")
    return df
