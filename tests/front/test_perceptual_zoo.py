"""PerceptualLoss and PerceptualMetric with zoo networks (issue 25): a small convolutional one and ViT, whose model is
built for 224x224 and gets any input size resized to it by the loss network; each equals the distance computed
directly from LossNetwork's features of the same seeded weights."""
import pytest
import torch

from lossnets import LossNetwork, PerceptualLoss, PerceptualMetric
from lossnets.engine.forms import cut
from lossnets.kernels import feature_mse, perceptual_distance

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(size, n=2):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g)


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    """Seeded normal weights (std 0.02) of vit_b_16's prefix up to its E tap, as a weights file: cheaper than
    initialising the whole model for random weights."""
    net = LossNetwork("vit_b_16", ["E"], "random", device="cpu", lazy=True)
    keys = cut(net.arch.build(meta=True), net.taps).state_dict()
    g = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "vit_b_16_E.pt"
    torch.save({k: 0.02 * torch.randn(v.shape, generator=g) for k, v in keys.items()}, path)
    return str(path)


def test_vit_takes_any_size_resized_as_the_loss_network_does(vit_file):
    x0, x1 = _pair(64, n=1)
    metric = PerceptualMetric("vit_b_16", ["E", "E_cls"], vit_file)
    got = metric(x0, x1, per_tap=True)
    net = LossNetwork("vit_b_16", ["E", "E_cls"], vit_file, device="cpu")
    f0, f1 = net(x0), net(x1)
    assert f0["E"].shape == (1, 768, 14, 14) and f0["E_cls"].shape == (1, 768, 1, 1)
    for layer in ("E", "E_cls"):
        torch.testing.assert_close(got.per_tap[layer], perceptual_distance(f0[layer], f1[layer]))
    assert "resize=224(bilinear)" in metric.config and "resize=none" not in metric.config
    # maxvit_t, the other fixed-size model, passes the front door's size check at 64x64 too (nothing built)
    maxvit = PerceptualMetric("maxvit_t", "E", "random")
    maxvit.checked_pair(("x0", "x1"), x0, x1)
    assert not maxvit._loaded.net.built


def test_a_zoo_loss_trains_through_its_taps():
    x, target = _pair(64)
    x.requires_grad_(True)
    loss_fn = PerceptualLoss("mobilenet_v3_small", ["E", "L"], "random")
    loss = loss_fn(x, target)
    net = LossNetwork("mobilenet_v3_small", ["E", "L"], "random", device="cpu")
    fx, ft = net(x), net(target)
    want = sum(feature_mse(fx[k], ft[k], reduction="none") for k in ("E", "L")).mean()
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
