"""The README's main job, `lossnets demo OUT`, end to end: every benchmark, the report and the profile."""
import pandas as pd
import pytest

from lossnets.cli import main


@pytest.mark.slow
def test_demo_runs_every_benchmark_and_reports(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo")]) == 0
    assert "SYNTHETIC data and RANDOM weights" in capsys.readouterr().out
    run = tmp_path / "demo" / "run"
    df = pd.read_csv(run / "results.csv")
    assert set(df.benchmark) == {"similarity", "superres_x4", "segmentation", "autoencoder"}
    assert (df.status.dropna() == "ok").all() and set(df.data.dropna()) == {"synthetic"}
    sim = df[df.benchmark == "similarity"]
    assert sim[sim.layer.isin(list("ESML"))][["arch", "layer"]].drop_duplicates().shape[0] == 56
    main_job = sim[(sim.weights == "random") & (sim.seed == 0)]
    assert set(main_job.layer) == set("ESML") | {"E+S+M+L", "lpips"} and set(
        main_job[main_job.layer == "lpips"].arch) == {"alexnet", "vgg16", "squeezenet1_1"}
    assert main_job.lin.str.startswith("trained@").sum() == (main_job.lin == "none").sum()  # learned beside baseline
    study = sim[(sim.seed != 0) | (sim.weights != "random")]  # [similarity-seeds]: two schemes, two more seeds
    assert set(zip(study.weights, study.seed)) == {(w, s) for w in ("random", "random:liu") for s in (1, 2)}
    depth = study[(study.arch == "resnet18") & (study.weights == "random") & (study.seed == 1)]
    blocks = depth[depth.relative_depth.notna()].groupby("layer").relative_depth.first().sort_values()
    assert {"layer1.0", "layer3.1", "L"} <= set(blocks.index) and blocks.iloc[-1] == 1.0  # every block, by depth
    kumar = depth[(depth.layer == "kumar") & (depth.metric == "perceptual_score")]
    assert len(kumar) == 1 and 0 <= kumar.value.iloc[0] <= 100
    md = (run / "report" / "report.md").read_text()
    assert "## Learned metric (LPIPS lin) beside the baseline" in md
    assert "## Architecture against weights" in md and (run / "report" / "weights_scheme_ranks.csv").is_file()
    for section in ("## Depth profiles", "## Are the taps equivalent?", "## ImageNet accuracy against perceptual score",
                    "## Architecture attributes against score"):
        assert section in md
    assert (run / "report" / "depth_similarity_bapps_2afc_2afc.png").is_file()
    for table in ("Table V:", "Tables VI-IX:", "Table X:", "Table XI:"):
        assert table in md
    assert len(pd.read_csv(tmp_path / "demo" / "profile.csv")) == 56
