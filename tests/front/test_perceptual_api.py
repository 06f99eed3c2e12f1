"""The Python API as the command line and lpips users expect it: tap sets and lists of them, the lpips names as
aliases, every option in help(), errors naming the tap, the file or the missing weights when the module is built,
and ``import lossnets`` without torch."""
import inspect
import subprocess
import sys
import urllib.error

import pytest
import torch

import lossnets
from lossnets import PerceptualLoss, PerceptualMetric
from lossnets.engine.lin_weights import LPIPS_TAPS
from lossnets.errors import LossnetsError

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny images: one thread is faster on a loaded machine


def _images(n, size=40, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_tap_sets_and_lists_of_them(alexnet_file):
    weights = str(alexnet_file)
    assert PerceptualMetric("alexnet", "lpips", weights).layers == ("E", "S", "M", "features.9", "L")
    x, y = _images(2, seed=1), _images(2, seed=2)
    joined = PerceptualMetric("alexnet", "E+S+M+L", weights)(x, y)
    torch.testing.assert_close(joined.value, PerceptualMetric("alexnet", ("E", "S", "M", "L"), weights)(x, y).value)
    both = PerceptualMetric("alexnet", ["lpips", "E+S+M+L"], weights)
    assert both.layers == ("E", "S", "M", "features.9", "L")  # every tap once
    r = both(x, y, per_tap=True)
    assert list(r.per_set) == ["lpips", "E+S+M+L"]  # each set on its own, as the command line's rows
    torch.testing.assert_close(r.per_set["lpips"], PerceptualMetric("alexnet", "lpips", weights)(x, y).value)
    torch.testing.assert_close(r.per_set["E+S+M+L"], joined.value)
    torch.testing.assert_close(r.value, sum(r.per_tap.values()))
    both.update(x, y)
    torch.testing.assert_close(both.compute().per_set["lpips"], r.per_set["lpips"].mean())
    assert list(both.matrix(x, per_tap=True).per_set) == ["lpips", "E+S+M+L"]


def test_kumar_alone_is_the_mean_of_its_taps(alexnet_file):
    """layers="kumar" (Kumar et al.'s mean ensemble): the value is the mean of the four stage taps' distances, as
    the similarity rows score it, not their sum."""
    x, y = _images(2, seed=1), _images(2, seed=2)
    kumar = PerceptualMetric("alexnet", "kumar", str(alexnet_file), distance="lpips")(x, y, per_tap=True)
    summed = PerceptualMetric("alexnet", "E+S+M+L", str(alexnet_file), distance="lpips")(x, y)
    torch.testing.assert_close(kumar.value, summed.value / 4)
    torch.testing.assert_close(kumar.per_set["kumar"], kumar.value)

def test_lpips_names_are_aliases():
    metric = PerceptualMetric("vgg", lin="lpips", weights="random")
    assert metric.arch == "vgg16" and metric.lin_label.startswith("lpips-v0.1@")
    assert [s.name for s in metric.sets] == ["lpips"]
    for alias, name in (("alex", "alexnet"), ("squeeze", "squeezenet1_1")):
        assert PerceptualLoss(alias, "E", "random").arch == name
    with pytest.raises(ValueError, match=r"unknown architecture 'vgg17'; valid architectures: .*\(aliases: "
                                         r"alex=alexnet, vgg=vgg16, squeeze=squeezenet1_1\)"):
        PerceptualLoss("vgg17", "E", "random")
    with pytest.raises(ValueError, match=r"give the layers that the lin weights .* known for "
                                         + ", ".join(LPIPS_TAPS) + " only, not resnet18"):
        PerceptualMetric("resnet18", lin="some.pth", weights="random")
    with pytest.raises(ValueError, match=r"lin='lpips' \(LPIPS v0.1\) weighs the taps of layers='lpips' .*not E\+S "
                                         r"of alexnet"):
        PerceptualMetric("alex", "E+S", "random", lin="lpips")


def test_unknown_tap_lists_the_letters_and_accepts_module_paths():
    with pytest.raises(ValueError, match=r"unknown tap 'relu3' for alexnet; valid taps: E=features.1, S=features.4, "
                                         r"M=features.7, L=features.\d+, or any module path of the model"):
        PerceptualLoss("alexnet", "relu3", "random")
    assert PerceptualLoss("alexnet", "features.9", "random").layers == ("features.9",)


@pytest.mark.parametrize("cls, distance, reduction", [(PerceptualLoss, "mse", "mean"),
                                                      (PerceptualMetric, "lpips", "none")])
def test_help_shows_every_option_with_its_default(cls, distance, reduction):
    params = inspect.signature(cls).parameters
    assert not any(p.kind == p.VAR_KEYWORD for p in params.values())
    assert params["distance"].default == distance and params["reduction"].default == reduction
    doc = cls.__init__.__doc__
    for name in params:
        assert f"``{name}``" in doc, name
    assert cls.forward.__doc__ and "input_range" in cls.forward.__doc__
    assert "unweighted (baseline) distance at the chosen taps, not LPIPS" in (PerceptualMetric.__doc__ or "")


def test_corrupt_weights_and_lin_files_are_one_line_errors_at_construction(tmp_path, alexnet_file):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a torch file\n")
    with pytest.raises(ValueError, match=f"{bad} \\(25 bytes\\) is not a readable torch.save'd file of tensors "
                                         r"\(expected a state_dict of the full torchvision model\)") as e:
        PerceptualLoss("alexnet", "E", str(bad))
    assert "\n" not in str(e.value) and isinstance(e.value, LossnetsError)  # the command line: one line, exit 2
    with pytest.raises(ValueError, match=f"{bad} .*expected lin weights in lpips's format"):
        PerceptualMetric("alexnet", None, str(alexnet_file), lin=str(bad))


def test_unavailable_imagenet_weights_fail_at_construction(torch_home, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (SYNTHETIC)")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(FileNotFoundError, match=r"ImageNet weights .*alexnet.* not on disk and could not be "
                                                r"downloaded.*alexnet-owt"):
        PerceptualLoss("alexnet", "E")


def test_import_lossnets_does_not_import_torch():
    code = "import sys, lossnets; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert lossnets.LPIPS.__module__ == "lossnets.lpips_metric"  # the names come on first use
    assert set(lossnets.__all__) <= set(dir(lossnets))
    with pytest.raises(AttributeError, match="no attribute 'Perceptual'"):
        lossnets.Perceptual  # noqa: B018
