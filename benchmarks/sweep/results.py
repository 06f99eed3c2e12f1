"""The results schema: the tidy table every benchmark writes (its columns and the columns that key a row), the
benchmarks as rows name them, the paper's figures beside them (the one join of our rows onto the paper's), atomic
CSV writes. The sweep, the merge and the report read only this module for what a table holds."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import pandas as pd

from lossnets.engine.atomic import atomic_write_text

COLUMNS = ["benchmark", "arch", "layer", "weights", "dataset", "metric", "value"]
# written beside COLUMNS on every row a sweep writes: MACs up to the tap / MACs of the trunk (engine.relative_depth),
# empty for tap sets and ad-hoc module paths
RELATIVE_DEPTH = "relative_depth"
# written beside COLUMNS by some benchmarks, telling two rows of one (benchmark, ..., metric) apart: the run's seed
# and protocol (training benchmarks), the downstream MLP (autoencoder), the channel weights (similarity)
EXTRA_KEY_COLUMNS = ("seed", "protocol", "mlp", "lin")
# the benchmarks as rows name them, in the paper's order -> (the paper's benchmark, the appendix tables with its
# figures); the paper's benchmark 2 is super-resolution at two scales, pooled in its ranking (Table III)
ROW_NAMES = {"similarity": ("similarity", "Table V"), "superres_x4": ("superres", "Tables VI-IX"),
             "superres_x8": ("superres", "Tables VI-IX"), "segmentation": ("segmentation", "Table X"),
             "autoencoder": ("autoencoder", "Table XI")}
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


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that identify a row of ``df``: COLUMNS without value, and those of EXTRA_KEY_COLUMNS it has."""
    return [c for c in COLUMNS if c != "value"] + [c for c in EXTRA_KEY_COLUMNS if c in df.columns]


def paper_dataset(benchmark: str, dataset: str) -> str:
    """The paper table's name of one of our datasets."""
    return PAPER_DATASET.get((benchmark, dataset), dataset)


def paper_values(df: pd.DataFrame) -> pd.Series:
    """The published figure of each row of ``df`` (same benchmark, architecture, tap, dataset and metric), NaN where
    the paper reports none."""
    if df.empty:
        return pd.Series(index=df.index, dtype=float)
    paper = paper_results().set_index(["benchmark", "arch", "layer", "dataset", "metric"])["value"]
    keys = pd.MultiIndex.from_arrays([df["benchmark"].astype(str), df["arch"].astype(str), df["layer"].astype(str),
                                      [paper_dataset(b, d) for b, d in zip(df["benchmark"], df["dataset"].astype(str))],
                                      df["metric"].astype(str)])
    return pd.Series(paper.reindex(keys).to_numpy(), index=df.index, dtype=float)


def baseline(df: pd.DataFrame) -> pd.Series:
    """Which rows are scored without learned channel weights (``lin`` "none" or absent): what the paper reports."""
    if "lin" not in df.columns:
        return pd.Series(True, index=df.index)
    return df["lin"].fillna(BASELINE).astype(str) == BASELINE


def with_relative_depth(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a RELATIVE_DEPTH column from each row's arch and layer, unless it has one."""
    from lossnets.engine import relative_depth
    if RELATIVE_DEPTH in df.columns:
        return df
    depths = [relative_depth(a, layer) for a, layer in zip(df["arch"].astype(str), df["layer"].astype(str))]
    return df.assign(**{RELATIVE_DEPTH: pd.Series(depths, index=df.index, dtype=float)})


def with_paper_values(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``paper_value`` column: the published figure beside baseline rows with imagenet weights."""
    comparable = (df["weights"].astype(str) == "imagenet") & baseline(df)
    return df.assign(paper_value=paper_values(df).where(comparable))


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a CSV so that a crash leaves either the old file or the complete new one."""
    return atomic_write_text(path, df.to_csv(index=False))
