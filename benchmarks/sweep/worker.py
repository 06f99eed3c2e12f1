"""The worker: run one group's cells (an architecture and weights variant) with one loss network, write each cell,
record each failure.

Every executor (local, Ray, SLURM) calls :func:`run_group` once per group. The network is built once per group
(lazily: a benchmark served by stored statistics builds none) with every tap the group's cells need; each job
gets the rows of its cells from its benchmark's entry point. A call that fails for a multi-tap network is retried
tap by tap (``isolate_failures``), so that one bad tap fails only its own cell; a failure no tap causes (bad
input, missing files or packages, out of memory) is recorded for every cell at once.
"""
from __future__ import annotations

import socket
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

import pandas as pd

from lossnets.errors import LossnetsError

from ..contract import Context
from ..registry import get_benchmark
from .cells import Outcome, RunDirWriteError, RunFolder
from .claims import Claims
from .config import Job
from .plan import Cell, Group
from .results import COLUMNS, run_metadata, with_paper_values, with_relative_depth

INPUT_ERRORS = (LossnetsError, OSError, ImportError)  # what the user gave is wrong: no tap causes it
NOT_TAP_ERRORS = (*INPUT_ERRORS, MemoryError)


def open_group_cache(url: str | None, dtype: str | None):
    """One FeatureCache on ``url`` for every job of a group (they share its hot tier), quiet; None, with one
    warning that says why, where it cannot be opened."""
    if url is None:
        return None
    from lossnets.cache import CacheWarning, FeatureCache
    try:
        return FeatureCache(url, dtype=dtype, progress=False)
    except Exception as e:  # noqa: BLE001 - any failure to open: the run goes on without a cache, and says so
        warnings.warn(f"cannot open the feature cache {url} ({type(e).__name__}: {e}); running without it",
                      CacheWarning, stacklevel=2)
        return None


