"""Learning lin weights from statistics: equal to lpips's procedure through the images, its schedule, and
the command line that writes weights in lpips's format (synthetic judgments throughout)."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.statistics import statistics
from lossnets.benchmarks.similarity.lin_training import (LinTraining, RankingHead, Triplets, initial_lin,
                                                         train_lin)
from lossnets.cli import main
from lossnets.engine import LossNetwork
from lossnets.engine.lin_weights import load_lin_weights
from lossnets.engine.tap_sets import tap_set

lpips = pytest.importorskip("lpips")
from lpips_reference import images, lpips_model  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_bapps(tmp_path_factory.mktemp("bapps"), size=2, jnd_size=2, train_size=4, seed=6)


def test_training_from_statistics_equals_lpips_training_through_the_images(root):
    arch, settings = "alexnet", LinTraining(epochs=2, decay_epochs=1, lr=1e-2, batch=5, seed=3)
    layers = tap_set(arch, "lpips").layers
    net = LossNetwork(arch, layers, "random", seed=0, device="cpu")
    train = load_bapps(root, split="train")
    triplets = Triplets.of(statistics(net, train, progress=False), layers)
    ours = train_lin(triplets, settings)

    # lpips's modules and steps, started where ours start (same init, same batches)
    gen = torch.Generator().manual_seed(settings.seed)
    w0 = initial_lin(triplets.channels, gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        head = RankingHead()
    model = lpips_model(net, lpips=True, use_dropout=False)
    for lin, w in zip(model.lins, w0.split(triplets.channels)):
        lin.model[-1].weight.data.copy_(w.view(1, -1, 1, 1))
    rank = lpips.BCERankingLoss()
    rank.net.load_state_dict(head.state_dict())
    params = [p for lin in model.lins for p in lin.parameters()] + list(rank.net.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr, betas=(settings.beta1, 0.999))
    subs = train.of_kind("2afc")
    index = {k: np.concatenate([s.index[k] for s in subs]) for k in ("ref", "p0", "p1")}
    judge = torch.from_numpy(np.concatenate([s.target for s in subs])).float()
    for epoch in (1, 2):
        for group in opt.param_groups:
            group["lr"] = settings.lr_at(epoch)
        for rows in torch.randperm(len(judge), generator=gen).split(settings.batch):
            ref, p0, p1 = (images(train, index[k][rows.numpy()]) for k in ("ref", "p0", "p1"))
            d0, d1 = model(ref, p0, normalize=True), model(ref, p1, normalize=True)
            loss = rank(d0, d1, judge[rows].view(d0.shape) * 2 - 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for lin in model.lins:  # lpips's clamp, of the lin weights only
                lin.model[-1].weight.data.clamp_(min=0)
    theirs = [lin.model[-1].weight.detach().flatten() for lin in model.lins]
    moved = max(float((a - b).abs().max()) for a, b in zip(ours.weights, w0.split(triplets.channels)))
    assert moved > 1e-2  # the steps changed the weights, far beyond the tolerance below
    # two float32 paths through 2 epochs of Adam: measured at up to 0.62 of (1e-4, 1e-6) under three CPU
    # capabilities (AVX-512, AVX2, SSE4.1), so 4x that; Adam's beta2 0.99 for 0.999 is 9x over it
    for k, (a, b) in enumerate(zip(ours.weights, theirs)):
        torch.testing.assert_close(a, b, rtol=4e-4, atol=4e-6, msg=f"lin{k}")
    for name, value in rank.net.state_dict().items():
        torch.testing.assert_close(ours.head[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_the_schedule_is_lpips_five_then_five_decaying():
    s = LinTraining()
    assert [s.lr_at(e) / s.lr for e in range(1, 11)] == pytest.approx([1] * 6 + [0.8, 0.6, 0.4, 0.2])
    with pytest.raises(ValueError, match="dropout"):
        LinTraining(dropout=1.0)


def test_dropout_and_history(root):
    net = LossNetwork("squeezenet1_1", ("E", "L"), "random", seed=1, device="cpu")
    stats = statistics(net, load_bapps(root, split="train"), progress=False)
    trained = train_lin(Triplets.of(stats, ("E", "L")), LinTraining(epochs=3, decay_epochs=1, dropout=0.5))
    assert [h["epoch"] for h in trained.history] == [1, 2, 3]
    assert all(0 <= h["train_2afc"] <= 1 and np.isfinite(h["loss"]) for h in trained.history)
    assert all((w >= 0).all() for w in trained.weights) and [len(w) for w in trained.weights] == [64, 512]


def test_lin_train_writes_lpips_format_weights_that_similarity_reads(root, tmp_path, capsys):
    out = tmp_path / "lin"
    args = ["--archs", "squeezenet1_1", "--weights", "random", "--device", "cpu", "--data", str(root), "--quiet"]
    assert main(["lin", "train", *args, "--layers", "E+L", "M", "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "E+L" in printed
    history = pd.read_csv(out / "lin_train.csv")
    assert len(history) == 2 * 2 and {"train_2afc", "val_2afc", "val_jnd_map", "loss", "lr"} <= set(history.columns)
    assert main(["lin", "train", *args, "--layers", "E+L", "M", "--epochs", "2", "--out", str(out), "--resume"]) == 0
    assert "2 already done, 0 finished now" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out / "lin_train.csv"), history)
    assert set(history["data"]) == {"synthetic"}
    lin = load_lin_weights(out / "squeezenet1_1" / "E+L.pth", "squeezenet1_1", ("E", "L"))
    assert [len(w) for w in lin.weights] == [64, 512]
    csv = tmp_path / "sim.csv"
    assert main(["similarity", *args, "--layers", "E+L", "M", "--lin", str(out), "--out", str(csv)]) == 0
    df = pd.read_csv(csv)
    digest = lambda labels: {str(v).split("@")[-1] for v in labels if v != "none"}  # noqa: E731
    assert digest(df["lin"]) == digest(history["lin"]) and set(df["layer"]) == {"E+L", "M"}
    final = history.groupby("layer").tail(1).set_index("layer")["val_2afc"]
    scored = df[(df["lin"] != "none") & (df["dataset"] == "2afc/val")].set_index("layer")["value"]
    assert scored.sort_index().to_numpy() == pytest.approx(final.sort_index().to_numpy())
    # a folder without the weights of a tap set asked for
    assert main(["similarity", *args, "--layers", "S", "--lin", str(out), "--out", str(csv)]) == 2
    assert "has no squeezenet1_1/S.pth" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["similarity", "--layers", "E", "--lin", "nowhere.pth"], "lin weights file nowhere.pth does not exist"),
    (["similarity", "--layers", "lpips", "--archs", "resnet18"], "defined for alexnet, vgg16, squeezenet1_1"),
    (["lin", "train", "--layers", "E+Q", "--out", "x"], "unknown tap 'Q' for alexnet"),
])
def test_bad_lin_input_is_one_line_naming_it(root, tmp_path, capsys, argv, message):
    args = ["--archs", "alexnet", "--weights", "random", "--device", "cpu", "--data", str(root), "--quiet"]
    assert main([*argv[:1 + (argv[0] == "lin")], *args, *argv[1 + (argv[0] == "lin"):]]) == 2
    assert message in capsys.readouterr().err


def test_lin_train_needs_the_train_split(tmp_path, capsys):
    root = make_bapps(tmp_path / "val_only", size=1, train_size=0)
    argv = ["--archs", "alexnet", "--layers", "E", "--weights", "random", "--data", str(root), "--quiet"]
    assert main(["similarity", *argv, "--lin", "train", "--out", str(tmp_path / "s.csv")]) == 2
    assert "no BAPPS subsets of the train split" in capsys.readouterr().err


def test_lin_lpips_without_the_package_says_how_to_get_it(root, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)
    argv = ["--archs", "alexnet", "--layers", "lpips", "--weights", "random", "--data", str(root), "--quiet"]
    assert main(["similarity", *argv, "--lin", "lpips"]) == 2
    assert "pip install lpips" in capsys.readouterr().err
