"""A tiny fake benchmark for the sweep tests (no tests here): it honours the benchmark contract
``run(net, ..., cache=None, progress=True) -> tidy rows for every layer of net``.

It is named by ``function = "test_sweep_fakebench:run"`` in test configs; subprocesses and workers
find it through PYTHONPATH (this folder).
"""
from __future__ import annotations

import os
import time

import pandas as pd
import torch

CALLS_ENV = "LOSSNETS_FAKE_CALLS"  # if set, a file that gets one line per call (arch and layers)


def _url(cache) -> str:
    """The cache's URL: the sweep passes one opened FeatureCache (or the URL string)."""
    if cache is None:
        return ""
    return cache if isinstance(cache, str) else f"{type(cache).__name__}:{cache.root.url}"


def run(net, *, name="fake", datasets=("fake/a", "fake/b"), sleep: float = 0.0, fail=(), fail_while=None, data="synthetic",
        root=None, cache=None, progress=True) -> pd.DataFrame:
    if os.environ.get(CALLS_ENV):
        with open(os.environ[CALLS_ENV], "a") as f:
            f.write(f"{net.arch.name} {','.join(net.layers)}\n")
    for layer in net.layers:
        if f"{net.arch.name}/{layer}" in fail and (fail_while is None or os.path.exists(fail_while)):
            raise RuntimeError(f"fake failure at {net.arch.name}/{layer}")
    g = torch.Generator().manual_seed(123)
    x = torch.rand(2, 3, 64, 64, generator=g)
    feats = net(x)
    time.sleep(sleep)
    rows = []
    for layer in net.layers:
        m = float(feats[layer].float().abs().mean())
        for i, ds in enumerate(datasets):
            rows.append({"benchmark": name, "arch": net.arch.name, "layer": layer, "weights": net.weights_spec,
                         "dataset": ds, "metric": "score", "value": m + i, "data": data,
                         "cache": _url(cache)})
    df = pd.DataFrame(rows)
    return df.drop(columns="data") if data is None else df
