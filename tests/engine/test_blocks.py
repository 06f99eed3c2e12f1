"""Block taps (issue 29): data/zoo_blocks.csv against the models and the stage taps, the rule re-derived for one
network of each kind of trunk end, and the block taps of the study's 14 and one zoo network per family against
forward hooks on the full torchvision model with the same weights."""
import csv
from pathlib import Path

import pytest
import torch
import torchvision

from lossnets import LossNetwork
from lossnets.engine import expand_layers, get_architecture, loss_network, relative_depth
from lossnets.engine.block_rule import derive_blocks
from lossnets.engine.catalog import blocks, layer_name
from lossnets.engine.registry import architectures, meta_model, zoo
from lossnets.engine.tap_rule import derive
from lossnets.engine.tap_sets import tap_sets

from test_zoo_values import FAMILY_MEMBERS, documented, hooked

DATA = Path(__file__).parents[2] / "engine" / "data"
SIZE = 80  # inception_v3 needs at least 75x75


def test_every_architecture_lists_its_blocks_along_the_trunk_to_its_end():
    with open(DATA / "zoo_blocks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["arch"] for r in rows} == set(zoo())
    for a in zoo().values():
        taps = blocks(a.name)
        assert [(t.module, t.paper_name, t.channels, t.stride, t.form, f"{t.rel_depth:.4f}") for t in taps] == \
            [(r["module"], r["kind"], int(r["channels"]), int(r["stride"]), r["form"], r["rel_depth"])
             for r in rows if r["arch"] == a.name]
        depths = [t.rel_depth for t in taps]
        assert all(x < y for x, y in zip(depths, depths[1:])) and depths[-1] == 1.0 and depths[0] > 0, a.name
        modules = dict(meta_model(a).named_modules())
        assert all(t.module in modules for t in taps), a.name
        for t in taps:  # a block at a stage tap's module is that tap, with the same figures
            stage = next((s for s in a.taps if s.module == t.module), None)
            if stage:
                assert (stage.channels, stage.stride, stage.form, stage.rel_depth) == \
                    (t.channels, t.stride, t.form, t.rel_depth), (a.name, t.module)
        if not a.study:  # the trunk ends at the rule's L: that module, or the block it ends with
            end = a.tap("L").module
            assert taps[-1].module == end or taps[-1].module.startswith(end + "."), a.name
    assert {r["kind"] for r in rows} >= {"BasicBlock", "Bottleneck", "conv-ReLU", "_DenseLayer", "Fire", "Inception",
                                         "InceptionE", "MBConv", "FusedMBConv", "EncoderBlock", "trunk end"}


# one network per way the list ends: the trunk end a block (squeezenet), the stage that ends with the last block
# (resnet), appended after blocks that end before it (mobilenet) or at its depth (vgg's pool, densenet's
# norm5, swin's permute), a ViT's token blocks
@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet50", "mobilenet_v2", "vgg16_bn",
                                  "densenet121", "swin_v2_t", "vit_b_32"])
def test_the_block_rule_rederived_from_the_model_equals_the_file(arch):
    a = get_architecture(arch)
    model = meta_model(a)
    got = derive_blocks(model, derive(model, a.fixed_size)[1], a.fixed_size)
    assert [(b.module, b.kind, b.channels, b.stride, b.form, round(b.rel_depth, 4)) for b in got] == \
        [(t.module, t.paper_name, t.channels, t.stride, t.form, t.rel_depth) for t in blocks(arch)]


VALUE_ARCHS = list(dict.fromkeys([*architectures(), *FAMILY_MEMBERS]))


