"""Architecture against weights (weights_study): seeds aggregated, random minus ImageNet, Spearman across seeds and
each scheme's rank, on made rows whose answers are worked out by hand."""
import math

import pandas as pd
import pytest

from lossnets.benchmarks.sweep.weights_study import (random_minus_imagenet, rank_agreement, scheme_ranks, seed_cells,
                                                     weights_source)

SCORE = "similarity 2afc/val 2afc"
# value of the E tap per (weights, seed) and architecture a..d; the L tap is E - 0.1 (never the best tap)
MADE = {
    ("imagenet", 0): [0.70, 0.68, 0.66, 0.64],
    ("random", 0): [0.60, 0.58, 0.56, 0.54],      # ranks as imagenet: rho 1
    ("random", 1): [0.64, 0.62, 0.58, 0.60],      # c and d swapped: rho 1 - 6*2/(4*15) = 0.8
    ("random:liu", 0): [0.62, 0.66, 0.60, 0.58],  # a and b swapped: rho 0.8
    ("random:liu", 1): [0.64, 0.66, 0.62, 0.56],  # a and b swapped: rho 0.8
}


def made_rows(sign: float = 1.0) -> pd.DataFrame:
    rows = []
    for (weights, seed), values in MADE.items():
        for arch, v in zip("abcd", values):
            for layer, value in (("E", v), ("L", v - 0.1)):
                rows.append({"score": SCORE, "weights": weights, "seed": seed, "arch": arch, "layer": layer,
                             "value": value, "signed": sign * value})
    return pd.DataFrame(rows)


