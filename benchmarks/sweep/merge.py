"""Merging runs from several machines into one run folder and one table."""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .cells import CELLS, RESULTS, STATE, RunFolder
from .config import variant_name
from .plan import Cell


def _cells_of(run_dir: Path) -> list[tuple[Cell, pd.DataFrame, float]]:
    """(cell, rows, finished time) of a run: its cell files, or its results table when it has none."""
    files = RunFolder(run_dir).cells()
    if files:
        return [(cell, df, _created(df, f)) for cell, f in files if len(df := pd.read_csv(f))]
    if (run_dir / RESULTS).is_file():
        df = pd.read_csv(run_dir / RESULTS)
        seeds = df["seed"].fillna(0).astype(int) if "seed" in df.columns else pd.Series(0, index=df.index)
        df = df.assign(_w=df["weights"].astype(str), _s=seeds)
        return [(Cell(b, a, layer), rows.drop(columns=["_w", "_s"]).reset_index(drop=True),
                 _created(rows, run_dir / RESULTS))
                for (b, a, layer, _, _), rows in df.groupby(["benchmark", "arch", "layer", "_w", "_s"], sort=True)]
    raise FileNotFoundError(f"{run_dir} holds neither {CELLS}/ nor {RESULTS}")


def _variant(df: pd.DataFrame) -> tuple[str, int]:
    """The (weights, seed) of a cell's rows."""
    seed = df["seed"].iloc[0] if "seed" in df.columns and pd.notna(df["seed"].iloc[0]) else 0
    return str(df["weights"].iloc[0]), int(seed)


def _created(df: pd.DataFrame, f: Path) -> float:
    if "created" in df.columns and df["created"].notna().any():
        try:
            return pd.to_datetime(df["created"], utc=True).max().timestamp()
        except (ValueError, TypeError):
            pass
    return f.stat().st_mtime


def merge(run_dirs, out) -> pd.DataFrame:
    """Merge runs into OUT: OUT/cells and OUT/results.csv (rebuilt from OUT's cells, so without duplicate rows).

    A cell is (benchmark, arch, layer, weights variant). When several runs hold the same cell, the most recently
    finished one wins whole (its ``created`` stamp, else its file time); on a tie the run listed first wins. Cells
    are never mixed row by row. Runs of other weights or seeds (an ImageNet run and a random one) are kept apart:
    where the inputs hold several (weights, seed) variants, every cell goes under its variant's folder. OUT may be
    one of the inputs.
    """
    target = RunFolder(out)
    prints = {str(rd): json.loads((rd / STATE).read_text()).get("fingerprint")
              for rd in map(Path, run_dirs) if (rd / STATE).is_file()}
    if len(set(prints.values())) > 1:
        warnings.warn(f"merging runs with different settings (weights, seed, amp or benchmark settings): {prints}; "
                      "a cell held by several of them is taken from the latest", stacklevel=2)
    found = [found for rd in map(Path, run_dirs) for found in _cells_of(rd)]
    if len({_variant(df) for _, df, _ in found}) > 1:  # several variants: each cell under its own
        found = [(replace(cell, variant=variant_name(*_variant(df))), df, t) for cell, df, t in found]
        for flat in (target.root / CELLS).glob("*/*/*.csv"):
            flat.unlink()  # OUT's own cells of one variant, rewritten under their variant below
    chosen: dict[Cell, tuple[pd.DataFrame, float]] = {}
    for cell, df, t in found:
        if cell not in chosen or t > chosen[cell][1]:
            chosen[cell] = (df, t)
    for cell, (df, _) in sorted(chosen.items()):
        target.write_rows(cell, df)
    return target.write_table()
