"""The report of a run: architecture ranking (paper Table III), best tap (Table IV), the per-benchmark tables
(V-XI), metric against ImageNet accuracy and against MACs (Figs. 4-5), the weights study, the learned metric, the
depth study (depth_report.py), Kumar et al.'s accuracy against perceptual score (kumar_report.py), the Table III
attributes against score (attribute_report.py), and every figure beside the published one.

``write_report(RUN_DIR)`` writes ``RUN_DIR/report/``: report.md and report.html (the same sections, one
description: report_format.py), ranking.csv, best_tap.csv, comparison.csv, the new sections' CSVs and the PNG plots.

Scores: see scores.py (only the paper's scores of a benchmark that has any are ranked).

Ranking rule (the paper's Table III, Sec. V-A). For each score, each architecture is represented by its
best extraction layer (highest value; lowest for error-like metrics), and architectures are ranked
1 (best) to N; ties share the mean rank. An architecture's rank for a benchmark is the mean of its
ranks over that benchmark's scores (the paper's Benchmark 2 pools superres x4 and x8, 12 scores);
``all`` is the mean over benchmarks, each weighted equally (left empty for an architecture that did not
run every benchmark of the table). The paper's ranking is computed the same way from ``paper_results()``
over the same cells (score, architecture, tap) as the run, and shown beside ours. The best-tap table
shows the paper's best of all four taps (its Table IV).
"""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .report_format import Section, Table, column_decimals, inline_html, number, slug, to_html, to_markdown
from .results import ROW_NAMES, baseline, paper_results, paper_values, write_csv_atomic
from .scores import (BENCHMARK_ORDER, arch_order, best_per_arch, group_of, layer_sorted, score_name, score_rows, sign,
                     single_taps)
from .weights_study import is_random, random_minus_imagenet, rank_agreement, scheme_ranks, seed_cells, weights_source

KEY = ["benchmark", "arch", "layer", "dataset", "metric"]
RANK_DECIMALS = 2  # mean ranks, in every table


def load_table(run_dir) -> pd.DataFrame:
    """RUN_DIR/results.csv (rebuilt from the cells when missing), or a CSV file path."""
    p = Path(run_dir)
    if p.is_file():
        return pd.read_csv(p)
    if not (p / "results.csv").is_file():
        from .cells import RunFolder
        return RunFolder(p).write_table()
    return pd.read_csv(p / "results.csv")


def compare(df: pd.DataFrame) -> pd.DataFrame:
    """Every row beside the published figure: ``paper_value`` and ``difference`` (ours - paper), and
    ``comparable`` (ImageNet weights and real data; otherwise the difference is no test of anything)."""
    out = df.drop(columns=["paper_value", "difference", "comparable"], errors="ignore")
    out = out.assign(paper_value=paper_values(out))
    out["difference"] = out["value"] - out["paper_value"]
    out["comparable"] = (out["weights"].astype(str) == "imagenet") & ~_synthetic_rows(out)
    return out


def _synthetic_rows(df: pd.DataFrame) -> pd.Series:
    s = pd.Series(False, index=df.index)
    if "data" in df.columns:
        s |= df["data"].astype(str).str.lower().eq("synthetic")
    return s


