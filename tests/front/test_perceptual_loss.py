"""PerceptualLoss: training reduces it with finite gradients (also at zero feature differences), it stays
frozen and outside its owner's parameters (the input contract: test_perceptual_contract.py)."""
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
