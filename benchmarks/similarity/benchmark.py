"""Benchmark 1, perceptual similarity: BAPPS 2AFC and JND of the deep perceptual distance of every loss network.

Every tap of an architecture comes from one forward pass, which yields the per-channel statistics of every
image pair (``statistics.py``); each metric is then a weighted sum of them: a tap or a tap set (taps summed,
``E+S+M+L``, ``lpips``; or averaged: ``kumar``, Kumar et al.'s mean ensemble), with all channel weights 1 (the
paper's baseline) or LPIPS lin weights (shipped, from a file, or learned here: ``lin_training.py``). With a cache
the statistics are stored beside the features, so a rerun with other weights reads kilobytes per pair; they are
scored one tap at a time, so many taps (every block) take about one tap's memory. Scoring is the ``lpips``
package's (``scoring.py``); ``2afc/val`` is the unweighted mean of the 2AFC subsets, ``jnd/val`` the pooled JND
pairs, and ``kumar`` adds its ``perceptual_score`` (100 x its ``2afc/val``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from lossnets.engine.tap_sets import tap_sets, union_layers

from .bapps import BAPPS, load_bapps, shared_bapps
from .lin_training import LinTraining
from .scoring import Distances, score_set
from .statistics import CACHE_PREPROCESSING, statistics
from ..contract import Context
from ..sweep.results import BASELINE, tidy
from .settings import SimilaritySettings, lin_training

BENCHMARK = "similarity"
# said once when lin="lpips" meets tap sets it has no weights for (they keep their baseline rows)
LPIPS_ELSEWHERE = ("lin 'lpips' (LPIPS v0.1) weighs only the tap set 'lpips' of alexnet, vgg16 and squeezenet1_1: "
                   "the other tap sets are scored with the baseline (all channel weights 1) only")


def distances(net, data, *, subsets=None, cache=None, batch_size: int = 64, progress: bool = True) -> Distances:
    """The baseline distances of every tap of net on every (chosen) subset of data."""
    stats = statistics(net, data, subsets=subsets, cache=cache, batch_size=batch_size, progress=progress)
    return Distances(stats.data, {layer: stats.distances((layer,)) for layer in net.layers})


def run(net, data, *, layers=None, lin=None, subsets=None, cache=None, batch_size: int = 64,
        training: LinTraining | dict | None = None, out_dir=None, progress: bool = True) -> pd.DataFrame:
    """Tidy rows (benchmark, arch, layer, weights, dataset, metric, value, n, lin, data, config) per tap set.

    ``layers``: tap sets (``E``, ``E+S+M+L``, ``lpips``, ``kumar``; default each tap of ``net``), all of whose taps
    ``net`` must have. Every tap set gets its baseline rows (``lin`` = "none"); ``lin`` adds rows scored with channel
    weights: "lpips" (to the tap set lpips of the networks lpips has weights for; elsewhere a warning says only
    the baseline is scored), a file or folder of lin weights (see :func:`~lossnets.engine.lin_weights.resolve_lin`), or
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
    lins = {s.name: resolve_lin(lin, net.arch.name, s.name, s.layers) for s in _weighed(lin, net.arch.name, sets)}
    train = shared_bapps(data.root, split="train", progress=progress) if lin == "train" else None
    training = lin_training(training)
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


def _weighed(lin, arch: str, sets) -> list:
    """The tap sets that ``lin`` gives weights to before any network runs (none for "train", learned later):
    "lpips" only the lpips tap set of its networks, with one warning (LPIPS_ELSEWHERE) if others are asked."""
    if lin in (None, "train"):
        return []
    if lin != "lpips":
        return sets
    from lossnets.engine.lin_weights import lpips_layers
    weighed = [s for s in sets if s.layers == lpips_layers(arch)]
    if len(weighed) < len(sets):
        warnings.warn(LPIPS_ELSEWHERE, UserWarning, stacklevel=3)
    return weighed


def _config(net, data: BAPPS, lin: str) -> str:
    """The rows' configuration string: the network's, the distance, its channel weights, the input."""
    parts = [net.config, "distance=lpips"] + ([f"lin={lin}"] if lin != BASELINE else [])
    h, w = data.images.shape[-2:]
    return " ".join(parts + ["range=uint8", f"resize={h}x{w}({CACHE_PREPROCESSING['resize']})"])


def run_cells(net, settings: SimilaritySettings, ctx: Context) -> pd.DataFrame:
    """The benchmark's entry point (``lossnets.benchmarks.contract``): :func:`run` on the cells' tap sets, learned
    lin weights (``lin = "train"``) under ``ctx.out_dir/lin``."""
    data = shared_bapps(settings.data, settings.subsets, progress=ctx.progress)
    return run(net, data, layers=ctx.layers, lin=settings.lin, subsets=settings.subsets, cache=ctx.cache,
               batch_size=settings.batch_size, training=settings.training, out_dir=ctx.out_dir, progress=ctx.progress)
