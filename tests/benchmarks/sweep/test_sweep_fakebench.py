"""A tiny fake benchmark for the sweep tests (no tests here), a record of the benchmark contract: its settings,
its entry point ``run(net, settings, ctx) -> tidy rows for every layer of ctx.layers``.

Test configs name it with ``benchmark = "test_sweep_fakebench:FAKE"``; subprocesses and workers find it through
PYTHONPATH (this folder).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pandas as pd
import torch

from lossnets.benchmarks.contract import Benchmark, Settings, option

CALLS_ENV = "LOSSNETS_FAKE_CALLS"  # if set, a file that gets one line per call (arch and layers)


@dataclass(frozen=True)
class FakeSettings(Settings):
    name: str = option("fake", help="the rows' benchmark name")
    datasets: tuple[str, ...] = option(("fake/a", "fake/b"), help="one row per dataset and layer")
    sleep: float = option(0.0, help="seconds to sleep per call")
    fail: tuple[str, ...] = option((), help="ARCH/LAYER cells that raise")
    fail_while: str | None = option(None, help="fail only while this file exists")
    data: str | None = option("synthetic", help="the rows' data column (None: no such column)")
    root: str | None = option(None, help="a data path", path=True)


def _url(cache) -> str:
    """The cache's URL: the worker passes one opened FeatureCache (or None)."""
    return "" if cache is None else f"{type(cache).__name__}:{cache.root.url}"


def run(net, s: FakeSettings, ctx) -> pd.DataFrame:
    if os.environ.get(CALLS_ENV):
        with open(os.environ[CALLS_ENV], "a") as f:
            f.write(f"{net.arch.name} {','.join(ctx.layers)}\n")
    for layer in ctx.layers:
        if f"{net.arch.name}/{layer}" in s.fail and (s.fail_while is None or os.path.exists(s.fail_while)):
            raise RuntimeError(f"fake failure at {net.arch.name}/{layer}")
    g = torch.Generator().manual_seed(123)
    feats = net(torch.rand(2, 3, 64, 64, generator=g))
    time.sleep(s.sleep)
    rows = [{"benchmark": s.name, "arch": net.arch.name, "layer": layer, "weights": net.weights_spec, "dataset": ds,
             "metric": "score", "value": float(feats[layer].float().abs().mean()) + i, "data": s.data,
             "cache": _url(ctx.cache)} for layer in ctx.layers for i, ds in enumerate(s.datasets)]
    df = pd.DataFrame(rows)
    return df.drop(columns="data") if s.data is None else df


FAKE = Benchmark("fake", FakeSettings, "test_sweep_fakebench:run", trains=False, rows="{name}")