def ranking(df: pd.DataFrame, *, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean rank per architecture and benchmark group, and ``all`` (see the module doc); sorted by ``all``."""
    scores = score_rows(df) if scores is None else scores
    if scores.empty:
        return pd.DataFrame(columns=["arch", "all"])
    best = best_per_arch(scores)
    best["rank"] = best.groupby(["group", "benchmark", "paper_dataset", "metric"])["signed"].rank(
        ascending=False, method="average")
    per = best.groupby(["arch", "group"])["rank"].mean().unstack("group")
    order = {g: i for i, g in enumerate(BENCHMARK_ORDER)}
    groups = sorted(dict.fromkeys(scores["group"]), key=lambda g: order.get(g, len(order)))
    per = per.reindex(columns=groups)
    per["all"] = per.mean(axis=1, skipna=False)  # only for architectures that ran every benchmark
    return per.sort_values(["all", *groups], na_position="last").rename_axis(columns=None).reset_index()


def paper_ranking(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's ranking computed the same way, over the run's (score, architecture, tap) cells."""
    ours = score_rows(df)
    paper = paper_results().rename(columns={"dataset": "paper_dataset"})
    keys = set(zip(ours["benchmark"], ours["paper_dataset"], ours["metric"], ours["arch"], ours["layer"]))
    wanted = np.array([k in keys for k in zip(paper["benchmark"], paper["paper_dataset"], paper["metric"],
                                              paper["arch"], paper["layer"])], dtype=bool)
    sel = paper[wanted].copy()
    if sel.empty:
        return pd.DataFrame(columns=["arch", "all"])
    sel["group"] = sel["benchmark"].map(group_of)
    return ranking(sel, scores=sel)


def best_taps(df: pd.DataFrame) -> pd.DataFrame:
    """Table IV: per architecture (rows) and score (columns) the best tap, ours and the paper's."""
    scores = score_rows(df)
    if scores.empty:
        return pd.DataFrame(columns=["arch"])
    ours = best_per_arch(scores)
    ours["score"] = score_name(ours)
    table = ours.pivot(index="arch", columns="score", values="layer")
    paper = paper_results().rename(columns={"dataset": "paper_dataset"})
    paper["group"] = paper["benchmark"].map(group_of)
    pbest = best_per_arch(paper)
    pbest["score"] = score_name(pbest)
    pbest = pbest[pbest["score"].isin(table.columns) & pbest["arch"].isin(table.index)]
    ptable = pbest.pivot(index="arch", columns="score", values="layer")
    for col in ptable.columns:
        table[col] = [f"{o if isinstance(o, str) else '-'} (paper {p})" if isinstance(p, str) else o
                      for o, p in zip(table[col], ptable[col].reindex(table.index))]
    table = table.reindex(index=[a for a in arch_order() if a in table.index])
    return table.rename_axis(index="arch", columns=None).reset_index()


def benchmark_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The paper's per-benchmark tables (V-XI): per ranked score, architectures (rows) by taps (columns), each
    cell ``ours (paper)`` (the mean over repeated rows; over several seeds ``mean ± std (n=seeds)`` of the seeds'
    means; the paper's figure where it reports one), every number of a table at one precision. Block taps are left
    to the depth profiles (their module paths differ per architecture: a column each would be mostly empty)."""
    scores = score_rows(df)
    paper = paper_results().set_index(["benchmark", "dataset", "metric", "arch", "layer"])["value"]
    tables, layers = {}, layer_sorted(scores["layer"])
    order = {b: i for i, b in enumerate(ROW_NAMES)}
    scores = scores.sort_values("benchmark", key=lambda b: b.map(lambda x: order.get(x, len(order))), kind="stable")
    for (pb, pd_, metric), s in scores.groupby(["benchmark", "paper_dataset", "metric"], sort=False):
        seeds = s["seed"] if "seed" in s.columns else pd.Series(0, index=s.index)
        per_seed = s.assign(seed=seeds).groupby(["arch", "layer", "seed"])["value"].mean()
        stats = per_seed.groupby(["arch", "layer"]).agg(["mean", "std", "count"])
        places = column_decimals(stats["mean"])
        cells = {}
        for (arch, layer), (v, sd, n) in stats.iterrows():
            ref = paper.get((pb, pd_, metric, arch, layer))
            spread = f" ± {number(sd, places)} (n={int(n)})" if n > 1 else ""
            cells[arch, layer] = number(v, places) + spread + (f" ({number(ref, places)})" if ref is not None else "")
        table = pd.Series(cells).unstack()
        table = table.reindex(index=[a for a in arch_order() if a in table.index],
                              columns=[x for x in layers if x in table.columns]).fillna("-")
        tables[f"{ROW_NAMES.get(pb, ('', pb))[1]}: {pb} {pd_} {metric}"] = table.rename_axis(
            index="arch", columns=None).reset_index()
    return tables


def block_taps(df: pd.DataFrame) -> pd.Series:
    """Which rows are of a block tap (``--layers blocks``) that is no stage tap (those keep their letter)."""
    from lossnets.engine.catalog import blocks
    paths = {a: {t.layer for t in blocks(a)} for a in df["arch"].astype(str).unique()}
    return pd.Series([lay in paths[a] for a, lay in zip(df["arch"].astype(str), df["layer"].astype(str))],
                     index=df.index, dtype=bool)


def primary_weights(df: pd.DataFrame) -> str:
    """The weights source the ranking and the per-benchmark tables show: ImageNet where the run has it, else the
    first source of the table (a run with several compares them in "Architecture against weights")."""
    sources = list(dict.fromkeys(weights_source(df["weights"])))
    return "imagenet" if "imagenet" in sources else sources[0]


def weights_study(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The section "Architecture against weights" (``weights_study``) of a run with several weights sources or
    seeds: its tables by name, none for a run with one source and one seed."""
    rows = single_taps(score_rows(df))
    seeds = rows["seed"] if "seed" in rows.columns else pd.Series(0, index=rows.index)
    if rows.empty or (weights_source(rows["weights"]).nunique() < 2 and seeds.nunique() < 2):
        return {}
    rows = rows.assign(score=score_name(rows), signed=rows["value"] * sign(rows["metric"]), seed=seeds)
    cells = seed_cells(rows)
    tables = {"seeds": cells[is_random(cells["source"])].drop(columns="signed"),
              "random_minus_imagenet": random_minus_imagenet(cells), "rank_agreement": rank_agreement(rows),
              "scheme_ranks": scheme_ranks(cells)}
    return {k: v for k, v in tables.items() if not v.empty}


def baseline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows scored without learned channel weights (``lin`` "none" or absent): what the paper reports."""
    return df[baseline(df)]


def learned_metric(df: pd.DataFrame) -> pd.DataFrame:
    """Per loss network (architecture, tap or tap set) with lin weights: BAPPS val 2AFC and JND of the baseline
    and of the weighted (learned, or shipped) metric side by side, and which weights those were."""
    if "lin" not in df.columns:
        return pd.DataFrame()
    sim = df[(df["benchmark"] == "similarity") & df["dataset"].isin(["2afc/val", "jnd/val"])
             & df["metric"].isin(["2afc", "jnd_map"])]  # not kumar's perceptual_score (100 x its 2afc/val)
    sim = sim.assign(lin=sim["lin"].fillna("none").astype(str))
    weighted = sim[~baseline(sim)]
    if weighted.empty:
        return pd.DataFrame()
    keys = ["arch", "layer", "dataset"]
    base = sim[baseline(sim)].groupby(keys)["value"].mean().rename("baseline")
    rows = weighted.groupby(keys + ["lin"])["value"].mean().rename("weighted").reset_index()
    rows = rows.join(base, on=keys)
    rows["gain"] = rows["weighted"] - rows["baseline"]
    table = rows.pivot_table(index=["arch", "layer", "lin"], columns="dataset", values=["baseline", "weighted", "gain"])
    table.columns = [f"{d} {v}" for v, d in table.columns]
    cols = [f"{d} {v}" for d in ("2afc/val", "jnd/val") for v in ("baseline", "weighted", "gain")]
    table = table.reindex(columns=[c for c in cols if c in table.columns]).reset_index()
    order = {**{a: i for i, a in enumerate(arch_order())}, **{k: i for i, k in enumerate(layer_sorted(table["layer"]))}}
    return table.sort_values(["arch", "layer"], key=lambda c: c.map(order)).reset_index(drop=True)


# -------------------------------------------------------------------------------------------- plots


def tap_macs(pairs, size: int = 224) -> pd.DataFrame:
    """MACs at ``size`` up to each (architecture, tap or tap set) of ``pairs`` (the engine's static profiler, on
    the meta device)."""
    from lossnets.engine.profiler import macs_to_taps
    from lossnets.engine.tap_sets import tap_set
    rows = [{"arch": a, "layer": lay, "macs": float(macs_to_taps(a, tap_set(a, lay).layers, size))}
            for a, lay in pairs]
    return pd.DataFrame(rows, columns=["arch", "layer", "macs"])


def _macs_cached(df: pd.DataFrame, out: Path) -> pd.DataFrame:
    """tap_macs for the run's taps, kept in OUT/macs.csv so that a second report does not profile again."""
    want = set(zip(df["arch"].astype(str), df["layer"].astype(str)))
    path = out / "macs.csv"
    have = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["arch", "layer", "macs"])
    missing = want - set(zip(have["arch"].astype(str), have["layer"].astype(str)))
    if missing:
        new = tap_macs(sorted(missing))
        have = pd.concat([have, new], ignore_index=True) if len(have) else new
        write_csv_atomic(have, path)
    return have


def plot_scores(df: pd.DataFrame, out: Path, macs: pd.DataFrame | None = None) -> list[Path]:
    """Per ranked score: metric against MACs per loss network (Fig. 4) and the best tap per
    architecture against ImageNet top-1 (Fig. 5), the paper's figures in grey beside ours."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from lossnets.engine.profiler import MANY, arch_color, legend_labels
    scores = score_rows(df)
    if scores.empty:
        return []
    if macs is None:
        macs = tap_macs(sorted(set(zip(scores["arch"], scores["layer"]))))
    paper = paper_results()
    files = []
    for (pb, pd_, metric), s in scores.groupby(["benchmark", "paper_dataset", "metric"], sort=False):
        pts = s.groupby(["arch", "layer"])["value"].mean().reset_index().merge(macs, on=["arch", "layer"], how="left")
        pts = pts.sort_values(["arch", "macs"])
        ref = paper[(paper["benchmark"] == pb) & (paper["dataset"] == pd_) & (paper["metric"] == metric)
                    & paper["arch"].isin(set(pts["arch"]))].merge(macs, on=["arch", "layer"], how="left")
        fig, ax = plt.subplots(figsize=(7, 4.5))
        if len(ref):
            ax.scatter(ref["macs"], ref["value"], facecolors="none", edgecolors="0.6", label="paper (ImageNet weights)")
        labels = legend_labels(pts["arch"])  # by family beyond MANY architectures
        for arch, g in pts.groupby("arch", sort=False):
            ax.plot(g["macs"], g["value"], "o-", ms=4, lw=0.8, label=labels[arch],
                    color=arch_color(arch, len(labels) > MANY))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set(xlabel="MACs up to the tap at 224x224", ylabel=metric, title=f"{pb} {pd_}: {metric} against MACs")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        f1 = out / f"macs_{slug(pb, pd_, metric)}.png"
        fig.savefig(f1, dpi=110)
        plt.close(fig)
        f2 = out / f"imagenet_{slug(pb, pd_, metric)}.png"
        _plot_imagenet(s, ref, f2, (pb, pd_, metric))
        files += [f1, f2]
    return files


def _plot_imagenet(s: pd.DataFrame, ref: pd.DataFrame, path: Path, score: tuple[str, str, str]) -> None:
    """Fig. 5 of one score: the best tap per architecture against the ImageNet top-1 of the architecture's recipe
    that ``imagenet`` names; names where they fit (labels.py), the best and worst architectures first."""
    import matplotlib.pyplot as plt

    from lossnets.engine.registry import zoo

    from .labels import place_labels
    archs = zoo()
    top1 = lambda a: archs[a].imagenet_top1 if a in archs else math.nan  # noqa: E731
    best = best_per_arch(s)
    best["top1"] = best["arch"].map(top1)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if len(ref):
        rb = best_per_arch(ref.rename(columns={"dataset": "paper_dataset"}).assign(group=score[0]))
        rb["top1"] = rb["arch"].map(top1)
        ax.scatter(rb["top1"], rb["value"], facecolors="none", edgecolors="0.6", label="paper (ImageNet weights)")
    ax.scatter(best["top1"], best["value"], c="C0", s=14, label="this run")
    ax.set(xlabel="ImageNet top-1 (%)", ylabel=f"{score[2]} (best tap)",
           title=f"{score[0]} {score[1]}: best tap against ImageNet accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ranked = best.dropna(subset=["top1"]).sort_values("signed", ascending=False)
    order = list(dict.fromkeys([*ranked.index[:3], *ranked.index[::-1][:3], *ranked.index]))
    pick = ranked.loc[order]
    place_labels(ax, pick["top1"], pick["value"], pick["arch"] + " " + pick["layer"].astype(str),
                 points=(np.r_[best["top1"], rb["top1"] if len(ref) else []],
                         np.r_[best["value"], rb["value"] if len(ref) else []]))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ writing


def caveats(df: pd.DataFrame) -> list[str]:
    """What makes this run's numbers incomparable with the paper's, one line each."""
    out = []
    weights = sorted(set(df["weights"].astype(str))) if len(df) else []
    if any(w != "imagenet" for w in weights):
        out.append(f"This run used weights {', '.join(weights)}, NOT the ImageNet weights of the paper: "
                   "its numbers say nothing about the published loss networks.")
    if _synthetic_rows(df).any():
        bench = sorted(set(df.loc[_synthetic_rows(df), "benchmark"]))
        out.append(f"This run used SYNTHETIC data ({', '.join(bench)}): sets that lossnets made from bundled photos "
                   "(synthetic judgments), not the benchmark data sets; the figures test the machinery, not the "
                   "networks.")
    return out


def write_report(run_dir, out=None, *, plots: bool = True) -> Path:
    """Write the report of a run (or of a results CSV) to ``out`` (default RUN_DIR/report)."""
    run_dir = Path(run_dir)
    df = load_table(run_dir)
    out = Path(out) if out else (run_dir.parent if run_dir.is_file() else run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    if df.empty:
        raise ValueError(f"{run_dir} holds no finished cells: nothing to report")
    every = baseline_rows(df)  # of every weights source; the tables below show one (see primary_weights)
    primary = primary_weights(every)
    main = every[weights_source(every["weights"]) == primary]
    main = main[~block_taps(main)]  # the paper's tables rank the stage taps; block taps go to the depth study
    warn = caveats(every)
    intro = (f"Run: `{run_dir}`; {len(every)} rows; benchmarks {', '.join(sorted(set(every['benchmark'])))}; "
             f"{every['arch'].nunique()} architectures; taps {_taps_line(every['layer'])}; weights "
             f"{', '.join(dict.fromkeys(weights_source(every['weights'])))}. The ranking and the per-benchmark "
             f"tables show weights `{primary}` (repeated rows, e.g. seeds, as mean ± std (n)).")
    files = plot_scores(main, out, macs=_macs_cached(main, out)) if plots else []
    sections = [*_paper_sections(df, every, main, out, files), *_study_sections(every, main, out, plots),
                _comparison_section(every, out)]
    md = ["# lossnets report", ""] + [line for w in warn for line in (f"> **WARNING: {w}**", ">")]
    md += ([""] if warn else []) + [intro, ""] + to_markdown(sections)
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text("\n".join(
        [HTML_HEAD, "<h1>lossnets report</h1>", *[f"<p class='warn'>WARNING: {html.escape(w)}</p>" for w in warn],
         f"<p>{inline_html(intro)}</p>", *to_html(sections)]))
    return out


HTML_HEAD = ("<!doctype html><meta charset='utf-8'><title>lossnets report</title>"
             "<style>body{font-family:sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;"
             "font-size:12px;margin:0.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px}"
             "th{background:#f3f3f3;text-align:left}td{font-variant-numeric:tabular-nums}img{max-width:100%}"
             ".figures{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}.figures img{max-width:49%}"
             ".figures img.wide{max-width:100%}"
             ".warn{background:#fdd;border:2px solid #c00;padding:1em;font-weight:bold}</style>")


def _taps_line(layers: pd.Series, shown: int = 12) -> str:
    taps = layer_sorted(layers)
    return ", ".join(taps) if len(taps) <= shown else ", ".join(taps[:shown]) + f" and {len(taps) - shown} more"


def _paper_sections(df: pd.DataFrame, every: pd.DataFrame, main: pd.DataFrame, out: Path,
                    files: list[Path]) -> list[Section]:
    """Tables III-XI (of ``main``: the primary weights), the weights study (``every``: baseline rows), the learned
    metric (``df``: every row) and Figs. 4-5; writes their CSVs."""
    ours, theirs = ranking(main), paper_ranking(main)
    side = ours.merge(theirs, on="arch", how="left", suffixes=("", " (paper)"))
    side = side[["arch"] + [c for g in ours.columns[1:] for c in (g, f"{g} (paper)") if c in side.columns]]
    taps = best_taps(main)
    write_csv_atomic(side, out / "ranking.csv")
    write_csv_atomic(taps, out / "best_tap.csv")
    ranks = {c: RANK_DECIMALS for c in side.columns[1:]}
    sections = [
        Section("Architecture ranking (paper Table III)", [
            "Per score each architecture counts with its best tap; architectures are ranked 1 (best) to N, ties "
            "share the mean rank; a benchmark's rank is the mean over its scores (superres x4 and x8 pooled), "
            "`all` the mean over benchmarks (empty unless the architecture ran all of them). `(paper)`: the same "
            "computation on the published figures, over the same (score, architecture, tap) cells as this run. "
            f"Ranks at {RANK_DECIMALS} decimals."], [Table(side, ranks)]),
        Section("Best tap per architecture (paper Table IV)", [], [Table(taps)]),
        Section("Per benchmark (paper Tables V-XI)", [
            "Each cell: this run's value, the paper's in brackets where it reports one (fractions throughout: the "
            "paper's percentages of Table X are divided by 100); every number of a table at one precision. Block "
            "taps are in the depth profiles below."],
            [Section(title, [], [Table(t)], level=3) for title, t in benchmark_tables(main).items()])]
    study = weights_study(every)
    for name, table in study.items():
        write_csv_atomic(table, out / f"weights_{name}.csv")
    if study:
        sections.append(study_section(study))
    learned = learned_metric(df)
    if not learned.empty:
        write_csv_atomic(learned, out / "learned_metric.csv")
        sections.append(Section("Learned metric (LPIPS lin) beside the baseline", [
            "Per loss network: BAPPS val 2AFC and JND mAP with all channel weights 1 (the paper's baseline, "
            "ranked above) and with the lin weights named in `lin` (`trained@...`: learned on 2afc/train by "
            "this run; `lpips-v0.1@...`: the lpips package's); `gain` = weighted - baseline. Also in "
            "learned_metric.csv."], [Table(learned, {c: 3 for c in learned.columns[3:]})]))
    if files:
        sections.append(Section("Plots (paper Figs. 4-5)", [
            "Per ranked score: the metric against MACs up to the tap, and the best tap per architecture against "
            "ImageNet top-1 (of the recipe `imagenet` names, whatever weights the run used); the paper's figures "
            "in grey. Names label the points where they fit (the best and worst first); the tables above hold "
            "every architecture."], list(files)))
    return sections


def _study_sections(every: pd.DataFrame, main: pd.DataFrame, out: Path, plots: bool) -> list[Section]:
    """The depth study, Kumar et al.'s figure and the attributes (each absent where the run has nothing for it)."""
    from .attribute_report import attribute_section
    from .depth_report import depth_sections
    from .kumar_report import kumar_section
    return [*depth_sections(every, out, plots), *kumar_section(every, out, plots), *attribute_section(main, out)]


def _comparison_section(every: pd.DataFrame, out: Path) -> Section:
    comp = compare(every)
    write_csv_atomic(comp, out / "comparison.csv")
    show = comp[KEY + ["weights", "value", "paper_value", "difference", "comparable"]]
    places = dict.fromkeys(["value", "paper_value", "difference"], column_decimals(show["value"]))
    return Section("Every figure beside the published one", [
        "`difference` = ours - paper. `comparable` is false unless the run used ImageNet weights on the real data. "
        "Also in comparison.csv."], [Table(show, places)])


def study_section(study: dict[str, pd.DataFrame]) -> Section:
    """The section "Architecture against weights" (see ``weights_study``)."""
    parts = [("random_minus_imagenet", "Per loss network and scheme: `difference` = random mean - ImageNet, "
              "in the metric's direction (for error-like metrics a negative difference favours random weights)."),
             ("rank_agreement", "Spearman's rho of the architectures (each by its best tap) under a scheme "
              "against ImageNet weights, one per seed: `rho` their mean, [`rho_min`, `rho_max`] the interval over "
              "`seeds`. Near 1: the architecture decides the ranking whatever the weights (Liu et al.'s claim); "
              "near 0: the weights do."),
             ("scheme_ranks", "Each scheme's rank among the schemes (1 best) by its mean over the loss networks "
              "every source ran; ImageNet's mean beside them, unranked.")]
    places = {"rank": RANK_DECIMALS, "rho": 2, "rho_min": 2, "rho_max": 2}
    titles = {"random_minus_imagenet": "(a) Random weights minus ImageNet", "rank_agreement": "(b) Rank agreement",
              "scheme_ranks": "(c) Scheme ranks"}
    items = [Section(titles[name], [text if name in study else
                     text + " Not in this run: it needs random-weight and ImageNet rows of the same cells."],
                     [Table(study[name], places)] if name in study else [], level=3) for name, text in parts]
    return Section("Architecture against weights", [
        "Liu et al. (CVPR 2021) argue that a perceptual loss owes its success to the architecture, not to the "
        "trained weights; Zhang et al. (2018) found random weights poor for similarity. Random-weight cells are "
        "the mean over seeds, with their sample std and `n` (seeds; every cell in weights_seeds.csv). Per score "
        "(benchmark, dataset, metric):"], items)


__all__ = ["write_report", "learned_metric", "baseline_rows", "ranking", "paper_ranking", "best_taps",
           "benchmark_tables", "compare", "score_rows", "plot_scores", "caveats", "load_table"]
