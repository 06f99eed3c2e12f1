"""Profiler figures against torchvision's documentation and the paper's table."""
import pandas as pd
import pytest
import torch

from lossnets.cli import main
from lossnets.engine import architectures, get_architecture
from lossnets.engine.profiler import count_macs, depth, static_profile
from lossnets.engine.registry import meta_model
from lossnets.engine.truncate import truncate

# after these archs' deepest tap only pooling and the classifier's linear layers remain
ONLY_HEAD_AFTER_L = ["vgg11", "vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet50", "resnext50_32x4d",
                     "googlenet", "densenet121", "alexnet", "efficientnet_b0"]


@pytest.fixture(scope="module")
def static():
    return pd.DataFrame([static_profile(a, t.layer) for a in architectures() for t in get_architecture(a).taps])


@pytest.mark.parametrize("arch", list(architectures()))
def test_full_model_macs_equal_torchvision_documentation(arch):
    spec = get_architecture(arch)
    weights = spec.weights()
    size = weights.transforms().crop_size[0]  # inception_v3 is documented at 299, efficientnet_b7 at 600
    macs = count_macs(meta_model(spec), torch.empty(1, 3, size, size, device="meta"))
    assert macs / 1e9 == pytest.approx(weights.meta["_ops"], abs=1e-3)


def test_macs_rise_from_early_to_late(static):
    for arch, g in static.groupby("arch"):
        assert g["macs"].is_monotonic_increasing and g["macs"].is_unique, arch
        assert g["params"].is_monotonic_increasing, arch
        assert (g["flops"] == 2 * g["macs"]).all()


@pytest.mark.parametrize("arch", ONLY_HEAD_AFTER_L)
def test_deepest_tap_sits_just_below_whole_model(arch, static):
    ops = get_architecture(arch).weights().meta["_ops"] * 1e9
    late = static[(static.arch == arch) & (static.layer == "L")].iloc[0]
    assert 0.9 * ops < late["macs"] <= ops


def test_depth_to_the_deepest_tap_matches_the_papers_depth(static):
    """The paper counts the longest chain of matrix multiplications; only the classifier follows L here."""
    late = static[static.layer == "L"].set_index("arch")["depth"]
    assert late["vgg16"] == 13 and get_architecture("vgg16").depth == 13 + 3  # three linear layers follow
    for arch in ["resnet18", "resnet50", "resnext50_32x4d", "googlenet", "densenet121", "efficientnet_b0"]:
        assert late[arch] + 1 == get_architecture(arch).depth, arch  # one linear layer follows
    assert late["squeezenet1_1"] + 1 == get_architecture("squeezenet1_1").depth  # one 1x1 conv classifier


def test_tap_channels_and_features(static):
    row = static[(static.arch == "vgg16") & (static.layer == "S")].iloc[0]
    assert (row["channels"], row["features"]) == (128, 128 * 112 * 112)
    assert (static["params"] <= static["params_total"]).all()


def test_depth_counts_longest_branch():
    spec = get_architecture("resnet18")
    gm = truncate(meta_model(spec), {"layer2": "M"})
    assert depth(gm) == 1 + 4 + 4  # stem conv, two basic blocks per stage: the 1x1 shortcut is shorter


def test_profile_cli_writes_table_and_plot(tmp_path, capsys):
    out = tmp_path / "profile.csv"
    assert main(["profile", "--archs", "squeezenet1_1", "--layers", "E", "L", "--size", "64", "--batch", "2",
                 "--device", "cpu", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    for col in ["arch", "layer", "params", "params_total", "depth", "macs", "flops", "channels", "features",
                "images_per_s", "peak_memory_mib"]:
        assert col in df.columns
    assert list(df["layer"]) == ["E", "L"] and (df["images_per_s"] > 0).all() and (df["peak_memory_mib"] > 0).all()
    assert out.with_suffix(".png").stat().st_size > 1000


def test_list_prints_the_grid(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 56
    assert "features.29" in capsys.readouterr().out or any("features.29" in ln for ln in lines)


def test_the_shared_meta_model_is_usable_whatever_mode_built_it():
    meta_model.cache_clear()
    try:
        with torch.inference_mode():
            model = meta_model(get_architecture("alexnet"))
        assert not any(p.is_inference() for p in model.parameters())
        assert count_macs(model, torch.empty(1, 3, 224, 224, device="meta")) > 0
    finally:
        meta_model.cache_clear()
