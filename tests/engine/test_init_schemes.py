"""Initialisation schemes of random-weight loss networks (``weights="random:SCHEME"``): each scheme's statistics on a
large convolution, reproducibility and distinctness per seed and scheme, and the scale of activations through
vgg16's depth that the ``liu`` scheme exists for."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from lossnets.benchmarks.data.photos import photo_patches
from lossnets.engine import LossNetwork, get_architecture
from lossnets.engine.init_schemes import (PROBE_BATCH, PROBE_SIZE, SCHEMES, initialise, probe_images,
                                          random_scheme)
from lossnets.engine.registry import NORMALIZATIONS
from lossnets.engine.weights import random_weights_path

MEAN_STD = NORMALIZATIONS["imagenet"]


def built(seed: int, width: int = 512) -> nn.Sequential:
    """A stem that takes the probe cheaply to 12x12, then a large ``width`` x ``width`` x 3 x 3 convolution (2.4M
    weights at the default width), with the builder's (PyTorch's) init under ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 64, 7, stride=4), nn.ReLU(), nn.MaxPool2d(4), nn.Conv2d(64, width, 3),
                         nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, width, 3))


def small_net(scheme: str, seed: int, width: int = 512, modules=None) -> nn.Sequential:
    return initialise(built(seed, width), scheme, seed, MEAN_STD, modules)


@pytest.mark.parametrize("scheme, width, std", [
    ("kaiming", 512, math.sqrt(2 / (512 * 9))),
    ("xavier", 512, math.sqrt(2 / (512 * 9 + 512 * 9))),
    ("orthogonal", 256, math.sqrt(2 / (256 * 9))),  # sqrt(2 / max(fan_in, C_out)); 0.6M weights (a cheaper QR)
])
def test_stated_std_on_a_large_conv(scheme, width, std):
    net = small_net(scheme, 0, width)
    w = net[6].weight
    assert abs(w.mean().item()) < 0.01 * std
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert (net[6].bias == 0).all()
    bn = net[4]
    assert (bn.weight == 1).all() and (bn.bias == 0).all() and (bn.running_var == 1).all()
    if scheme == "orthogonal":
        flat = w.reshape(width, -1).double()
        torch.testing.assert_close(flat @ flat.T, 2 * torch.eye(width, dtype=torch.float64), atol=1e-4, rtol=0)


def test_liu_is_the_kaiming_draw_calibrated_to_unit_output_std_on_its_probe():
    kaiming, liu = small_net("kaiming", seed=4), small_net("liu", seed=4)
    for i in (0, 3, 6):
        ratio = liu[i].weight / kaiming[i].weight
        assert ratio.min().item() == pytest.approx(ratio.max().item(), rel=1e-4)  # one positive factor per layer
        assert ratio.min().item() > 0
    h = probe_images(PROBE_BATCH, PROBE_SIZE, 4, MEAN_STD)  # the probe again, through the plain (hook-free) network
    with torch.no_grad():
        for i, layer in enumerate(liu.eval()):
            h = layer(h)
            if isinstance(layer, nn.Conv2d):
                assert h.std().item() == pytest.approx(1.0, rel=1e-3), f"conv {i}"


def test_reproducible_per_seed_distinct_across_seeds_and_schemes():
    weights = {(scheme, seed): small_net(scheme, seed, 32)[3].weight for scheme in SCHEMES for seed in (0, 1)}
    for scheme in SCHEMES:
        torch.testing.assert_close(small_net(scheme, 0, 32)[3].weight, weights[scheme, 0], rtol=0, atol=0)
    keys = list(weights)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not torch.equal(weights[a], weights[b]), (a, b)


def test_torchvision_scheme_is_the_builders_init():
    for a, b in zip(built(2, 32).parameters(), small_net("torchvision", 2, 32).parameters()):
        assert torch.equal(a, b)


