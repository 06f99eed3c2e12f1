"""The zoo in the training benchmarks, lin training and the profiler (issue 25): small zoo networks and a transformer
tap (Swin's channels-last stage; ViT through a weights file of its prefix) each run one tiny step on the made
SYNTHETIC sets with seeded random weights and give finite rows."""
import math

import pandas as pd
import pytest
import torch

from lossnets import LossNetwork
from lossnets.benchmarks.autoencoder import benchmark as ae
from lossnets.benchmarks.autoencoder.made import make_svhn
from lossnets.benchmarks.segmentation import benchmark as seg
from lossnets.benchmarks.segmentation.made import make_roads
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.superres import benchmark as sr
from lossnets.benchmarks.superres.made import make_sr
from lossnets.cli import main
from lossnets.engine.forms import cut
from lossnets.engine.profiler import static_profile

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(arch, layers, weights="random"):
    return LossNetwork(arch, layers, weights, device="cpu")


def _vit_prefix_file(folder) -> str:
    """Seeded normal weights (std 0.02) of vit_b_16 up to its E tap: cheaper than initialising the whole model."""
    net = LossNetwork("vit_b_16", ["E"], "random", device="cpu", lazy=True)
    g = torch.Generator().manual_seed(0)
    state = {k: 0.02 * torch.randn(v.shape, generator=g) for k, v in cut(net.arch.build(meta=True), net.taps).state_dict().items()}
    torch.save(state, folder / "vit_b_16_E.pt")
    return str(folder / "vit_b_16_E.pt")


def _finite(df: pd.DataFrame, metric: str) -> None:
    rows = df[df["metric"] == metric]
    assert (rows["status"] == "ok").all() and rows["value"].map(math.isfinite).all(), rows


def test_superres_trains_zoo_networks_and_transformer_taps_in_lockstep(tmp_path):
    root = make_sr(tmp_path / "sr", n_train=2, n_val=1, test_sets={"set5": 1}, size=32)
    nets = [_net("mobilenet_v3_small", ["E", "L"]), _net("swin_t", ["E"]),
            _net("vit_b_16", ["E_cls"], _vit_prefix_file(tmp_path))]
    df = sr.run(nets, str(root / "train"), str(root / "val"), {"set5": str(root / "test" / "set5")}, iterations=1,
                batch=1, size=32, progress=False)
    assert set(zip(df["arch"], df["layer"])) == {("mobilenet_v3_small", "E"), ("mobilenet_v3_small", "L"),
                                                 ("swin_t", "E"), ("vit_b_16", "E_cls")}
    _finite(df, "psnr")
    assert df.loc[df["arch"] == "vit_b_16", "config"].str.contains("resize=224").all()


def test_segmentation_and_autoencoder_train_a_zoo_network(tmp_path):
    roads = make_roads(tmp_path / "roads", n_train=2, n_valid=1, n_test=1, size=32)
    df = seg.run(_net("shufflenet_v2_x0_5", ["E", "L"]), str(roads), epochs=1, batch=2, size=32, progress=False)
    _finite(df, "quality")
    svhn = make_svhn(tmp_path / "svhn", n_train=20, n_test=10, n_extra=20)
    df = ae.run(_net("mobilenet_v3_small", ["E"]), str(svhn), epochs=1, batch=10, mlp_epochs=1, progress=False)
    _finite(df, "accuracy")


def test_lin_train_learns_weights_for_a_zoo_tap_set(tmp_path, capsys):
    root = make_bapps(tmp_path / "bapps", size=1, jnd_size=1, train_size=2, seed=6)
    out = tmp_path / "lin"
    assert main(["lin", "train", "--archs", "shufflenet_v2_x0_5", "--layers", "E+L", "--weights", "random",
                 "--device", "cpu", "--data", str(root), "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    history = pd.read_csv(out / "lin_train.csv")
    assert set(history["arch"]) == {"shufflenet_v2_x0_5"} and history["val_2afc"].map(math.isfinite).all()
    assert (out / "shufflenet_v2_x0_5" / "E+L.pth").is_file()


def test_profile_runs_zoo_networks_and_profiles_vit_at_the_size_it_runs(tmp_path):
    out = tmp_path / "profile.csv"
    assert main(["profile", "--archs", "mobilenet_v3_small", "swin_t", "--layers", "E", "L", "--size", "64",
                 "--batch", "1", "--device", "cpu", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(zip(df["arch"], df["layer"])) == [("mobilenet_v3_small", "E"), ("mobilenet_v3_small", "L"),
                                                  ("swin_t", "E"), ("swin_t", "L")]
    assert list(df["form"]) == ["nchw", "nchw", "nhwc", "nchw"] and (df["net_size"] == 64).all()
    assert (df["images_per_s"] > 0).all() and (df["peak_memory_mib"] > 0).all() and (df["macs"] > 0).all()
    small, native = static_profile("vit_b_16", "E", 64), static_profile("vit_b_16", "E", 224)
    assert small == native and small["net_size"] == 224  # the loss network resizes 64x64 images to 224
