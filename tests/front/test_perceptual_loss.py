"""PerceptualLoss: training reduces it with finite gradients (also at zero feature differences), it stays
frozen and outside its owner's parameters, and the input contract holds."""
import pytest
import torch
from torch import nn

from lossnets import PerceptualLoss


def _images(n=2, size=40, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("distance", ["mse", "lpips"])
def test_training_reduces_the_loss(alexnet_file, distance):
    loss_fn = PerceptualLoss("alexnet", ("E", "S"), str(alexnet_file), distance=distance)
    target = _images(seed=1)
    logits = nn.Parameter(torch.zeros(2, 3, 40, 40))
    opt = torch.optim.Adam([logits], lr=0.1)
    losses = []
    for _ in range(8):
        loss = loss_fn(torch.sigmoid(logits), target)
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(logits.grad).all()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("distance", ["mse", "lpips"])
def test_identical_inputs_give_zero_loss_and_finite_gradients(alexnet_file, distance):
    loss_fn = PerceptualLoss("alexnet", ("E", "S", "L"), str(alexnet_file), distance=distance)
    target = _images()
    target[0] = 0  # zero images: zero feature vectors, where the LPIPS normalisation divides by ~0
    output = target.clone().requires_grad_(True)
    loss = loss_fn(output, target)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(output.grad).all()


def test_frozen_and_outside_its_owner(alexnet_file):
    class Trainer(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Conv2d(3, 3, 3, padding=1)
            self.loss = PerceptualLoss("alexnet", "S", str(alexnet_file), reduction="none")

    owner = Trainer()
    x = _images()
    assert owner.loss(owner.model(x).clamp(0, 1), x).shape == (2,)  # builds the network
    assert [n for n, _ in owner.named_parameters()] == ["model.weight", "model.bias"]
    assert all(k.startswith("model.") for k in owner.state_dict())
    owner.train().requires_grad_(True).double()
    net = owner.loss._loaded.net
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert owner.loss(x.double(), x.double()).dtype == torch.float32


def test_input_contract(alexnet_file):
    loss_fn = PerceptualLoss("alexnet", "E", str(alexnet_file), reduction="none")
    x, y = _images(seed=2), _images(seed=3)
    with pytest.raises(ValueError, match=r"span \[-0.99.*outside the declared input_range=\(0, 1\).*input_range=\(-1, 1\)"):
        loss_fn(x * 2 - 1, y)
    signed = PerceptualLoss("alexnet", "E", str(alexnet_file), reduction="none", input_range=(-1, 1))
    torch.testing.assert_close(signed(x * 2 - 1, y * 2 - 1), loss_fn(x, y))
    with pytest.raises(ValueError, match=r"span \[0.*input_range=\(-1, 1\)"):
        signed(x + 0.5, y)
    q = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(loss_fn(q, y), loss_fn(q.float() / 255, y))
    torch.testing.assert_close(loss_fn(x[:, :1], y), loss_fn(x[:, :1].expand(-1, 3, -1, -1), y))
    for channels in (2, 4):
        with pytest.raises(ValueError, match=f"3 \\(RGB\\) or 1 \\(grayscale.*got {channels}"):
            loss_fn(torch.rand(2, channels, 40, 40), y)
    with pytest.raises(TypeError, match="uint8 or floating-point"):
        loss_fn(torch.zeros(2, 3, 40, 40, dtype=torch.int64), y)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        loss_fn(x[0], y[0])
    with pytest.raises(ValueError, match="input_range"):
        PerceptualLoss("alexnet", "E", str(alexnet_file), input_range=(1, 0))