@pytest.mark.parametrize("arch", VALUE_ARCHS)
def test_block_and_stage_taps_equal_the_hooked_full_model(arch, one_thread, tmp_path, monkeypatch):
    """stages + blocks in one network, given the seeded full model's weights as a weights file (read from memory:
    hundreds of MB written and read back would cost more than the check)."""
    spec = get_architecture(arch)
    kwargs = {"aux_logits": False, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
    torch.manual_seed(0)
    full = torchvision.models.get_model(arch, weights=None, **kwargs).eval()
    (tmp_path / "w.pth").touch()
    monkeypatch.setattr(loss_network, "file_state_dict", lambda path: full.state_dict())
    layers = expand_layers(arch, ["stages", "blocks"])
    net = LossNetwork(arch, layers, weights=str(tmp_path / "w.pth"), normalize="none", device="cpu",
                      channels_last=False)
    torch.manual_seed(1)
    x = torch.rand(1, 3, spec.fixed_size or SIZE, spec.fixed_size or SIZE + 16)
    got = net(x)
    taps = [spec.tap(layer) for layer in layers[:4]] + [t for t in blocks(arch) if layer_name(arch, t.module)
                                                         not in layers[:4]]
    assert len(taps) == len(layers) == len(got)
    ref = hooked(full, [t.module for t in taps], x)
    for t in taps:
        want = documented(t.form, ref[t.module])
        assert got[t.layer].shape == want.shape and want.shape[1] == t.channels, (arch, t.layer)
        torch.testing.assert_close(got[t.layer], want, rtol=1e-4, atol=1e-5 * float(want.abs().max()) + 1e-6,
                                   msg=f"{arch} {t.layer} ({t.form})")


def test_expand_layers_and_relative_depth():
    stage_and_blocks = expand_layers("resnet18", ["stages", "blocks", "E", "kumar", "layer2.0.conv1"])
    assert stage_and_blocks == ("E", "S", "M", "L", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0",
                                "layer3.1", "layer4.0", "layer4.1", "kumar", "layer2.0.conv1")
    # a block at a stage tap's module is named by the stage's letter, as a network's outputs and rows are
    assert expand_layers("squeeze", "blocks") == ("S", "features.4", "features.6", "M", "features.9", "features.10",
                                                  "features.11", "L")
    assert LossNetwork("squeezenet1_1", "features.12", weights="random", lazy=True).layers == ("L",)
    # Python: a network, and the tap sets of the metrics and similarity (a set per tap), expand them too
    assert LossNetwork("resnet18", "blocks", weights="random", lazy=True).layers == stage_and_blocks[4:12]
    assert [s.name for s in tap_sets("squeezenet1_1", ("stages", "kumar"))] == ["E", "S", "M", "L", "kumar"]
    assert relative_depth("resnet18", "layer4.1") == relative_depth("resnet18", "layer4") == 1.0
    assert relative_depth("resnet18", "S") == relative_depth("resnet18", "layer1") == blocks("resnet18")[1].rel_depth
    assert relative_depth("vit_b_16", "E_cls") == relative_depth("vit_b_16", "E") < 1
    assert relative_depth("resnet18", "E+S") is relative_depth("resnet18", "layer2.0.conv1") is None
    t = get_architecture("resnet18").resolve("layer2.0")
    assert (t.layer, t.module, t.channels, t.stride, t.form, t.paper_name) == \
        ("layer2.0", "layer2.0", 128, 8, "nchw", "BasicBlock")


def test_plan_expands_blocks_and_stages_per_architecture(tmp_path):
    from lossnets.benchmarks.sweep.config import SweepConfig
    from lossnets.benchmarks.sweep.plan import plan
    d = str(tmp_path)
    c = SweepConfig.from_dict({"sweep": {"archs": ["resnet18", "squeezenet1_1"], "layers": ["stages", "blocks"]},
                               "similarity": {"data": str(tmp_path)},
                               "superres": {"train": d, "val": d, "test": {"set5": d}, "layers": ["blocks", "E"],
                                            "archs": ["squeezenet1_1"]}})
    cells = [(c.benchmark, c.arch, c.layer) for c in plan(c)]
    assert cells == [("similarity", "resnet18", layer) for layer in expand_layers("resnet18", ["stages", "blocks"])] + \
        [("similarity", "squeezenet1_1", layer) for layer in ("E", "S", "M", "L", "features.4", "features.6",
                                                              "features.9", "features.10", "features.11")] + \
        [("superres_x4", "squeezenet1_1", layer) for layer in (*expand_layers("squeezenet1_1", "blocks"), "E")]


def test_cli_lists_block_taps_and_runs_similarity_on_them(tmp_path, capsys, one_thread):
    """lossnets list --blocks, and similarity --layers blocks on the made BAPPS set: a row set per block, each
    with its relative depth, every cell a file named by its tap in the run folder."""
    import pandas as pd

    from lossnets.benchmarks.similarity.made import make_bapps
    from lossnets.cli import main
    assert main(["list", "--blocks", "--archs", "alexnet", "--out", str(tmp_path / "blocks.csv")]) == 0
    printed = capsys.readouterr().out.splitlines()
    listed = pd.read_csv(tmp_path / "blocks.csv")
    names = expand_layers("alexnet", "blocks")
    assert list(listed["layer"]) == list(names) == ["E", "S", "M", "features.9", "features.12"]
    assert list(listed["module"]) == [t.module for t in blocks("alexnet")] and len(printed) == 1 + len(names)
    assert list(listed["kind"]) == ["conv-ReLU"] * 4 + ["trunk end"] and listed["rel_depth"].iloc[-1] == 1
    bapps = make_bapps(tmp_path / "bapps", size=1, jnd_size=1, train_size=0, seed=3)
    out = tmp_path / "s.csv"
    assert main(["similarity", "--data", str(bapps), "--archs", "alexnet", "--layers", "blocks", "--weights",
                 "random", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df["layer"]) == set(names) and df["value"].notna().all()
    assert df.groupby("layer").size().nunique() == 1  # the same rows per block
    assert (df["relative_depth"] == df["layer"].map(lambda layer: relative_depth("alexnet", layer))).all()
    assert (out.with_name("s.run") / "cells" / "similarity" / "alexnet" / "features.9.csv").is_file()
