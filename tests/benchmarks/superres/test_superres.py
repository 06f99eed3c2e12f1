"""Benchmark 2 (super-resolution): a tiny run, the engine against a plain training loop, collapse, evaluation,\ncached targets."""
import copy
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lossnets import LossNetwork
from lossnets.benchmarks.superres import benchmark as superres
from lossnets.benchmarks.image_metrics import rgb_to_y, shave, to_uint8
from lossnets.benchmarks.superres.data import load_sr_folder, load_test_folder
from lossnets.benchmarks.superres.made import make_sr
from lossnets.benchmarks import training
from lossnets.benchmarks.superres.model import build_transform_net

ARCH = "squeezenet1_1"  # the smallest loss network: quick on a CPU
SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_sr(tmp_path_factory.mktemp("sr"), n_train=12, n_val=3, test_sets={"set5": 2, "set14": 2}, size=SIZE)


@pytest.fixture(scope="module")
def sets(data):
    return load_sr_folder(data / "train", SIZE, 4), load_sr_folder(data / "val", SIZE, 4)


def _net(layers):
    return LossNetwork(ARCH, layers=layers, weights="random", device="cpu")


def test_tiny_run_beats_initial_validation_psnr(data):
    df = superres.run(_net(("E", "S")), str(data / "train"), str(data / "val"),
                      {"set5": str(data / "test" / "set5"), "set14": str(data / "test" / "set14")},
                      scale=4, iterations=24, batch=4, size=SIZE, val_every=8, progress=False,
                      checkpoint_dir=data / "ckpt")
    assert len(df) == 2 * 2 * 2  # taps x test sets x metrics
    assert set(df["benchmark"]) == {"superres_x4"} and set(df["metric"]) == {"psnr", "ssim"}
    assert set(df["dataset"]) == {"set5", "set14"} and set(df["layer"]) == {"E", "S"}
    assert (df["status"] == "ok").all() and df["value"].notna().all()
    assert (df["weights"] == "random").all() and "paper_value" not in df  # the grid runner adds it
    assert (df["val_psnr"] > df["val_psnr_initial"]).all()
    assert df.loc[df.metric == "ssim", "value"].between(-1, 1).all()
    ckpt = torch.load(data / "ckpt" / f"superres_x4_{ARCH}_E_random.pt")
    model = build_transform_net(4, "paper")
    model.load_state_dict(ckpt["state_dict"])
    assert ckpt["val_score"] == pytest.approx(df.loc[df.layer == "E", "val_psnr"].iloc[0])
    assert (ckpt["scale"], ckpt["protocol"], ckpt["best_step"]) == (4, "paper", df.loc[df.layer == "E", "best_iteration"].iloc[0])