def test_seed_mean_std_and_n_by_hand():
    cells = seed_cells(made_rows()).set_index(["source", "arch", "layer"])
    a = cells.loc["random:torchvision", "a", "E"]  # 0.60 and 0.64
    assert a["mean"] == pytest.approx(0.62) and a["n"] == 2
    assert a["std"] == pytest.approx(math.sqrt((0.02 ** 2 + 0.02 ** 2) / 1))
    d = cells.loc["random:liu", "d", "L"]  # 0.48 and 0.46
    assert d["mean"] == pytest.approx(0.47) and d["std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))
    imagenet = cells.loc["imagenet", "b", "E"]
    assert imagenet["n"] == 1 and math.isnan(imagenet["std"]) and imagenet["mean"] == pytest.approx(0.68)


def test_random_minus_imagenet_by_hand():
    diff = random_minus_imagenet(seed_cells(made_rows())).set_index(["source", "arch", "layer"])
    assert diff.loc[("random:torchvision", "a", "E"), "difference"] == pytest.approx(0.62 - 0.70)
    assert diff.loc[("random:liu", "b", "L"), "difference"] == pytest.approx(0.56 - 0.58)
    assert set(diff.index.get_level_values("source")) == {"random:torchvision", "random:liu"}


def test_spearman_per_seed_and_its_interval():
    agree = rank_agreement(made_rows()).set_index("source")
    tv, liu = agree.loc["random:torchvision"], agree.loc["random:liu"]
    assert tv["rho"] == pytest.approx(0.9) and tv["rho_min"] == pytest.approx(0.8) and tv["rho_max"] == pytest.approx(1)
    assert liu["rho"] == pytest.approx(0.8) and liu["rho_min"] == pytest.approx(0.8)
    assert tv["seeds"] == 2 and tv["archs"] == 4


def test_scheme_ranks_follow_the_metrics_direction():
    ranks = scheme_ranks(seed_cells(made_rows())).set_index("source")
    # means over the 8 loss networks: torchvision 0.54, liu 0.5675; imagenet 0.62 (unranked)
    assert ranks.loc["random:liu", "rank"] == 1 and ranks.loc["random:torchvision", "rank"] == 2
    assert ranks.loc["random:liu", "mean"] == pytest.approx(0.5675)
    assert math.isnan(ranks.loc["imagenet", "rank"]) and ranks.loc["imagenet", "networks"] == 8
    lower_better = scheme_ranks(seed_cells(made_rows(sign=-1.0))).set_index("source")
    assert lower_better.loc["random:torchvision", "rank"] == 1


def test_plain_random_is_the_torchvision_scheme():
    assert list(weights_source(pd.Series(["random", "random:liu", "imagenet"]))) == [
        "random:torchvision", "random:liu", "imagenet"]


def test_report_section_from_made_rows(tmp_path):
    """A made results table (SYNTHETIC) with ImageNet rows, torchvision-init rows over two seeds and liu rows over
    two seeds: the report's section, its CSVs, and the per-benchmark table's mean ± std (n)."""
    from lossnets.benchmarks.sweep.report import write_report
    rows = []
    archs = ["alexnet", "vgg16", "squeezenet1_1", "resnet18"]
    for (weights, seed), values in MADE.items():
        for arch, v in zip(archs, values):
            for layer, value in (("E", v), ("L", v - 0.1)):
                rows.append({"benchmark": "similarity", "arch": arch, "layer": layer, "weights": weights,
                             "dataset": "2afc/val", "metric": "2afc", "value": value, "seed": seed, "lin": "none",
                             "data": "synthetic"})
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    out = write_report(tmp_path / "results.csv", tmp_path / "report", plots=False)
    md = (out / "report.md").read_text()
    assert "## Architecture against weights" in md and "Spearman" in md
    seeds = pd.read_csv(out / "weights_seeds.csv").set_index(["source", "arch", "layer"])
    assert seeds.loc[("random:liu", "vgg16", "E"), "mean"] == pytest.approx(0.66)
    assert seeds.loc[("random:torchvision", "squeezenet1_1", "E"), "std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))
    agree = pd.read_csv(out / "weights_rank_agreement.csv").set_index("source")
    assert agree.loc["random:torchvision", "rho"] == pytest.approx(0.9)
    assert set(pd.read_csv(out / "weights_random_minus_imagenet.csv")["source"]) == {"random:torchvision", "random:liu"}
    # the tables above the section show ImageNet's rows (the primary weights), one seed: no spread
    assert "show weights `imagenet`" in md and "0.7 ± " not in md
    random_only = pd.DataFrame(rows).query("weights == 'random'")
    random_only.to_csv(tmp_path / "random.csv", index=False)
    md = (write_report(tmp_path / "random.csv", tmp_path / "r2", plots=False) / "report.md").read_text()
    assert "0.620 ± 0.028 (n=2)" in md  # alexnet E: seeds 0.60 and 0.64, at the table's precision (3 digits)


def test_seeds_and_schemes_in_a_sweep_config(tmp_path):
    from lossnets.benchmarks.sweep.config import SweepConfig
    from lossnets.benchmarks.sweep.plan import groups, plan
    from lossnets.errors import ConfigError
    cfg = tmp_path / "c.toml"
    base = '[sweep]\narchs = ["alexnet", "squeezenet1_1"]\nlayers = ["E", "L"]\nweights = "random"\n'
    cfg.write_text(base + '[similarity]\ndata = "b"\n[seeds]\nbenchmark = "similarity"\ndata = "b"\n'
                   'archs = ["alexnet"]\nweights = ["random", "random:liu"]\nseeds = [1, 2]\n')
    c = SweepConfig.from_toml(cfg)
    cells = plan(c)
    assert len(cells) == 2 * 2 + 4 * 2  # seed 0 for both networks, 2 schemes x 2 seeds for alexnet
    assert {x.variant for x in cells} == {"random.seed0", "random.seed1", "random.seed2", "random-liu.seed1",
                                          "random-liu.seed2"}
    work = {(g.arch, g.weights, g.seed): len(g.cells) for g in groups(c, cells, tmp_path / "run")}
    assert work[("alexnet", "random:liu", 2)] == 2 and ("squeezenet1_1", "random:liu", 1) not in work
    assert SweepConfig.from_dict(c.to_dict(), source=c.source) == c
    cfg.write_text(base + 'seeds = [0, 1]\n[similarity]\ndata = "b"\n')  # every random network per seed
    assert len(plan(SweepConfig.from_toml(cfg))) == 2 * 2 * 2
    cfg.write_text(base + '[similarity]\ndata = "b"\n[again]\nbenchmark = "similarity"\ndata = "b"\n')
    with pytest.raises(ConfigError, match="same weights and seed"):
        SweepConfig.from_toml(cfg)


def test_merging_an_imagenet_run_and_a_random_run_keeps_both(tmp_path):
    from lossnets.benchmarks.sweep.cells import RunFolder
    from lossnets.benchmarks.sweep.merge import merge
    from lossnets.benchmarks.sweep.plan import Cell
    for run, weights in (("a", "imagenet"), ("b", "random:liu")):
        row = {"benchmark": "similarity", "arch": "alexnet", "layer": "E", "weights": weights, "dataset": "2afc/val",
               "metric": "2afc", "value": 0.7, "seed": 0}
        RunFolder(tmp_path / run).write_rows(Cell("similarity", "alexnet", "E"), pd.DataFrame([row]))
    table = merge([tmp_path / "a", tmp_path / "b"], tmp_path / "a")
    assert sorted(table["weights"]) == ["imagenet", "random:liu"]
    cells = sorted(str(c) for c, _ in RunFolder(tmp_path / "a").cells())
    assert cells == ["similarity/alexnet/imagenet.seed0/E", "similarity/alexnet/random-liu.seed0/E"]
