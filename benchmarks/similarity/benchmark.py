"""Benchmark 1, perceptual similarity: BAPPS 2AFC and JND of the deep perceptual distance of every loss network.

Every tap of an architecture comes from one forward pass, which yields the per-channel statistics of every
image pair (``statistics.py``); each metric is then a weighted sum of them: a tap or a tap set (taps summed,
``E+S+M+L``, ``lpips``), with all channel weights 1 (the paper's baseline) or LPIPS lin weights (shipped,
from a file, or learned here: ``lin_training.py``). With a cache the statistics are stored beside the
features, so a rerun with other weights reads kilobytes per pair. Scoring is the ``lpips`` package's
(``scoring.py``); ``2afc/val`` is the unweighted mean of the 2AFC subsets, ``jnd/val`` the pooled JND pairs.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from lossnets.engine.tap_sets import tap_sets, union_layers

from .bapps import BAPPS, load_bapps
from .lin_training import LinTraining
from .scoring import Distances, score_set
from .statistics import CACHE_PREPROCESSING, open_store, statistics
from ..sweep.results import BASELINE, run_metadata, tidy, with_paper_values, write_csv_atomic

BENCHMARK = "similarity"


def distances(net, data, *, subsets=None, cache=None, batch_size: int = 64, progress: bool = True) -> Distances:
    """The baseline distances of every tap of net on every (chosen) subset of data."""
    stats = statistics(net, data, subsets=subsets, cache=cache, batch_size=batch_size, progress=progress)
    return Distances(stats.data, {layer: stats.distances((layer,)) for layer in net.layers})


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