def _plain_training(net, layer, train, val, *, steps, batch, val_every, seed):
    """The super-resolution training written out without the engine: the seeded transform network, Adam at
    lr 1e-3, batches from a fresh seeded permutation each epoch (straddling epochs), the loss network's feature
    MSE at ``layer`` between the output and the HR image (per image, then the batch mean), validation PSNR (RGB,
    range 1) before training, every ``val_every`` steps and at the end.
    Returns (best state, best step, best PSNR, first PSNR)."""
    model = build_transform_net(4, "paper", seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen, queue = torch.Generator().manual_seed(seed), torch.empty(0, dtype=torch.long)

    def val_psnr():
        model.eval()
        with torch.no_grad():
            mse = (model(val.lr.float() / 255) - val.hr.float() / 255).square().flatten(1).mean(1)
        model.train()
        return float((10 * torch.log10(1 / mse.double())).mean())

    first, best = val_psnr(), (None, 0, -math.inf)
    for step in range(1, steps + 1):
        while len(queue) < batch:
            queue = torch.cat([queue, torch.randperm(len(train.lr), generator=gen)])
        idx, queue = queue[:batch], queue[batch:]
        with torch.no_grad():
            target = net(train.hr[idx].float() / 255)[layer]
        loss = (net(model(train.lr[idx].float() / 255))[layer] - target).square().flatten(1).mean(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % val_every == 0 or step == steps:
            score = val_psnr()
            if score > best[2]:
                best = (copy.deepcopy(model.state_dict()), step, score)
    return (*best, first)


def test_the_engine_trains_as_a_plain_loop(sets, data):
    """The engine's lockstep run of the super-resolution task (one target pass for E and S) ends where a plain
    loop per tap ends, on the same seeds in this process: the best step, the validation PSNR before training and
    at the best step, and the test PSNR and SSIM of the best state (the engine's evaluation against the formula
    and scikit-image on the plain model). The two do the same arithmetic, so their states agree to the last bit
    on any CPU; the tolerances still take a one-ulp divergence of the loss (measured: up to 2e-3 dB validation
    PSNR, 5e-3 dB test PSNR, 2e-4 SSIM after Adam's steps), and a learning rate 2% off fails them."""
    train, val = sets
    net = _net(("E", "S"))
    kw = dict(steps=6, val_every=2, seed=1)
    trainees = training.train_lockstep(net, superres.SuperResolution(train, val, 4, "paper", batch=3), **kw)
    tests = load_test_folder(data / "test" / "set5", SIZE, 4, "paper")
    lr, hr = torch.stack([im.lr for im in tests]).float() / 255, torch.stack([im.hr for im in tests]).double() / 255
    for t in trainees:
        state, step, score, first = _plain_training(net, t.layer, train, val, batch=3, **kw)
        assert t.ok and [h[0] for h in t.history] == [0, 2, 4, 6] and t.best_step == step, t.layer
        assert (t.initial_score, t.best_score) == (pytest.approx(first, abs=5e-3), pytest.approx(score, abs=5e-3))
        t.model.load_state_dict(t.best_state)
        ours = superres.evaluate(t.model, tests, 4, "paper", "cpu")
        plain = build_transform_net(4, "paper")
        plain.load_state_dict(state)
        with torch.no_grad():
            out = plain.eval()(lr).clamp(0, 1).double()
        psnr = np.mean([10 * np.log10(1 / float((o - g).square().mean())) for o, g in zip(out, hr)])
        ssim = np.mean([structural_similarity(g.numpy(), o.numpy(), channel_axis=0, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=1) for o, g in zip(out, hr)])
        assert (ours["psnr"], ours["ssim"]) == (pytest.approx(psnr, abs=1e-2), pytest.approx(ssim, abs=1e-3)), t.layer
    assert trainees[0].best_step != trainees[1].best_step  # each tap's own model: E peaks at step 2, S at 4


def test_constant_output_is_a_collapse(sets):
    train, val = sets
    task = superres.SuperResolution(train, val, 4, "paper", batch=2)
    model = task.build_model(0, torch.device("cpu")).eval()
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.fill_(50.0)  # tanh saturates: every pixel 1
    (t,) = training.build_trainees([_net(("E",))], task)
    with pytest.raises(training.Collapse, match="constant output"):
        task.validate(model, t)


def test_standard_evaluation_equals_skimage(data):
    scale = 4
    model = build_transform_net(scale, "standard", seed=0).eval()
    images = load_test_folder(data / "test" / "set14", SIZE, scale, "standard")
    ours = superres.evaluate(model, images, scale, "standard", "cpu")
    p, s = [], []
    for im in images:
        with torch.no_grad():
            out = model(im.lr[None].float() / 255)
        y_sr = shave(rgb_to_y(to_uint8(out)), scale)[0, 0].numpy()
        y_hr = shave(rgb_to_y(im.hr[None]), scale)[0, 0].numpy()
        assert y_sr.shape == (im.hr.shape[1] - 2 * scale, im.hr.shape[2] - 2 * scale)
        p.append(peak_signal_noise_ratio(y_hr, y_sr, data_range=255))
        s.append(structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=255))
    assert ours["psnr"] == pytest.approx(np.mean(p), abs=1e-6)
    assert ours["ssim"] == pytest.approx(np.mean(s), abs=1e-6)


def test_paper_values_beside_imagenet_rows():
    rows = [{"benchmark": "superres_x4", "arch": "vgg16", "layer": "E", "weights": w, "dataset": "set5",
             "metric": "psnr", "value": 1.0} for w in ("imagenet", "random")]
    from lossnets.benchmarks.sweep.results import tidy, with_paper_values
    df = with_paper_values(tidy(rows))
    assert df["paper_value"].iloc[0] == pytest.approx(30.3) and math.isnan(df["paper_value"].iloc[1])


def test_run_rejects_bad_options(data):
    with pytest.raises(ValueError, match="protocol"):
        superres.run(_net(("E",)), "a", "b", {"x": "c"}, protocol="x")
    with pytest.raises(ValueError, match="scale"):
        superres.run(_net(("E",)), str(data / "train"), str(data / "val"), {"x": "c"}, scale=3)


def test_targets_from_the_feature_cache(sets, tmp_path):
    from lossnets.cache import FeatureCache
    train, val = sets
    cache = FeatureCache(tmp_path / "cache", cache_policy="always", progress=False)
    models = superres.train_lockstep(_net(("E", "S")), train, val, scale=4, iterations=6, batch=4, val_every=3,
                                     cache=cache)
    assert all(m.ok for m in models)
    st = cache.stats()
    assert st["computed"] == len(train) and st["hot_hits"] + st["disk_hits"] > 0


def test_bf16_autocast_trains(sets):
    train, val = sets
    net = LossNetwork(ARCH, layers=("E",), weights="random", device="cpu", amp="bf16")
    (m,) = superres.train_lockstep(net, train, val, scale=4, iterations=2, batch=2)
    assert m.ok and math.isfinite(m.last_loss)
