"""The grid runner: every entry point that runs benchmarks over loss networks (the command line's benchmark
commands, the sweep, the demo, the Python API) runs them through :func:`run_grid`.

It plans the cells, skips the finished ones (resume), hands one group per architecture to an executor (each runs
``worker.run_group``), shows progress and writes the results table from the cell files once every cell has been
through (see ``cells.py`` for the run folder).
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lossnets.errors import ConfigError

from .cells import RESULTS, Outcome, RunDirWriteError, RunFolder
from .claims import Claims
from .config import SweepConfig
from .plan import Cell, Group, groups, plan
from .worker import run_group


LOST_TRIES = 3  # runs of a cell whose worker died (a lost Ray worker, a killed job) before it counts as failed


@dataclass
class GridResult:
    run_dir: Path
    table_path: Path
    table: pd.DataFrame
    planned: int
    skipped: int  # finished before this call
    finished: int  # finished by this call
    failed: list[Outcome]  # cells that failed in this call
    seconds: float

    def summary(self) -> str:
        s = (f"{self.planned} cells planned, {self.skipped} already done, {self.finished} finished now, "
             f"{len(self.failed)} failed; {self.seconds:.1f} s; wrote {self.table_path} ({len(self.table)} rows)")
        return s + "".join(f"\n  FAILED {f.cell}: {f.error}" for f in self.failed)


class Progress:
    """The bar over a run's cells, and its tally of finished and failed ones."""

    def __init__(self, total: int, progress: bool):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=total, unit="cell", desc="grid", disable=not progress, file=sys.stderr,
                        dynamic_ncols=True)
        self.finished, self.failed = 0, []

    def cell(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.finished += 1
        else:
            self.failed.append(outcome)
            self.bar.write(f"FAILED {outcome.cell}: {outcome.error}")
        self.bar.update(1)


def _lost_group(folder: RunFolder, group: Group, error: BaseException, lost: Counter) -> list[Outcome]:
    """The unfinished cells of a group whose whole task died (a lost worker, a killed job): each is run again
    (by :func:`_settle`) until it has been lost LOST_TRIES times, then recorded as failed. Cells another live
    process holds are left to it."""
    tb = "".join(traceback.format_exception(error))
    outcomes = []
    claims, deadline = Claims(folder), time.monotonic() + 5
    while (busy := set(claims.busy(list(group.cells)))) and time.monotonic() < deadline:
        time.sleep(0.1)  # the lost worker's own claims, while its process is still ending
    for c in group.cells:
        if folder.finished(c):
            outcomes.append(Outcome(c, True))
        elif c not in busy:
            lost[c] += 1
            if lost[c] >= LOST_TRIES:
                folder.write_error(c, error, tb)
                outcomes.append(Outcome(c, False, f"{type(error).__name__}: {error} (lost {lost[c]} times)"))
    return outcomes


def _settle(folder: RunFolder, cells: list[Cell], tally: Progress, rerun, poll_s: float = 0.5) -> None:
    """Until each of ``cells`` is finished or has failed here: wait for those other processes hold (another sweep
    on this run folder), and ``rerun`` those nobody holds (their owner ended, or their task was lost)."""
    claims = Claims(folder)
    while True:
        failed = {o.cell for o in tally.failed}
        left = [c for c in cells if c not in failed and not folder.finished(c)]
        if not left:
            return
        busy = set(claims.busy(left))
        free = [c for c in left if c not in busy]
        if free:
            rerun(free)
        else:
            time.sleep(poll_s)


def run_grid(config: SweepConfig, run_dir, *, table=None, executor="local", resume: bool = False,
             restart: bool = False, progress: bool = True, artifacts=None, stop_on_input_error: bool = False,
             executor_options: dict | None = None) -> GridResult:
    """Run every unfinished cell of ``config``'s grid in ``run_dir`` and write its results table.

    ``table``: where (default RUN_DIR/results.csv). A run folder holding a run with other settings is refused
    unless ``resume``; ``restart`` drops its cells first. ``executor``: "local", "ray", "slurm" or an executor
    object (options from the config's section of that name, then ``executor_options``). ``artifacts``: one folder
    for every job's artifacts (default RUN_DIR/artifacts/<benchmark>). ``stop_on_input_error``: stop at the first
    failure no tap causes (bad input, missing files), raising it after recording it: where every other cell would
    fail the same way (one benchmark, one data set).
    """
    from .executors import make_executor
    t0 = time.perf_counter()
    folder = RunFolder(run_dir)
    table_path = folder.root / RESULTS if table is None else Path(table)
    cells = plan(config)
    folder.start(config, resume=resume, restart=restart)
    todo = [c for c in cells if not folder.finished(c)]
    tally = Progress(len(todo), progress and bool(todo))
    if todo:
        table_path.unlink(missing_ok=True)  # from here until the end, no table reads as complete
        name = executor if isinstance(executor, str) else ""
        opts = {**config.executors.get(name, {}), **(executor_options or {})}
        ex = make_executor(executor, config=config, run_dir=folder.root, **opts) if name else executor

        def on_group(group: Group, outcomes: list[Outcome] | None, error: BaseException | None) -> None:
            if isinstance(error, RunDirWriteError) or (stop_on_input_error and error is not None):
                raise error  # nothing more can be recorded, or every other cell would fail the same way
            reported = getattr(ex, "reports_cells", False)  # its cells were tallied as they ended
            if error is not None:
                outcomes = [o for o in _lost_group(folder, group, error, lost) if not (reported and o.ok)]
            elif reported:
                outcomes = []
            for o in outcomes:
                tally.cell(o)

        def run(cells: list[Cell]) -> None:
            work = groups(config, cells, folder.root, artifacts=artifacts, stop_on_input_error=stop_on_input_error)
            ex.run(run_group, work, on_group=on_group, on_cell=tally.cell)

        lost: Counter = Counter()
        try:
            run(todo)
            _settle(folder, todo, tally, run)  # the cells other sweeps on this folder hold, and lost ones
        finally:
            tally.bar.close()
    result = folder.write_table(table_path)
    return GridResult(folder.root, table_path, result, len(cells), len(cells) - len(todo), tally.finished,
                      tally.failed, time.perf_counter() - t0)


def sweep(config: SweepConfig | str | os.PathLike | None, run_dir, *, executor="local", resume: bool = False,
          progress: bool = True, executor_options: dict | None = None) -> GridResult:
    """A sweep: ``run_grid`` on a config (a SweepConfig or a TOML path; None with ``resume`` reuses RUN_DIR's own)."""
    if config is None:
        if not resume:
            raise ConfigError("a sweep needs a config (or resume=True to reuse the run's own)")
        config = RunFolder(run_dir).config()
    elif not isinstance(config, SweepConfig):
        config = SweepConfig.from_toml(config)
    return run_grid(config, run_dir, executor=executor, resume=resume, progress=progress,
                    executor_options=executor_options)