def test_weights_strings():
    assert random_scheme("random") == "torchvision" and random_scheme("random:liu") == "liu"
    assert random_scheme("imagenet") is None and random_scheme("/some/file.pt") is None
    with pytest.raises(ValueError, match="unknown initialisation scheme 'he'.*kaiming"):
        random_scheme("random:he")
    with pytest.raises(ValueError, match="random:SCHEME"):
        LossNetwork("alexnet", ("E",), weights="random:he")


def test_loss_network_per_scheme_and_seed():
    arch = get_architecture("squeezenet1_1")
    x = torch.rand(2, 3, 32, 32)
    nets = {(w, s): LossNetwork("squeezenet1_1", ("E",), w, seed=s, device="cpu")
            for w, s in (("random", 3), ("random:kaiming", 3), ("random:kaiming", 4))}
    assert nets["random", 3].config.split()[1].startswith("weights=random:torchvision-seed3@")
    assert nets["random:kaiming", 4].config.split()[1].startswith("weights=random:kaiming-seed4@")
    feats = {k: n(x)["E"] for k, n in nets.items()}
    assert not torch.equal(feats["random", 3], feats["random:kaiming", 3])
    assert not torch.equal(feats["random:kaiming", 3], feats["random:kaiming", 4])
    # each (architecture, scheme, seed) has its own stored prefix; plain "random" keeps its file name
    assert random_weights_path(arch, 3, "kaiming").is_file() and random_weights_path(arch, 4, "kaiming").is_file()
    assert random_weights_path(arch, 3) == random_weights_path(arch, 3, "torchvision")
    again = LossNetwork("squeezenet1_1", ("E",), "random:kaiming", seed=4, device="cpu")(x)["E"]
    torch.testing.assert_close(again, feats["random:kaiming", 4], rtol=0, atol=0)


def test_front_door_takes_a_scheme():
    from lossnets import PerceptualLoss, PerceptualMetric
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    loss = PerceptualLoss("alexnet", ("E", "S"), weights="random:liu", seed=3)
    metric = PerceptualMetric("alexnet", ("E", "S"), weights="random:liu", seed=3)
    assert torch.isfinite(loss(x, y)) and loss(x, y) > 0
    result = metric(x, y)
    assert torch.isfinite(result.value).all() and "random:liu-seed3" in result.config


def first_to_last_ratio(scheme: str, images: torch.Tensor) -> float:
    """Activation std at vgg16's last ReLU (its L tap) over that at its first ReLU."""
    net = LossNetwork("vgg16", ("features.1", "L"), f"random:{scheme}", seed=0, device="cpu", channels_last=False)
    with torch.no_grad():
        f = net(images)
    return (f["L"].std() / f["features.1"].std()).item()


def test_activation_scale_through_vgg16_depth():
    """Liu et al.'s requirement (and a fan-in Gaussian's property): the std neither explodes nor vanishes from
    the first block to the last; torchvision's fan-out VGG init loses most of it (at 112 px)."""
    images = torch.from_numpy(np.stack(photo_patches(2, 112, seed=5))).permute(0, 3, 1, 2).float() / 255
    ratios = {s: first_to_last_ratio(s, images) for s in ("liu", "kaiming", "torchvision")}
    assert 0.5 <= ratios["liu"] <= 2, ratios
    assert 0.5 <= ratios["kaiming"] <= 2, ratios
    assert ratios["torchvision"] < 0.5, ratios


def test_a_layers_draw_does_not_depend_on_which_layers_are_drawn():
    """The stored prefix of a network may reach deeper on a later request: its first layers stay the same."""
    full, part = small_net("kaiming", 5, 32), small_net("kaiming", 5, 32, modules={"0", "3", "4"})
    assert torch.equal(part[0].weight, full[0].weight) and torch.equal(part[3].weight, full[3].weight)
    assert torch.equal(part[6].weight, built(5, 32)[6].weight)  # not drawn: the builder's init
