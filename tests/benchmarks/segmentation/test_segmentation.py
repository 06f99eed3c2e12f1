"""Benchmark 3 (road delineation): a tiny run learns, cached fixed crops, both protocols, the CLI."""
import math

import pandas as pd
import pytest
import torch

from lossnets import LossNetwork
from lossnets.benchmarks.segmentation import benchmark as seg
from lossnets.benchmarks.segmentation.data import load_split
from lossnets.benchmarks.segmentation.made import make_roads
from lossnets.cli import main

ARCH = "squeezenet1_1"  # the smallest loss network: quick on a CPU
SIZE = 32

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def roads(tmp_path_factory):
    return make_roads(tmp_path_factory.mktemp("roads"), n_train=8, n_valid=2, n_test=2, size=64)


def _net(layers=("E", "S")):
    return LossNetwork(ARCH, layers=layers, weights="random", device="cpu")


def test_a_tiny_run_beats_its_untrained_validation_quality(roads):
    df = seg.run(_net(), str(roads), epochs=30, batch=4, size=SIZE, mu=1.0, progress=False)
    assert len(df) == 2 * 3 and set(df["metric"]) == {"completeness", "correctness", "quality"}
    assert set(df["benchmark"]) == {"segmentation"} and set(df["dataset"]) == {"mrd"}
    assert (df["status"] == "ok").all() and df["value"].between(0, 1).all()
    assert (df["data"] == "synthetic").all() and "paper_value" not in df  # the grid runner adds it
    assert (df["val_quality"] > df["val_quality_initial"] + 0.05).all()  # measured: E +0.24, S +0.109 to +0.111
    assert (df["threshold"] == 0.3).all() and (df["n_tiles"] == 2).all()


def test_fixed_crops_read_their_targets_from_the_cache(roads, tmp_path):
    from lossnets.cache import FeatureCache
    cache = FeatureCache(tmp_path / "cache", cache_policy="always", dtype="fp32", progress=False)
    df = seg.run(_net(), str(roads), epochs=2, batch=4, size=SIZE, crops="fixed:2", cache=cache, progress=False)
    assert (df["status"] == "ok").all()
    st = cache.stats()
    assert st["computed"] == 8 * 2 and st["hot_hits"] + st["disk_hits"] > 0  # the bank once, then read back
    again = seg.run(_net(), str(roads), epochs=2, batch=4, size=SIZE, crops="fixed:2", cache=cache, progress=False)
    assert cache.stats()["computed"] == 8 * 2
    pd.testing.assert_series_equal(df["value"], again["value"], rtol=1e-5)


def test_the_standard_protocol_scores_native_tiles_with_the_relaxed_metric(roads):
    df = seg.run(_net(("E",)), str(roads), epochs=1, batch=4, size=SIZE, protocol="standard", progress=False)
    assert set(df["metric"]) == {"completeness", "correctness", "quality", "relaxed_completeness",
                                 "relaxed_correctness", "relaxed_quality"}
    assert (df["threshold"] == 0.5).all()


def test_refinement_trains_through_every_iteration(roads):
    train, val = load_split(roads, "train"), load_split(roads, "valid", SIZE)
    task = seg.RoadDelineation(train, val, size=SIZE, batch=2, refine=3, mu=0.5, crops=None, threshold=0.3)
    batch = next(task.batches(0))
    model = task.build_model(0, torch.device("cpu"))
    net = _net(("E",))
    target = net(batch.target)["E"]
    loss = task.loss(model, batch.inputs, lambda x: net.sub(("E",))(x)["E"], target)
    loss.backward()
    assert math.isfinite(loss.item()) and all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_bad_options_are_clear(roads):
    with pytest.raises(ValueError, match="protocol"):
        seg.run(_net(("E",)), str(roads), protocol="exact")
    with pytest.raises(ValueError, match="--crops"):
        seg.run(_net(("E",)), str(roads), crops="fixed")


def test_cli_make_roads_train_and_score(tmp_path, capsys):
    root = tmp_path / "roads"
    assert main(["data", "make-roads", str(root), "--size", "48", "--n-train", "4"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    out = tmp_path / "seg.csv"
    argv = ["segmentation", "--data", str(root), "--archs", ARCH, "--layers", "E,L", "--weights", "random",
            "--device", "cpu", "--epochs", "1", "--batch", "2", "--size", "32", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    df = pd.read_csv(out)
    assert set(df["layer"]) == {"E", "L"} and len(df) == 6
    assert main([*argv, "--resume"]) == 0 and "2 already done, 0 finished now" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out), df)
    scored = tmp_path / "scores.csv"
    assert main(["segmentation", "score", "--pred", str(root / "test" / "map"), "--gt", str(root / "test" / "map"),
                 "--out", str(scored)]) == 0
    s = pd.read_csv(scored)
    assert (s.loc[s.dataset == "all", "value"] == 1.0).all()  # the masks scored against themselves
    assert main(["segmentation", "score", "--pred", str(root)]) == 2
    assert "--gt" in capsys.readouterr().err
