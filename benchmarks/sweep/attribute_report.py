"""The study's Table III attributes against score, with the zoo's larger sample: per ranked score (scores.py) and
attribute (skip connections, branching, 1x1 convolutions, batch norm; engine/attributes.py), the architectures'
best-tap values with the attribute against those without: the means, the counts, their difference and the
two-sided Mann-Whitney U test's p-value (scipy), for the study's 14 and for every architecture of the run.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy.stats import mannwhitneyu

from .report_format import Section, Table, column_decimals, p_value
from .results import write_csv_atomic
from .scores import best_per_arch, score_name, score_rows

MEANS = ("with mean", "without mean", "difference")


def attribute_table(main: pd.DataFrame) -> pd.DataFrame:
    """One row per score, set of architectures and attribute (see the module doc)."""
    from lossnets.engine.attributes import ATTRIBUTES, attributes
    from lossnets.engine.registry import architectures
    scores = score_rows(main)
    if scores.empty:
        return pd.DataFrame()
    best = best_per_arch(scores)
    best["score"] = score_name(best)
    out = []
    for score, d in best.groupby("score", sort=False):
        d = d.assign(**{a: d["arch"].map(lambda x, a=a: attributes(x)[a]) for a in ATTRIBUTES})
        study = d["arch"].isin(list(architectures()))
        sets = [("the study's 14", d[study])] + ([("every architecture", d)] if not study.all() else [])
        for name, s in sets:
            for a in ATTRIBUTES:
                out.append({"score": score, "architectures of": name, "attribute": a, **compare(s, a)})
    return pd.DataFrame(out)


def compare(d: pd.DataFrame, attribute: str) -> dict:
    """Means and counts of ``value`` with and without the attribute, the difference and Mann-Whitney's p (NaN
    unless both sides have an architecture)."""
    yes, no = d.loc[d[attribute], "value"], d.loc[~d[attribute], "value"]
    p = mannwhitneyu(yes, no, alternative="two-sided").pvalue if len(yes) and len(no) else math.nan
    return {"with mean": yes.mean(), "with n": len(yes), "without mean": no.mean(), "without n": len(no),
            "difference": yes.mean() - no.mean(), "p": float(p)}


def attribute_section(main: pd.DataFrame, out: Path) -> list[Section]:
    """The section "Attributes against score" (none without ranked scores); writes attributes.csv."""
    table = attribute_table(main)
    if table.empty:
        return []
    write_csv_atomic(table, out / "attributes.csv")
    places = column_decimals(pd.concat([table[c] for c in MEANS[:2]]))
    return [Section("Architecture attributes against score (paper Table III's attributes)", [
        "Per score, each architecture by its best tap's value: the mean of those with the attribute against those "
        "without (`difference` = with - without, in the metric's units and direction), and the two-sided "
        "Mann-Whitney U test's `p` (no correction for the many tests). Attributes: engine/data/zoo_attributes.csv "
        "(batch norm: an nn.BatchNorm layer; 1x1 conv: an nn.Conv2d with a 1x1 kernel, read from the model; skip "
        "connections and branching per family, see engine/data/make_attributes.py); the study's own values for "
        "its 14. Architectures are not independent samples (a family shares its design), so read p as a guide. "
        "Also in attributes.csv."], [Table(table.assign(p=table["p"].map(p_value)), dict.fromkeys(MEANS, places))])]
