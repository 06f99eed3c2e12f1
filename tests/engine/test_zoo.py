"""The zoo: every torchvision classifier registered from data files that match torchvision and the models.

One sweep over all 80 architectures on the meta device (no weights, no compute): each cut at its taps gives
(N, C, H, W) with the recorded channels and stride, and its MACs at each recipe's size match torchvision's GFLOPS.
"""
import csv
import math
from pathlib import Path

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from lossnets.engine import get_architecture
from lossnets.engine.forms import cut
from lossnets.engine.recipes import FIELDS, recipes, torchvision_rows
from lossnets.engine.registry import architectures, meta_model, resolve_archs, zoo
from lossnets.engine.tap_rule import derive

DATA = Path(__file__).parents[2] / "engine" / "data"
# whose head after the trunk (the rule's last stage) is more than a few percent of the model: squeezenet's 1x1
# convolution to the 1000 classes at stride 16
BIG_HEADS = {"squeezenet1_0"}


def test_the_zoo_is_every_torchvision_classifier():
    names = torchvision.models.list_models(module=torchvision.models)
    assert list(zoo()) == names and len(names) == 80
    assert resolve_archs("zoo") == names and resolve_archs(None) == list(architectures())
    assert resolve_archs(["resnet18", "zoo"])[0] == "resnet18" and len(resolve_archs(["resnet18", "zoo"])) == 80
    for name, a in architectures().items():  # the study's 14 keep their Table II taps and the paper's recipe
        assert zoo()[name] is a and a.study and a.recipe().name == "IMAGENET1K_V1"
        assert [t.layer for t in a.taps] == ["E", "S", "M", "L"]
    for a in zoo().values():
        assert a.recipe() in a.recipes and (a.study or a.recipe().default)


def test_recipes_file_equals_torchvision_metadata():
    with open(DATA / "recipes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    fixed = lambda arch, meta: meta["min_size"][0] if zoo()[arch].fixed_size else None  # noqa: E731
    assert rows == torchvision_rows(fixed)
    assert list(rows[0]) == list(FIELDS) and sum(len(r) for r in recipes().values()) == len(rows) > 110


def test_study_taps_equal_table_ii():
    with open(DATA / "extraction_layers.csv", newline="") as f:
        table = {(r["arch"], r["layer"]): r for r in csv.DictReader(f)}
    for a in architectures().values():
        for t in a.taps:
            r = table[a.name, t.layer]
            want = (r["torchvision_module"], int(r["channels"]), r["paper_name"])
            assert (t.module, t.channels, t.paper_name) == want


@pytest.mark.parametrize("arch", ["resnet101", "squeezenet1_0", "efficientnet_b1", "swin_t", "vit_b_16",
                                  "densenet169"])
def test_the_rule_rederived_from_the_model_equals_the_file(arch):
    a = get_architecture(arch)
    rule, _ = derive(a.build(meta=True).eval(), a.fixed_size)
    assert [(t.layer, t.module, t.channels, t.stride, t.form) for t in rule] == \
        [(t.layer, t.module, t.channels, t.stride, t.form) for t in a.taps]


def test_every_architecture_traces_on_meta_with_its_recorded_taps_and_torchvision_gflops():
    """One sweep: per architecture and input size of its recipes, the cut at every tap; shapes and MACs."""
    worst = {}
    for a in zoo().values():
        for size in sorted({r.fixed_size or r.crop_size for r in a.recipes}):
            model = meta_model(a, size if a.fixed_size else None)
            with torch.inference_mode(False), torch.no_grad(), FlopCounterMode(display=False) as counter:
                out = cut(model, a.taps)(torch.empty(1, 3, size, size, device="meta"))
            for t in a.taps:
                n, c, h, w = out[t.layer].shape
                assert (c, h == w) == (t.channels, True), f"{a.name} {t.layer} at {size}: {tuple(out[t.layer].shape)}"
                stride = {"tokens": size // h, "class_token": 1}.get(t.form, 2 ** round(math.log2(size / h)))
                assert t.stride == stride, (a.name, t, size)
            if a.study:
                continue  # Table II's deepest taps are not the end of the trunk (inception_v3's L is Mixed_6e)
            macs = counter.get_total_flops() / 2
            for r in a.recipes:
                if (r.fixed_size or r.crop_size) == size:
                    worst[a.name, r.name] = macs / (r.gflops * 1e9)
    assert len(worst) == sum(len(a.recipes) for a in zoo().values() if not a.study)
    off = {k: round(v, 3) for k, v in worst.items() if not (0.96 <= v <= 1.005) and k[0] not in BIG_HEADS}
    assert not off, f"MACs to the deepest tap / torchvision's GFLOPS: {off}"
    assert all(0.7 < v < 1 for k, v in worst.items() if k[0] in BIG_HEADS)


def test_plots_of_the_whole_zoo_read_by_family():
    from lossnets.engine.profiler import arch_color, legend_labels
    labels = legend_labels(zoo())
    shown = [v for v in labels.values() if v != "_nolegend_"]
    assert sorted(shown) == sorted({a.family for a in zoo().values()}) and len(shown) == 21
    assert legend_labels(["vgg16", "vit_b_16"]) == {"vgg16": "vgg16", "vit_b_16": "vit_b_16"}
    assert arch_color("vgg16", True) == arch_color("vgg19_bn") != arch_color("vgg16")  # study: its own colour