class GroupRun:
    """One group's state: its network (one alive at a time), its cache, the rows' run columns, the outcomes."""

    def __init__(self, group: Group, device: str | None, on_cell: Callable[[Outcome], None] | None):
        self.group, self.config, self.folder = group, group.config, RunFolder(group.run_dir)
        self.device = device or self.config.engine.device
        self.on_cell = on_cell
        self.outcomes: list[Outcome] = []
        self.todo = [c for c in group.cells if not self.folder.finished(c)]  # another worker may have done some
        self.claims = Claims(self.folder)
        self.nets: dict[tuple[str, ...], object] = {}
        self.cache = open_group_cache(self.config.engine.cache, self.config.engine.cache_dtype)
        e = self.config.engine
        self.meta = run_metadata(seed=group.seed, amp=e.amp or "", compiled=e.compile, device=str(self.device or ""),
                                 host=socket.gethostname(), sweep=self.config.fingerprint())

    def network(self, layers: tuple[str, ...]):
        """The group's LossNetwork for these taps or tap sets, built on first use."""
        from lossnets.engine import LossNetwork
        from lossnets.engine.tap_sets import tap_sets, union_layers
        if layers not in self.nets:
            self.nets.clear()  # one network alive at a time
            e = self.config.engine
            self.nets[layers] = LossNetwork(self.group.arch, union_layers(tap_sets(self.group.arch, layers)),
                                            self.group.weights, seed=self.group.seed, device=self.device,
                                            compile=e.compile, amp=e.amp, lazy=True)
        return self.nets[layers]

    def finish(self, cell: Cell, seconds: float, exc: BaseException | None = None, tb: str = "") -> None:
        if exc is not None:
            self.folder.write_error(cell, exc, tb)
        out = Outcome(cell, exc is None, None if exc is None else f"{type(exc).__name__}: {exc}", seconds)
        self.outcomes.append(out)
        if self.on_cell is not None:
            self.on_cell(out)

    def rows(self, job: Job, df: pd.DataFrame, cell: Cell) -> pd.DataFrame:
        """One cell's rows of an entry point's table, with the run's columns where the benchmark wrote none."""
        rows = df[df["layer"] == cell.layer]
        if rows.empty:
            raise RuntimeError(f"benchmark {cell.benchmark} returned no rows for layer {cell.layer} "
                               f"(it returned layers {sorted(df['layer'].unique())})")
        rows = rows.assign(benchmark=rows["benchmark"].fillna(cell.benchmark))
        if "data" not in rows.columns and job.synthetic:
            rows = rows.assign(data="synthetic")  # made data, whatever the benchmark says
        rows = rows.assign(**{k: v for k, v in self.meta.items() if k not in rows.columns})
        return with_paper_values(with_relative_depth(rows)) if set(COLUMNS) <= set(rows.columns) else rows

    def attempt(self, job: Job, todo: list[Cell]) -> tuple[BaseException | None, str]:
        """Run ``job`` for the cells ``todo`` in one call and write them; the error and traceback if it failed."""
        t0 = time.perf_counter()
        bench = get_benchmark(job.benchmark)
        try:
            layers = tuple(c.layer for c in todo)
            every = tuple(dict.fromkeys(c.layer for c in self.todo))
            net = self.network(every if set(layers) == set(every) else layers)  # shared when it wants every tap
            artifacts = Path(self.group.artifacts or Path(self.group.run_dir) / "artifacts" / job.name)
            artifacts = artifacts / todo[0].variant if todo[0].variant else artifacts
            ctx = Context(layers, seed=self.group.seed, cache=self.cache, out_dir=artifacts, progress=False)
            df = bench.function()(net, job.settings, ctx)
            if not isinstance(df, pd.DataFrame):
                raise TypeError(f"{bench.entry} returned {type(df).__name__}, expected a DataFrame")
            missing = [c for c in bench.columns or COLUMNS if c not in df.columns]
            if missing:
                raise ValueError(f"{bench.entry} returned rows without columns {missing}")
            rows = {c: self.rows(job, df, c) for c in todo}
        except RunDirWriteError:
            raise
        except Exception as e:  # noqa: BLE001 - recorded per cell, the others go on
            return e, traceback.format_exc()
        per = (time.perf_counter() - t0) / len(todo)
        for c in todo:
            self.folder.write_rows(c, rows[c])
            self.finish(c, per)
        return None, ""

    def run_job(self, job: Job, todo: list[Cell]) -> None:
        t0 = time.perf_counter()
        exc, tb = self.attempt(job, todo)
        if exc is None:
            return
        if len(todo) > 1 and self.config.isolate_failures and not isinstance(exc, NOT_TAP_ERRORS):
            for c in todo:  # one tap at a time, so that only the bad taps fail
                t1 = time.perf_counter()
                exc1, tb1 = self.attempt(job, [c])
                if exc1 is not None:
                    self.finish(c, time.perf_counter() - t1, exc1, tb1)
            return
        per = (time.perf_counter() - t0) / len(todo)
        for c in todo:
            self.finish(c, per, exc, tb)
        if self.group.stop_on_input_error and isinstance(exc, INPUT_ERRORS):
            raise exc  # every other cell would fail the same way: the caller says why, in one line

    def run(self) -> list[Outcome]:
        mine = (self.group.weights, self.group.seed)  # of the jobs of a name, the one that runs this variant
        jobs = {j.name: j for j in self.config.jobs if mine in self.config.engine.variants(j.weights, j.seeds)}
        by_job: dict[str, list[Cell]] = {}
        for c in self.todo:
            by_job.setdefault(c.benchmark, []).append(c)
        try:
            for name, todo in by_job.items():
                mine = self.claims.take(todo)  # the cells another process runs (or has run) are left to it
                try:
                    if mine:
                        self.run_job(jobs[name], mine)
                finally:
                    self.claims.release(mine)
        finally:
            if self.cache is not None:
                try:
                    self.cache.flush_uses()
                except OSError as e:  # usage counts are best effort
                    warnings.warn(f"cannot record the cache's hit counts ({e})", stacklevel=2)
        return self.outcomes


def run_group(group: Group, on_cell: Callable[[Outcome], None] | None = None, device: str | None = None) -> list[Outcome]:
    """Run one architecture group (see the module doc): one Outcome per unfinished cell, ``on_cell(outcome)`` as
    each ends. Failed cells are recorded, never raised (but see ``Group.stop_on_input_error``)."""
    return GroupRun(group, device, on_cell).run()
