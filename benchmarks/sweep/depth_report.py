"""The depth study of a run with block taps (``--layers blocks``): per score, the score against the relative depth
of the tap (the rows' ``relative_depth``: MACs up to the tap / MACs of the trunk), one curve per architecture and
weights source, and "are the taps equivalent?": where along its depth each network is best, how that spreads over
the architectures, and how far each of the study's four taps E/S/M/L falls short of its network's best.

A curve is a *profile* when it has more than MIN_DEPTHS - 1 = 4 distinct depths (the four stage taps alone are no
profile); the sections are absent from a run without one. A ViT's class-token taps (E_cls ...) are left out: they
share their depth with the token-grid taps that its blocks and E ... L are. Scores are scores.py's (the paper's
scores of a benchmark that has any), over baseline rows (no learned channel weights), the mean over repeated rows
(seeds).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .report_format import Section, Table, column_decimals, slug
from .results import write_csv_atomic
from .scores import score_name, score_rows, sign, single_taps
from .weights_study import weights_source

MIN_DEPTHS = 5
CURVE = ["score", "arch", "weights"]
STAGES = ("E", "S", "M", "L")
CLASS_TOKEN = "_cls"  # the class-token forms of a ViT's stage taps: left out (the block taps are token grids)


def profiles(every: pd.DataFrame) -> pd.DataFrame:
    """Per score, architecture, weights source and tap: ``relative_depth``, ``value`` and ``signed`` (higher is
    better) and ``depths`` (its curve's number of distinct depths); the rows with a relative depth only."""
    cols = CURVE + ["benchmark", "paper_dataset", "metric", "layer", "relative_depth", "value", "signed", "depths"]
    if "relative_depth" not in every.columns:
        return pd.DataFrame(columns=cols)
    rows = single_taps(score_rows(every))
    rows = rows[~rows["layer"].astype(str).str.endswith(CLASS_TOKEN)]  # a ViT's E_cls shares E's depth
    rows = rows.assign(relative_depth=pd.to_numeric(rows["relative_depth"], errors="coerce"))
    rows = rows.dropna(subset=["relative_depth", "value"])
    if rows.empty:
        return pd.DataFrame(columns=cols)
    rows = rows.assign(score=score_name(rows), weights=weights_source(rows["weights"]))
    keys = CURVE + ["benchmark", "paper_dataset", "metric", "layer"]
    out = rows.groupby(keys, sort=False).agg(relative_depth=("relative_depth", "first"), value=("value", "mean"))
    out = out.reset_index()
    out["signed"] = out["value"] * sign(out["metric"])
    out["depths"] = out.groupby(CURVE)["relative_depth"].transform("nunique")
    return out.sort_values(CURVE + ["relative_depth"], kind="stable").reset_index(drop=True)[cols]


def stage_value(curve: pd.DataFrame, arch: str, stage: str) -> pd.Series | None:
    """The row of a curve for a stage tap: its own row (layer E), else a block tap at the same module path."""
    from lossnets.engine.catalog import taps
    hit = curve[curve["layer"] == stage]
    if hit.empty:
        module = next((t.module for t in taps(arch) if t.layer == stage), None)
        hit = curve[curve["layer"] == module]
    return None if hit.empty else hit.iloc[0]


def equivalence(prof: pd.DataFrame) -> pd.DataFrame:
    """Per profile (score, arch, weights): the best tap, its depth and value, and per stage tap ``X gap`` (best -
    stage, in the score's better direction: 0 where the stage is the best, else how much it loses) and ``X depth
    gap`` (stage depth - best depth: negative where the stage lies before the best)."""
    out = []
    for (score, arch, weights), curve in prof[prof["depths"] >= MIN_DEPTHS].groupby(CURVE, sort=False):
        best = curve.loc[curve["signed"].idxmax()]
        row = {"score": score, "arch": arch, "weights": weights, "taps": len(curve), "best tap": best["layer"],
               "best depth": best["relative_depth"], "best value": best["value"]}
        for stage in STAGES:
            hit = stage_value(curve, arch, stage)
            row[f"{stage} gap"] = best["signed"] - hit["signed"] if hit is not None else math.nan
            row[f"{stage} depth gap"] = hit["relative_depth"] - best["relative_depth"] if hit is not None else math.nan
        out.append(row)
    return pd.DataFrame(out)


def spread(eq: pd.DataFrame) -> pd.DataFrame:
    """Per score over its profiles: the best depth's min, quartiles, max and IQR, and each stage's median gap."""
    out = []
    for score, d in eq.groupby("score", sort=False):
        q = d["best depth"].quantile([0, 0.25, 0.5, 0.75, 1]).to_numpy()
        row = {"score": score, "profiles": len(d), "best depth min": q[0], "q1": q[1], "median": q[2], "q3": q[3],
               "max": q[4], "IQR": q[3] - q[1]}
        row.update({f"{s} median gap": d[f"{s} gap"].median() for s in STAGES})
        out.append(row)
    return pd.DataFrame(out)


def plot_profiles(prof: pd.DataFrame, out: Path) -> list[Path]:
    """One PNG per score with a profile: a panel per family (the architectures' curves, best depth starred),
    legends beside the panels, the y axis shared."""
    files = []
    for score, d in prof.groupby("score", sort=False):
        if d["depths"].max() < MIN_DEPTHS:
            continue
        path = out / f"depth_{slug(score)}.png"
        _plot_score(d[d["depths"] >= 2], score, path)
        files.append(path)
    return files


def _family(arch: str) -> str:
    from lossnets.engine.registry import zoo
    return zoo()[arch].family if arch in zoo() else arch


def _plot_score(d: pd.DataFrame, score: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    families = list(dict.fromkeys(d["arch"].map(_family)))
    ncols = min(3, len(families))
    nrows = math.ceil(len(families) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 2.9 * nrows), sharey=True, squeeze=False,
                             layout="constrained")
    several = d["weights"].nunique() > 1
    styles = {w: s for w, s in zip(d["weights"].unique(), ["-", "--", ":", "-."] * 8)}
    for ax, family in zip(axes.flat, families):
        fam = d[d["arch"].map(_family) == family]
        colors = plt.colormaps["tab10" if fam[["arch", "weights"]].drop_duplicates().shape[0] <= 10 else "tab20"]
        curves = list(fam.groupby(["arch", "weights"], sort=False))
        for i, ((arch, weights), c) in enumerate(curves):
            color = colors(i % colors.N)
            label = f"{arch} ({weights})" if several else arch
            ax.plot(c["relative_depth"], c["value"], ls=styles[weights], marker="o", ms=2.5, lw=1, color=color,
                    label=label)
            best = c.loc[c["signed"].idxmax()]
            ax.plot([best["relative_depth"]], [best["value"]], marker="*", ms=11, color=color, mec="k", mew=0.6)
            stages = c[c["layer"].isin(STAGES)]
            ax.plot(stages["relative_depth"], stages["value"], "s", ms=6, mfc="none", mec=color, mew=0.8)
            for _, st in stages.iterrows() if len(curves) == 1 else ():
                ax.annotate(st["layer"], (st["relative_depth"], st["value"]), xytext=(0, -10),
                            textcoords="offset points", ha="center", fontsize=7, color=color)
        ax.set_title(family, fontsize=9)
        ax.set_xlim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, borderaxespad=0)
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    fig.supxlabel("relative depth of the tap (MACs up to it / MACs of the trunk)", fontsize=9)
    fig.supylabel(d["metric"].iloc[0], fontsize=9)
    fig.suptitle(f"{score}: depth profile (star: the best tap; squares: the stage taps E, S, M, L)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def depth_sections(every: pd.DataFrame, out: Path, plots: bool = True) -> list[Section]:
    """The sections "Depth profiles" and "Are the taps equivalent?" (none without a profile); writes
    depth_profiles.csv, tap_equivalence.csv and depth_spread.csv."""
    prof = profiles(every)
    if prof.empty or prof["depths"].max() < MIN_DEPTHS:
        return []
    eq, files = equivalence(prof), plot_profiles(prof, out) if plots else []
    spr = spread(eq)
    write_csv_atomic(prof, out / "depth_profiles.csv")
    write_csv_atomic(eq, out / "tap_equivalence.csv")
    write_csv_atomic(spr, out / "depth_spread.csv")
    value = column_decimals(eq["best value"])  # the scores' precision for values and gaps alike
    places = {c: 2 if "depth" in c or c in ("q1", "median", "q3", "max", "IQR") else value
              for c in [*eq.columns, *spr.columns] if c not in CURVE}
    return [
        Section("Depth profiles", [
            "Per score, its value at every tap the run holds against the tap's relative depth (MACs up to the tap / "
            "MACs of the trunk at 224x224: 0 the input, 1 the trunk's end), one curve per architecture"
            + (" and weights source (line style)" if prof["weights"].nunique() > 1 else "")
            + ", a panel per family; the star marks the best tap, squares the stage taps E/S/M/L. Curves of fewer than "
            f"{MIN_DEPTHS} depths (the four stage taps alone) are drawn where a profile shares the panel; every "
            "point is in depth_profiles.csv."], list(files)),
        Section("Are the taps equivalent?", [
            "The study assumed its four taps E/S/M/L roughly equivalent across architectures. Per profile: the best "
            "tap (of ties the shallowest) and its relative depth; per stage tap `X gap` = best - stage value in the "
            "score's better direction (0: the stage is the best tap; larger: it loses more) and `X depth gap` = stage "
            "depth - best depth (negative: the stage lies before the best). Empty where the run did not score that "
            "stage. Also in tap_equivalence.csv.",
            "The spread over architectures (depth_spread.csv): the best depth's minimum, quartiles, maximum and IQR, "
            "and each stage's median gap. A narrow IQR says the networks are best at the same relative depth; small "
            "stage gaps say the study's taps lose little."],
            [Table(spr, places), Table(eq, places)]),
    ]
