"""The performance scores of a run's rows, shared by the report's sections (report.py and the modules beside it).

A *performance score* is one (benchmark, dataset, metric). Where the run holds scores that the paper reports (rows
name their benchmarks as the paper does, ``superres_x4``; its datasets mapped onto the paper's: similarity
``2afc/val`` -> ``bapps/2afc``, ``jnd/val`` -> ``bapps/jnd``; see ``results.py``), only those are ranked (so
per-subset rows do not outweigh the aggregate); a benchmark with no paper scores ranks all of its scores. A score's
``signed`` value is its value negated where lower is better, so that higher is better for every score.
"""
from __future__ import annotations

import pandas as pd

from .results import ROW_NAMES, paper_dataset, paper_results

LOWER_IS_BETTER = {"lpips", "mse", "loss", "error", "distance", "rmse"}
# the paper's benchmarks 1-4 in the order of its tables' columns (superres: x4 and x8 pooled, as in Table III)
BENCHMARK_ORDER = tuple(dict.fromkeys(group for group, _ in ROW_NAMES.values()))


def group_of(benchmark: str) -> str:
    """The paper's benchmark a row name belongs to (``superres_x8`` -> ``superres``); others their own."""
    return ROW_NAMES.get(benchmark, (benchmark, ""))[0]


def higher_is_better(metric: str) -> bool:
    return str(metric).lower() not in LOWER_IS_BETTER


def sign(metrics: pd.Series) -> pd.Series:
    """+1 where higher is better, -1 where lower is."""
    return metrics.map(lambda m: 1.0 if higher_is_better(m) else -1.0)


def with_paper_dataset(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``paper_dataset``: our dataset names mapped onto the paper table's."""
    return df.assign(paper_dataset=[paper_dataset(b, d) for b, d in zip(df["benchmark"], df["dataset"].astype(str))])


def score_name(df: pd.DataFrame) -> pd.Series:
    """A score's name as the report's tables print it: ``similarity bapps/2afc 2afc``."""
    return df["benchmark"].astype(str) + " " + df["paper_dataset"].astype(str) + " " + df["metric"].astype(str)


def score_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are ranked (see the module doc), with ``paper_dataset`` and ``group`` (the paper's benchmark,
    superres x4 and x8 pooled)."""
    df = with_paper_dataset(df)
    paper = paper_results()
    known = set(zip(paper["benchmark"], paper["dataset"], paper["metric"]))
    in_paper = pd.Series([k in known for k in zip(df["benchmark"], df["paper_dataset"], df["metric"])],
                         index=df.index, dtype=bool)
    has_paper = in_paper.groupby(df["benchmark"]).transform("any")
    out = df[in_paper | ~has_paper].copy()
    out["group"] = out["benchmark"].map(group_of)
    return out


def single_taps(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of single taps (tap sets such as ``lpips`` or ``kumar`` are no loss network of the paper's)."""
    from lossnets.engine.tap_sets import is_tap_set
    return df[~df["layer"].astype(str).map(is_tap_set)]


def best_per_arch(scores: pd.DataFrame) -> pd.DataFrame:
    """Per score and architecture the best single tap and its value (mean over repeated rows, e.g. seeds)."""
    scores = single_taps(scores)
    keys = ["group", "benchmark", "paper_dataset", "metric", "arch"]
    mean = scores.groupby(keys + ["layer"], sort=False)["value"].mean().reset_index()
    mean["signed"] = mean["value"] * sign(mean["metric"])
    mean = mean.dropna(subset=["signed"])
    idx = mean.groupby(keys, sort=False)["signed"].idxmax()
    return mean.loc[idx, keys + ["layer", "value", "signed"]].reset_index(drop=True)


def layer_sorted(layers) -> list[str]:
    """Tap names in the order E, S, M, L, then the others by name."""
    order = {k: i for i, k in enumerate("ESML")}
    return sorted(set(map(str, layers)), key=lambda x: (order.get(x, 9), x))


def arch_order() -> list[str]:
    """The study's 14 in the paper's order, then the rest of the zoo in torchvision's."""
    from lossnets.engine.registry import architectures, zoo
    return list(dict.fromkeys([*architectures(), *zoo()]))
