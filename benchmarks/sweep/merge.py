"""Merging runs from several machines into one run folder and one table."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from .cells import CELLS, RESULTS, STATE, RunFolder
from .plan import Cell


def _cells_of(run_dir: Path) -> list[tuple[Cell, pd.DataFrame, float]]:
    """(cell, rows, finished time) of a run: its cell files, or its results table when it has none."""
    files = RunFolder(run_dir).cells()
    if files:
        return [(cell, df, _created(df, f)) for cell, f in files if len(df := pd.read_csv(f))]
    if (run_dir / RESULTS).is_file():
        df = pd.read_csv(run_dir / RESULTS)
        return [(Cell(b, a, layer), rows.reset_index(drop=True), _created(rows, run_dir / RESULTS))
                for (b, a, layer), rows in df.groupby(["benchmark", "arch", "layer"], sort=True)]
    raise FileNotFoundError(f"{run_dir} holds neither {CELLS}/ nor {RESULTS}")


def _created(df: pd.DataFrame, f: Path) -> float:
    if "created" in df.columns and df["created"].notna().any():
        try:
            return pd.to_datetime(df["created"], utc=True).max().timestamp()
        except (ValueError, TypeError):
            pass
    return f.stat().st_mtime


def merge(run_dirs, out) -> pd.DataFrame:
    """Merge runs into OUT: OUT/cells and OUT/results.csv (rebuilt from OUT's cells, so without duplicate rows).

    A cell is (benchmark, arch, layer). When several runs hold the same cell, the most recently finished one wins
    whole (its ``created`` stamp, else its file time); on a tie the run listed first wins. Cells are never mixed
    row by row. OUT may be one of the inputs.
    """
    target = RunFolder(out)
    prints = {str(rd): json.loads((rd / STATE).read_text()).get("fingerprint")
              for rd in map(Path, run_dirs) if (rd / STATE).is_file()}
    if len(set(prints.values())) > 1:
        warnings.warn(f"merging runs with different settings (weights, seed, amp or benchmark settings): {prints}; "
                      "a cell held by several of them is taken from the latest", stacklevel=2)
    chosen: dict[Cell, tuple[pd.DataFrame, float]] = {}
    for rd in map(Path, run_dirs):
        for cell, df, t in _cells_of(rd):
            if cell not in chosen or t > chosen[cell][1]:
                chosen[cell] = (df, t)
    for cell, (df, _) in sorted(chosen.items()):
        target.write_rows(cell, df)
    return target.write_table()
