"""The tidy results table every benchmark writes, the paper's figures beside it, atomic CSV writes."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import pandas as pd

from lossnets.engine.atomic import atomic_write_text

COLUMNS = ["benchmark", "arch", "layer", "weights", "dataset", "metric", "value"]
PAPER_CSV = Path(__file__).parent / "data" / "paper_results.csv"
# our dataset names -> the paper table's, where they differ
PAPER_DATASET = {("similarity", "2afc/val"): "bapps/2afc", ("similarity", "jnd/val"): "bapps/jnd"}
# benchmarks whose published figures are percentages (Table X); paper_results() gives them as fractions, as we do
PERCENT = ("segmentation",)
BASELINE = "none"  # the ``lin`` column of rows scored without learned channel weights (the paper's baseline)


def run_metadata(**extra) -> dict:
    """Columns stamped on every row of one run: engine version, time, and the run's options."""
    from lossnets import __version__
    return {"lossnets_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}


def tidy(rows: list[dict], **metadata) -> pd.DataFrame:
    """A tidy table from row dicts holding at least COLUMNS; metadata becomes constant columns."""
    df = pd.DataFrame(rows)
    missing = [c for c in COLUMNS if c not in df.columns]
    if rows and missing:
        raise ValueError(f"result rows lack columns {missing}")
    df = df.reindex(columns=COLUMNS + [c for c in df.columns if c not in COLUMNS])
    for k, v in metadata.items():
        df[k] = v
    return df


@cache
def paper_results() -> pd.DataFrame:
    """The published figures (paper Tables V-XI): benchmark, arch, layer, dataset, metric, value (the paper's
    percentages of the ``PERCENT`` benchmarks divided by 100: every value is on the scale our rows use)."""
    df = pd.read_csv(PAPER_CSV)
    df.loc[df["benchmark"].isin(PERCENT), "value"] /= 100
    return df


def with_paper_values(df: pd.DataFrame) -> pd.DataFrame:
    """Add a ``paper_value`` column: the published figure for rows with imagenet weights, else NaN."""
    paper = paper_results().rename(columns={"value": "paper_value", "dataset": "paper_dataset"})
    key = df.apply(lambda r: PAPER_DATASET.get((r["benchmark"], r["dataset"]), r["dataset"]), axis=1) if len(df) else []
    out = df.assign(paper_dataset=key).merge(
        paper, on=["benchmark", "arch", "layer", "paper_dataset", "metric"], how="left")
    out.loc[out["weights"] != "imagenet", "paper_value"] = float("nan")
    return out.drop(columns="paper_dataset")


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a CSV so that a crash leaves either the old file or the complete new one."""
    return atomic_write_text(path, df.to_csv(index=False))
