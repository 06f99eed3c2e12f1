"""The benchmarks a sweep and the command line know, by name: registered once, here.

A sweep config's section names a registered benchmark (``[superres]``), or any :class:`Benchmark` record with
``benchmark = "module:NAME"``; :func:`register` adds one for the whole process.
"""
from __future__ import annotations

import importlib

from lossnets.errors import ConfigError

from .autoencoder.settings import AUTOENCODER
from .contract import Benchmark
from .segmentation.settings import SEGMENTATION
from .similarity.settings import LIN_TRAIN, SIMILARITY
from .superres.settings import SUPERRES

BENCHMARKS: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Register (or replace) a benchmark under its name."""
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def get_benchmark(ref: str) -> Benchmark:
    """A registered benchmark by name, or the :class:`Benchmark` record at ``"module:NAME"``."""
    if ref in BENCHMARKS:
        return BENCHMARKS[ref]
    if ":" not in ref:
        raise ConfigError(f"{ref!r} is not a registered benchmark ({', '.join(BENCHMARKS)}); name another with "
                          "benchmark = 'module:NAME'")
    module, _, attr = ref.partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot load benchmark {ref!r}: {e}") from e
    if not isinstance(found, Benchmark):
        raise ConfigError(f"{ref} is a {type(found).__name__}, not a lossnets.benchmarks.contract.Benchmark")
    return found


for _b in (SIMILARITY, SUPERRES, SEGMENTATION, AUTOENCODER, LIN_TRAIN):
    register(_b)
