"""ImageNet accuracy against perceptual score, Kumar et al. (2022)'s figure, over every (architecture, recipe) a run
scored: does a better classifier make a better perceptual metric?

The score is Kumar et al.'s Perceptual Score: the rows of the tap-set preset ``kumar`` (the mean ensemble of the
four stage taps), metric ``perceptual_score`` on ``2afc/val`` (100 x BAPPS val 2AFC). A run without them falls back
to each network's best single tap on BAPPS val 2AFC, x 100 (the study's protocol, not Kumar's: the section says
which it shows). The accuracy is the recipe's ImageNet top-1 (``get_architecture(arch).recipe(weights).acc1``):
rows of random or file weights have no recipe and are left out, as recipes without a published top-1.

Marked: the Pareto frontier (the points that no other point beats on both accuracy and score). Spearman's rho with
a 95 % confidence interval by a percentile bootstrap over architectures (an architecture's recipes are resampled
together, since they share one network; BOOTSTRAP resamples, seed SEED), for the study's 14 and for every
architecture of the run.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from .report_format import Section, Table, p_value
from .results import write_csv_atomic
from .scores import single_taps

BOOTSTRAP, SEED = 2000, 0
TITLE = "ImageNet accuracy against perceptual score (Kumar et al. 2022)"
POINTS = ["arch", "weights", "recipe", "family", "study", "acc1", "perceptual_score", "frontier"]


def perceptual_scores(every: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per (arch, weights) the perceptual score (mean over repeated rows) and which score it is: the ``kumar``
    rows, else the best single tap's 2AFC x 100 (see the module doc)."""
    from lossnets.engine.tap_sets import KUMAR_PRESET as layer
    from ..similarity.benchmark import BENCHMARK as bench
    from ..similarity.scoring import PERCEPTUAL_SCORE as metric
    dataset = "2afc/val"
    rows = every[(every["benchmark"] == bench) & (every["dataset"].astype(str) == dataset)]
    kumar = rows[(rows["layer"].astype(str) == layer) & (rows["metric"] == metric)]
    if len(kumar):
        out = kumar.groupby(["arch", "weights"], sort=False)["value"].mean()
        return out.rename("perceptual_score").reset_index(), "kumar"
    taps = single_taps(rows[rows["metric"] == "2afc"])
    if taps.empty:
        return pd.DataFrame(columns=["arch", "weights", "perceptual_score"]), "best tap"
    best = taps.groupby(["arch", "weights", "layer"], sort=False)["value"].mean().groupby(["arch", "weights"]).max()
    return (100 * best).rename("perceptual_score").reset_index(), "best tap"


def points(scores: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The figure's points (POINTS columns), one per (arch, recipe), and how many (arch, weights) had no recipe
    accuracy (left out)."""
    from lossnets.engine.registry import get_architecture
    rows, left_out = [], 0
    for r in scores.itertuples(index=False):
        a = get_architecture(r.arch)
        recipe = a.recipe(str(r.weights))
        if recipe is None or not math.isfinite(recipe.acc1):
            left_out += 1
            continue
        rows.append({"arch": r.arch, "weights": r.weights, "recipe": recipe.name, "family": a.family,
                     "study": a.study, "acc1": recipe.acc1, "perceptual_score": r.perceptual_score})
    out = pd.DataFrame(rows, columns=POINTS[:-1])
    if len(out):  # two specs of one recipe (imagenet, imagenet:IMAGENET1K_V1) are one point
        first = dict.fromkeys(["weights", "family", "study", "acc1"], "first")
        out = out.groupby(["arch", "recipe"], sort=False).agg({**first, "perceptual_score": "mean"}).reset_index()
        out = out[POINTS[:-1]]
    out["frontier"] = pareto(out["acc1"], out["perceptual_score"])
    return out.sort_values(["acc1", "perceptual_score"], ascending=False).reset_index(drop=True), left_out


def pareto(x: pd.Series, y: pd.Series) -> pd.Series:
    """Whether each point is on the Pareto frontier of (max x, max y): no other point has x and y at least as
    high and one of them higher."""
    xv, yv = x.to_numpy(float), y.to_numpy(float)
    dominated = [bool(np.any((xv >= a) & (yv >= b) & ((xv > a) | (yv > b)))) for a, b in zip(xv, yv)]
    return pd.Series(~np.array(dominated, dtype=bool), index=x.index)


def rho_with_ci(pts: pd.DataFrame) -> dict:
    """Spearman's rho of acc1 against perceptual_score, its p-value and a 95 % bootstrap interval over the
    architectures (see the module doc); NaN with fewer than three architectures."""
    archs = pts["arch"].unique()
    row = {"architectures": len(archs), "points": len(pts), "rho": math.nan, "p": math.nan, "ci_low": math.nan,
           "ci_high": math.nan}
    if len(archs) < 3:
        return row
    res = spearmanr(pts["acc1"], pts["perceptual_score"])
    row.update(rho=float(res.statistic), p=float(res.pvalue))
    lo, hi = np.nanpercentile(bootstrap_rhos(pts), [2.5, 97.5])
    row.update(ci_low=float(lo), ci_high=float(hi))
    return row


def bootstrap_rhos(pts: pd.DataFrame) -> np.ndarray:
    """Spearman's rho of BOOTSTRAP resamples of the architectures (with replacement, each with all its points), all
    at once: the points of a resample padded with NaN to one length, rho as Pearson's r of the ranks (NaN where a
    resample is constant)."""
    per_arch = [g[["acc1", "perceptual_score"]].to_numpy(float) for _, g in pts.groupby("arch", sort=False)]
    width = max(len(g) for g in per_arch)
    padded = np.full((len(per_arch), width, 2), np.nan)
    for i, g in enumerate(per_arch):
        padded[i, :len(g)] = g
    draw = np.random.default_rng(SEED).integers(0, len(per_arch), (BOOTSTRAP, len(per_arch)))
    sample = padded[draw].reshape(BOOTSTRAP, -1, 2)
    ranks = [rankdata(sample[..., k], axis=1, nan_policy="omit") for k in (0, 1)]
    centred = [r - np.nanmean(r, axis=1, keepdims=True) for r in ranks]
    cov = np.nansum(centred[0] * centred[1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(np.nansum(centred[0] ** 2, axis=1) * np.nansum(centred[1] ** 2, axis=1))


def correlations(pts: pd.DataFrame) -> pd.DataFrame:
    """rho_with_ci for the study's 14 and for every architecture of the run (the latter only where it has more)."""
    sets = [("the study's 14", pts[pts["study"].astype(bool)])]
    if not pts["study"].astype(bool).all():
        sets.append(("every architecture", pts))
    return pd.DataFrame([{"architectures of": name, **rho_with_ci(p)} for name, p in sets])


