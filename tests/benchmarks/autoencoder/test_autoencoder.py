"""Benchmark 4 (autoencoding): a tiny run beats chance, cached targets, protocols, the CLI."""
import pandas as pd
import pytest

from lossnets import LossNetwork
from lossnets.benchmarks.autoencoder import benchmark as ae
from lossnets.benchmarks.autoencoder.made import make_stl10, make_svhn
from lossnets.cli import main

ARCH = "squeezenet1_1"  # the smallest loss network: quick on a CPU

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def svhn(tmp_path_factory):
    return make_svhn(tmp_path_factory.mktemp("svhn"), n_train=150, n_test=60, n_extra=100)


def _net(layers=("E", "S"), **kw):
    return LossNetwork(ARCH, layers=layers, weights="random", device="cpu", **kw)


def test_a_tiny_run_is_above_chance(svhn):
    df = ae.run(_net(), str(svhn), epochs=2, batch=20, mlp_epochs=15, mlp_batch=32, progress=False)
    acc = df[df.metric == "accuracy"]
    assert len(acc) == 2 and set(acc["layer"]) == {"E", "S"} and (acc["status"] == "ok").all()
    assert (acc["value"] > 0.25).all()  # 10 classes: chance is 0.1
    assert (acc["val_loss"] < acc["val_loss_initial"]).all() and (acc["best_epoch"] >= 1).all()
    assert set(df["benchmark"]) == {"autoencoder"} and set(df["dataset"]) == {"svhn"}
    assert (df["data"] == "synthetic").all() and "paper_value" not in df  # the grid runner adds it
    per_mlp = df[df.metric == "test_accuracy"]
    assert len(per_mlp) == 2 * 7 and per_mlp["mlp"].nunique() == 7
    chosen = acc.set_index("layer")["mlp"]
    for layer, mlp in chosen.items():  # the chosen MLP is the one with the best validation accuracy
        val = df[(df.metric == "val_accuracy") & (df.layer == layer)].set_index("mlp")["value"]
        assert val[mlp] == val.max()


def test_the_paper_protocol_feeds_the_loss_network_unnormalised_images(svhn, monkeypatch):
    seen = []
    real = ae.training.train_lockstep
    monkeypatch.setattr(ae.training, "train_lockstep", lambda nets, *a, **k: seen.append(nets) or real(nets, *a, **k))
    for protocol in ("paper", "standard"):
        ae.run(_net(("E",)), str(svhn), epochs=1, batch=50, mlp_epochs=1, protocol=protocol, progress=False,
               n_autoencoder=40, n_mlp=40, n_test=20)
    assert [n[0].normalize for n in seen] == ["none", "imagenet"]


def test_targets_come_from_the_cache_on_a_rerun(svhn, tmp_path):
    from lossnets.cache import FeatureCache
    cache = FeatureCache(tmp_path / "cache", cache_policy="always", dtype="fp32", progress=False)
    kw = dict(epochs=2, batch=20, mlp_epochs=2, progress=False, cache=cache)
    first = ae.run(_net(("E",)), str(svhn), **kw)
    computed = cache.stats()["computed"]
    assert computed == 100  # every autoencoder image once (80 train, 20 validation), then read back
    again = ae.run(_net(("E",)), str(svhn), **kw)
    assert cache.stats()["computed"] == computed
    pd.testing.assert_series_equal(first["value"], again["value"], rtol=1e-5)


def test_stl10_at_96_and_bad_options(tmp_path):
    root = make_stl10(tmp_path / "stl", n_train=20, n_test=10, n_unlabeled=20)
    df = ae.run(_net(("E",)), str(root), dataset="stl10", epochs=1, batch=8, mlp_epochs=1, progress=False)
    assert set(df["dataset"]) == {"stl10"} and (df["status"] == "ok").all()
    with pytest.raises(ValueError, match="dataset"):
        ae.run(_net(("E",)), str(root), dataset="mnist")
    with pytest.raises(ValueError, match="protocol"):
        ae.run(_net(("E",)), str(root), protocol="exact")


def test_cli_make_svhn_and_train(tmp_path, capsys):
    root = tmp_path / "svhn"
    assert main(["data", "make-svhn", str(root), "--n-train", "40", "--n-test", "20", "--n-extra", "40"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    out = tmp_path / "ae.csv"
    argv = ["autoencoder", "--data", str(root), "--archs", ARCH, "--layers", "E,L", "--weights", "random",
            "--device", "cpu", "--epochs", "1", "--batch", "16", "--mlp-epochs", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    df = pd.read_csv(out)
    assert set(df.loc[df.metric == "accuracy", "layer"]) == {"E", "L"}
    assert main([*argv, "--resume"]) == 0 and "2 already done, 0 finished now" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out), df)
    assert main(["autoencoder", "--data", str(tmp_path / "nothing"), "--archs", ARCH, "--weights", "random",
                 "--device", "cpu", "--quiet"]) == 2
    assert "extra_32x32.mat" in capsys.readouterr().err
