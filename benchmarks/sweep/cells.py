"""A run's folder: one file per finished cell, one error record per failed cell, the config it runs, its table.

::

    RUN_DIR/sweep.json                                   the config (absolute paths) and its fingerprint
    RUN_DIR/cells/<benchmark>/<arch>/<layer>.csv         a finished cell: its rows (atomic write)
    RUN_DIR/cells/<benchmark>/<arch>/<layer>.error.json  a failed cell: its error and traceback
    RUN_DIR/cells/<benchmark>/<arch>/<variant>/<layer>.*  the same in a run with several weights variants
    RUN_DIR/artifacts/<benchmark>/                       what benchmarks keep (learned weights, checkpoints)

A cell is finished when its CSV exists. The results table is rebuilt from the cell files only when a run has been
through all of its cells (and removed when a run starts work), so a killed run never leaves a table that reads as
complete.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from lossnets.engine.atomic import atomic_write_text
from lossnets.errors import ConfigError

from .config import SweepConfig
from .plan import Cell
from .results import COLUMNS, key_columns, write_csv_atomic

RESULTS = "results.csv"
CELLS = "cells"
STATE = "sweep.json"


class RunDirWriteError(OSError):
    """A file of the run folder could not be written (full disk, read-only folder): the run stops; every finished
    cell stays valid and ``--resume`` completes the rest."""


@contextlib.contextmanager
def writing(path: Path):
    """Turn a failed write of ``path`` into one RunDirWriteError that names it."""
    try:
        yield
    except RunDirWriteError:
        raise
    except OSError as e:
        raise RunDirWriteError(f"cannot write {path} ({e.strerror or e}); every finished cell is kept: "
                               "free space, then rerun with --resume") from e


@dataclass(frozen=True)
class Outcome:
    """How one cell ended in one call: finished, or failed with ``error`` (its type and message)."""
    cell: Cell
    ok: bool
    error: str | None = None
    seconds: float = 0.0


class RunFolder:
    """The files of one run (see the module doc)."""

    def __init__(self, root):
        self.root = Path(root)

    def cell_path(self, cell: Cell) -> Path:
        return self.root / CELLS / cell.benchmark / cell.arch / cell.variant / f"{cell.layer}.csv"

    def error_path(self, cell: Cell) -> Path:
        return self.root / CELLS / cell.benchmark / cell.arch / cell.variant / f"{cell.layer}.error.json"

    def finished(self, cell: Cell) -> bool:
        return self.cell_path(cell).is_file()

    def write_rows(self, cell: Cell, rows: pd.DataFrame) -> None:
        """Record a finished cell (and drop an earlier error record of it)."""
        with writing(self.cell_path(cell)):
            write_csv_atomic(rows, self.cell_path(cell))
        self.error_path(cell).unlink(missing_ok=True)

    def write_error(self, cell: Cell, exc: BaseException, tb: str) -> None:
        record = {"benchmark": cell.benchmark, "arch": cell.arch, "layer": cell.layer, "variant": cell.variant,
                  "error": f"{type(exc).__name__}: {exc}", "traceback": tb, "host": socket.gethostname(),
                  "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with writing(self.error_path(cell)):
            atomic_write_text(self.error_path(cell), json.dumps(record, indent=2))

    def failures(self) -> list[dict]:
        """The error records of cells that failed and are not finished since."""
        root = self.root / CELLS
        files = sorted([*root.glob("*/*/*.error.json"), *root.glob("*/*/*/*.error.json")])
        return [json.loads(f.read_text()) for f in files
                if not f.with_name(f.name.replace(".error.json", ".csv")).is_file()]

    def cells(self) -> list[tuple[Cell, Path]]:
        """Every finished cell and its file."""
        root = self.root / CELLS
        flat = [(Cell(f.parents[1].name, f.parent.name, f.stem), f) for f in sorted(root.glob("*/*/*.csv"))]
        return flat + [(Cell(f.parents[2].name, f.parents[1].name, f.stem, f.parent.name), f)
                       for f in sorted(root.glob("*/*/*/*.csv"))]

    def read_cells(self) -> pd.DataFrame:
        """Every finished cell's rows, one table (empty with COLUMNS when there are none)."""
        frames = [df for df in (pd.read_csv(f) for _, f in self.cells()) if not df.empty]
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.concat(frames, ignore_index=True)
        first = [c for c in COLUMNS if c in df.columns]
        return df[first + [c for c in df.columns if c not in first]]

    def write_table(self, path: Path | None = None) -> pd.DataFrame:
        """The results table (default RUN_DIR/results.csv) rebuilt from the cell files, atomically; rows with the
        same key (see ``results.key_columns``) kept once (the last cell file read wins)."""
        path = self.root / RESULTS if path is None else Path(path)
        df = self.read_cells()
        if len(df):  # results rows are told apart by their key columns; other rows (lin_train's) only whole
            dup = df.duplicated(subset=key_columns(df) if set(COLUMNS) <= set(df.columns) else None, keep="last")
            if dup.any():
                warnings.warn(f"{self.root}: {int(dup.sum())} row(s) repeat the key of another cell's rows "
                              f"(e.g. {df[dup].iloc[0][key_columns(df)].to_dict()}); kept once", stacklevel=2)
            df = df[~dup].reset_index(drop=True)
        with writing(path):
            write_csv_atomic(df, path)
        return df

    def start(self, config: SweepConfig, *, resume: bool, restart: bool) -> None:
        """Record the config of a run about to work. A folder holding a run with other settings is refused unless
        ``resume`` (which continues it with the new config); ``restart`` first drops its cells."""
        state = self.root / STATE
        if restart and (self.root / CELLS).exists():
            shutil.rmtree(self.root / CELLS)
        elif state.is_file() and not resume:
            old = json.loads(state.read_text())
            if old.get("fingerprint") != config.fingerprint():
                raise ConfigError(f"{self.root} holds a run with other settings (weights, seed, amp or benchmark "
                                  f"settings differ; its config: {old.get('source')}). Use "
                                  "another output, or --resume to continue it with these settings.")
        record = {"fingerprint": config.fingerprint(), "source": config.source, "config": config.to_dict(),
                  "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.root.mkdir(parents=True, exist_ok=True)
        with writing(state):
            atomic_write_text(state, json.dumps(record, indent=2, default=str))

    def config(self) -> SweepConfig:
        """The config the run was started with (``--resume`` without a config)."""
        state = self.root / STATE
        if not state.is_file():
            raise FileNotFoundError(f"{self.root} holds no run to resume ({STATE} is missing); start it with a config")
        record = json.loads(state.read_text())
        return SweepConfig.from_dict(record["config"], source=record.get("source"))
