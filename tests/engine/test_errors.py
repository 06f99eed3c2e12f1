"""Errors a researcher meets: unknown names, missing weights, bad weight files."""
import urllib.error

import pytest
import torch

from lossnets import LossNetwork
from lossnets.engine import WeightsNotFoundError
from lossnets.engine.weights import imagenet_checkpoint_path
from lossnets.engine import get_architecture


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown architecture 'vgg17'.*vgg16.*squeezenet1_1"):
        LossNetwork("vgg17", weights="random")


def test_unknown_tap_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown tap 'X' for alexnet; valid taps: E=features.1, S=features.4"):
        LossNetwork("alexnet", layers=("E", "X"), weights="random")


def test_missing_imagenet_weights_name_the_file(torch_home, monkeypatch):
    def offline(url, *a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError) as e:
        LossNetwork("alexnet", weights="imagenet", device="cpu")
    msg = str(e.value)
    assert str(torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth") in msg
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in msg


def test_imagenet_weights_from_torchvision_cache(torch_home):
    """A file where torchvision's cache keeps it is used without any download."""
    spec = get_architecture("squeezenet1_1")
    path = imagenet_checkpoint_path(spec)
    path.parent.mkdir(parents=True)
    torch.manual_seed(7)
    full = spec.build()
    torch.save(full.state_dict(), path)
    net = LossNetwork("squeezenet1_1", layers=("E",), weights="imagenet", device="cpu")
    torch.testing.assert_close(net.body.state_dict()["features.0.weight"], full.state_dict()["features.0.weight"])


def test_weights_file_missing_a_key_before_the_cut(tmp_path):
    sd = get_architecture("alexnet").build().state_dict()
    del sd["features.3.weight"]
    torch.save(sd, tmp_path / "w.pt")
    LossNetwork("alexnet", layers=("E",), weights=tmp_path / "w.pt", device="cpu")  # cut before features.3
    with pytest.raises(KeyError, match="features.3.weight"):
        LossNetwork("alexnet", layers=("S",), weights=tmp_path / "w.pt", device="cpu")


def test_weights_file_that_does_not_exist(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nope.pt does not exist"):
        LossNetwork("alexnet", weights=tmp_path / "nope.pt")


def test_bad_options():
    with pytest.raises(ValueError, match="normalize"):
        LossNetwork("alexnet", weights="random", normalize="zscore")
    with pytest.raises(ValueError, match="amp"):
        LossNetwork("alexnet", weights="random", amp="fp8")
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        LossNetwork("alexnet", layers=("E",), weights="random", device="cpu")(torch.rand(3, 32, 32))
