"""The report's depth study, Kumar et al.'s figure and the attributes, from a hand-built SYNTHETIC results table
whose answers are known: each network's score is a parabola in relative depth with its peak at PEAK[arch]."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, spearmanr

from lossnets.benchmarks.sweep import attribute_report, depth_report, kumar_report
from lossnets.benchmarks.sweep.report import write_report
from lossnets.engine.catalog import taps

PEAK = {"resnet18": 0.55, "vgg11": 0.3, "alexnet": 0.8, "mobilenet_v3_small": 0.45}
# block taps: module paths of the models (the report profiles their MACs), SYNTHETIC relative depths evenly spaced
# (a block that is also a stage tap takes the stage's depth)
BLOCKS = {"resnet18": [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)],
          "vgg11": [f"features.{i}" for i in (1, 4, 7, 9, 12, 14, 17, 19)],
          "alexnet": [f"features.{i}" for i in (1, 4, 7, 9, 11)],
          "mobilenet_v3_small": [f"features.{i}" for i in range(1, 13)]}
# SYNTHETIC Perceptual Scores per (arch, weights) and the recipe's top-1 (recipes.csv)
KUMAR = {("resnet18", "imagenet"): 68.0, ("vgg11", "imagenet"): 70.0, ("alexnet", "imagenet"): 69.5,
         ("mobilenet_v3_small", "imagenet"): 67.0, ("resnet50", "imagenet"): 66.0,
         ("resnet50", "imagenet:IMAGENET1K_V2"): 65.0, ("vgg11", "random"): 71.0}


def score(arch, depth, jnd=False):
    return (0.75 if jnd else 0.7) - (depth - PEAK[arch]) ** 2


def depths(arch) -> dict[str, float]:
    """Every tap of the made table of ``arch`` and its relative depth."""
    stages = {t.module: t.rel_depth for t in taps(arch)}
    evenly = np.linspace(0.1, 1, len(BLOCKS[arch]))
    blocks = {b: stages.get(b, round(float(d), 4)) for b, d in zip(BLOCKS[arch], evenly)}
    return {**blocks, **{t.layer: t.rel_depth for t in taps(arch)}}


def made_depth_table() -> pd.DataFrame:
    rows = []
    base = dict(benchmark="similarity", weights="imagenet", lin="none", data="synthetic")
    for arch in PEAK:
        for layer, d in depths(arch).items():
            for dataset, metric in (("2afc/val", "2afc"), ("jnd/val", "jnd_map")):
                rows.append({**base, "arch": arch, "layer": layer, "dataset": dataset, "metric": metric,
                             "value": score(arch, d, metric == "jnd_map"), "relative_depth": d})
    for (arch, weights), v in KUMAR.items():
        rows.append({**base, "arch": arch, "weights": weights, "layer": "kumar", "dataset": "2afc/val",
                     "metric": "perceptual_score", "value": v, "relative_depth": np.nan})
    return pd.DataFrame(rows)


def test_depth_profile_finds_each_network_s_best_depth_and_the_stage_gaps():
    cls = made_depth_table().query("layer == 'E'").assign(layer="E_cls", value=0.0)  # SYNTHETIC class-token rows
    prof = depth_report.profiles(pd.concat([made_depth_table(), cls], ignore_index=True))
    assert set(prof["arch"]) == set(PEAK) and (prof["depths"] >= 5).all() and "E_cls" not in set(prof["layer"])
    eq = depth_report.equivalence(prof).set_index(["score", "arch"])
    for arch, peak in PEAK.items():
        row = eq.loc["similarity bapps/2afc 2afc", arch]
        every = np.array(list(depths(arch).values()))
        best = every[np.argmin(abs(every - peak))]
        assert row["best depth"] == pytest.approx(best) and row["taps"] == len(depths(arch))
        for stage, d in {t.layer: t.rel_depth for t in taps(arch)}.items():
            assert row[f"{stage} gap"] == pytest.approx(score(arch, best) - score(arch, d))
            assert row[f"{stage} depth gap"] == pytest.approx(d - best)
    spread = depth_report.spread(depth_report.equivalence(prof)).set_index("score").loc["similarity bapps/2afc 2afc"]
    best = eq.xs("similarity bapps/2afc 2afc")["best depth"]
    assert (spread["best depth min"], spread["median"], spread["max"]) == pytest.approx(
        (best.min(), best.median(), best.max()))
    assert spread["IQR"] == pytest.approx(best.quantile(0.75) - best.quantile(0.25))


def test_kumar_points_frontier_and_rho():
    scores, which = kumar_report.perceptual_scores(made_depth_table())
    assert which == "kumar" and len(scores) == len(KUMAR)
    pts, left_out = kumar_report.points(scores)
    again = pd.DataFrame([{"arch": "vgg11", "weights": "imagenet:IMAGENET1K_V1", "perceptual_score": 72.0}])
    same = kumar_report.points(pd.concat([scores, again], ignore_index=True))[0].set_index("arch")
    assert len(same) == len(pts) and same.loc["vgg11", "perceptual_score"] == 71.0  # one recipe, one point
    assert left_out == 1 and "random" not in set(pts["weights"])  # random weights have no ImageNet accuracy
    r50 = pts.set_index(["arch", "recipe"]).loc["resnet50"]
    assert r50.loc["IMAGENET1K_V2", "acc1"] == pytest.approx(80.858) and r50.loc["IMAGENET1K_V1", "acc1"] == 76.13
    # frontier: nothing beats it on both axes (checked by brute force)
    for i, p in pts.iterrows():
        beaten = ((pts["acc1"] >= p["acc1"]) & (pts["perceptual_score"] >= p["perceptual_score"])
                  & ((pts["acc1"] > p["acc1"]) | (pts["perceptual_score"] > p["perceptual_score"]))).any()
        assert p["frontier"] == (not beaten)
    rho = kumar_report.correlations(pts).set_index("architectures of")
    study = pts[pts["study"]]
    assert rho.loc["the study's 14", "rho"] == pytest.approx(spearmanr(study["acc1"], study["perceptual_score"])[0])
    whole = rho.loc["every architecture"]
    assert whole["points"] == len(pts) and whole["ci_low"] <= whole["rho"] <= whole["ci_high"]
    assert kumar_report.correlations(pts).equals(rho.reset_index())  # the bootstrap's seed is fixed
    # the vectorised bootstrap equals scipy's rho of each resample, drawn as the module draws them
    groups = [g[["acc1", "perceptual_score"]].to_numpy(float) for _, g in pts.groupby("arch", sort=False)]
    draws = np.random.default_rng(kumar_report.SEED).integers(0, len(groups), (kumar_report.BOOTSTRAP, len(groups)))
    want = []
    for d in draws[:40]:
        s = np.concatenate([groups[i] for i in d])
        want.append(spearmanr(s[:, 0], s[:, 1])[0] if np.ptp(s[:, 0]) and np.ptp(s[:, 1]) else np.nan)
    np.testing.assert_allclose(kumar_report.bootstrap_rhos(pts)[:40], want, rtol=1e-12, equal_nan=True)
    # no kumar rows: the best single tap's 2AFC x 100 stands in, and says so
    fallback, which = kumar_report.perceptual_scores(made_depth_table().query("layer != 'kumar'"))
    assert which == "best tap"
    best_tap = max(score("vgg11", d) for d in depths("vgg11").values())
    assert fallback.set_index("arch").loc["vgg11", "perceptual_score"] == pytest.approx(100 * best_tap)


def test_attributes_with_against_without():
    table = attribute_report.attribute_table(made_depth_table())
    bn = table[(table["score"] == "similarity bapps/2afc 2afc") & (table["attribute"] == "batch_norm")
               & (table["architectures of"] == "every architecture")].iloc[0]
    best = depth_report.equivalence(depth_report.profiles(made_depth_table())).set_index(["score", "arch"])
    best = best.xs("similarity bapps/2afc 2afc")["best value"]
    yes, no = best[["resnet18", "mobilenet_v3_small"]], best[["vgg11", "alexnet"]]  # nn.BatchNorm2d: the first two
    assert (bn["with n"], bn["without n"]) == (2, 2)
    assert bn["with mean"] == pytest.approx(yes.mean()) and bn["difference"] == pytest.approx(yes.mean() - no.mean())
    assert bn["p"] == pytest.approx(mannwhitneyu(yes, no).pvalue)
    assert set(table["architectures of"]) == {"the study's 14", "every architecture"}


def test_the_sections_render(tmp_path):
    made_depth_table().to_csv(tmp_path / "results.csv", index=False)
    out = write_report(tmp_path / "results.csv", tmp_path / "report", plots=False)  # the paper's plots profile MACs
    md = (out / "report.md").read_text()
    for title in ("## Depth profiles", "## Are the taps equivalent?", "## ImageNet accuracy against perceptual score",
                  "## Architecture attributes against score"):
        assert title in md
    sections = [*depth_report.depth_sections(made_depth_table(), out),
                *kumar_report.kumar_section(made_depth_table(), out)]
    figures = [p for s in sections for p in s.items if not hasattr(p, "frame")]
    assert [p.name for p in figures] == ["depth_similarity_bapps_2afc_2afc.png",
                                         "depth_similarity_bapps_jnd_jnd_map.png", "kumar_accuracy_score.png"]
    assert all(p.stat().st_size > 5000 for p in figures)
    eq = pd.read_csv(out / "tap_equivalence.csv")
    assert len(eq) == 2 * len(PEAK) and {"E gap", "L depth gap", "best depth"} <= set(eq.columns)
    assert len(pd.read_csv(out / "kumar_points.csv")) == len(KUMAR) - 1
    assert set(pd.read_csv(out / "attributes.csv")["attribute"]) == {"skip_connections", "branching", "conv1x1",
                                                                     "batch_norm"}


def test_sections_absent_without_their_rows(tmp_path):
    stages = made_depth_table().query("layer in ['E', 'S', 'M', 'L']")  # four depths are no profile
    assert depth_report.depth_sections(stages, tmp_path) == []
    assert depth_report.depth_sections(stages.drop(columns="relative_depth"), tmp_path) == []
    training = stages.assign(benchmark="segmentation", dataset="mrd", metric="quality")
    assert kumar_report.kumar_section(training, tmp_path) == []


def test_labels_never_overlap():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from lossnets.benchmarks.sweep.labels import place_labels
    fig, ax = plt.subplots(figsize=(4, 3))
    x, y = np.r_[np.full(10, 0.5), np.linspace(0, 1, 10)], np.r_[np.full(10, 0.5), np.linspace(0, 1, 10)]
    ax.scatter(x, y)
    ax.set(xlim=(-0.1, 1.1), ylim=(-0.1, 1.1))
    placed = place_labels(ax, x, y, [f"architecture {i}" for i in range(len(x))])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert 3 <= placed == len(boxes) < len(x)  # ten points share one place: most of their labels are left out
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_a_tiny_real_run_reports_its_depth_profile_and_kumar_score(tmp_path):
    """alexnet's blocks, stages and the kumar set on the made BAPPS set (SYNTHETIC judgments, random weights)."""
    from lossnets.benchmarks.similarity.made import make_bapps
    from lossnets.benchmarks.sweep.grid import sweep
    make_bapps(tmp_path / "bapps", size=2)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sweep]\narchs = ["alexnet"]\nlayers = ["blocks", "stages", "kumar"]\nweights = "random"\n'
                   'device = "cpu"\n[similarity]\ndata = "bapps"\n')
    assert sweep(cfg, tmp_path / "run", progress=False).failed == []
    md = (write_report(tmp_path / "run", plots=False) / "report.md").read_text()
    assert "## Depth profiles" in md and "## Are the taps equivalent?" in md
    assert "Kumar et al.'s Perceptual Score: the `kumar` mean ensemble" in md and "Left out: 1 " in md
    assert "| arch | E | S | M | L | kumar |" in md  # Table V: block taps are left to the depth profiles
    eq = pd.read_csv(tmp_path / "run" / "report" / "tap_equivalence.csv")
    assert list(eq["arch"]) == ["alexnet"] * 2 and (eq["taps"] >= 5).all() and (eq[["E gap", "L gap"]] >= 0).all().all()