def plot(pts: pd.DataFrame, which: str, rho: pd.DataFrame, path: Path) -> Path:
    """Accuracy against score, the study's 14 filled and the zoo's others hollow, the frontier as a step line, rho
    in the title; names on the frontier and the extremes where they fit (labels.py)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from .labels import place_labels
    fig, ax = plt.subplots(figsize=(7.5, 5))
    study = pts["study"].astype(bool)
    ax.scatter(pts.loc[study, "acc1"], pts.loc[study, "perceptual_score"], s=18, c="C0", label="the study's 14")
    ax.scatter(pts.loc[~study, "acc1"], pts.loc[~study, "perceptual_score"], s=18, facecolors="none",
               edgecolors="C1", label="the rest of the zoo")
    front = pts[pts["frontier"]].sort_values("acc1")
    ax.step(front["acc1"], front["perceptual_score"], where="pre", c="C3", lw=1, label="Pareto frontier")
    ax.set(xlabel="ImageNet top-1 of the recipe (%)",
           ylabel="Perceptual Score (Kumar mean ensemble)" if which == "kumar" else "100 x 2AFC (best single tap)",
           title="ImageNet accuracy against perceptual score\n" + "; ".join(
               f"{r['architectures of']}: rho {r['rho']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
               for _, r in rho.iterrows()))
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    extremes = [pts["acc1"].idxmax(), pts["acc1"].idxmin(), pts["perceptual_score"].idxmax(),
                pts["perceptual_score"].idxmin()]
    order = list(dict.fromkeys([*front.index[::-1], *extremes]))
    names = [_label(pts.loc[i]) for i in order]
    place_labels(ax, pts.loc[order, "acc1"], pts.loc[order, "perceptual_score"], names,
                 points=(pts["acc1"], pts["perceptual_score"]))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label(r: pd.Series) -> str:
    from lossnets.engine.registry import get_architecture
    several = len(get_architecture(r["arch"]).recipes) > 1
    return f"{r['arch']} {r['recipe']}" if several else str(r["arch"])


def kumar_section(every: pd.DataFrame, out: Path, plots: bool = True) -> list[Section]:
    """The section "ImageNet accuracy against perceptual score" (none without BAPPS val 2AFC rows); writes
    kumar_points.csv and kumar_rho.csv."""
    scores, which = perceptual_scores(every)
    if scores.empty:
        return []
    pts, left_out = points(scores)
    source = ("Kumar et al.'s Perceptual Score: the `kumar` mean ensemble of the four stage taps, 100 x BAPPS val "
              "2AFC" if which == "kumar" else "the run has no `kumar` rows (run `--layers kumar` for Kumar et al.'s "
              "mean ensemble): each network's best single tap on BAPPS val 2AFC, x 100, stands in for it")
    text = [f"Score: {source}. Accuracy: the ImageNet top-1 of the weights' recipe; one point per (architecture, "
            "recipe). The Pareto frontier (`frontier`) holds the points that no other beats on both. Spearman's rho "
            f"with a 95 % interval from a percentile bootstrap over architectures ({BOOTSTRAP} resamples, seed "
            f"{SEED}; an architecture's recipes are drawn together); `p` is scipy's for rho = 0. Names label the "
            "frontier and the extremes where they fit; every point is in the table (kumar_points.csv)."]
    if left_out:
        text.append(f"Left out: {left_out} (architecture, weights) with no recipe accuracy (random or file weights, "
                    "or a recipe without a published top-1): a network that was not trained on ImageNet has no "
                    "ImageNet accuracy to plot.")
    if pts.empty:
        text.append("No point to plot; the scores:")
        return [Section(TITLE, text, [Table(scores, {"perceptual_score": 2})])]
    write_csv_atomic(pts, out / "kumar_points.csv")
    rho = correlations(pts)
    write_csv_atomic(rho, out / "kumar_rho.csv")
    items = [plot(pts, which, rho, out / "kumar_accuracy_score.png")] if plots else []
    items += [Table(rho.assign(p=rho["p"].map(p_value)), {"rho": 3, "ci_low": 3, "ci_high": 3}),
              Table(pts, {"acc1": 2, "perceptual_score": 2})]
    return [Section(TITLE, text, items)]
