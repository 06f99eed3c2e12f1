"""The delineation U-Net and its refinement: shapes at any size, the published widths, seeding, gradients
through every iteration, the loss weights, and a few steps that learn the made roads."""
import pytest
import torch
import torch.nn.functional as F

from lossnets.benchmarks.segmentation.data import load_split, random_crops
from lossnets.benchmarks.segmentation.made import make_roads
from lossnets.benchmarks.segmentation.metrics import count
from lossnets.benchmarks.segmentation.model import Refiner, UNet, build_unet, refinement_loss

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("hw", [(32, 48), (37, 50), (21, 9)])
def test_any_size_in_same_size_out(hw):
    net = build_unet(seed=0)
    y = net(torch.rand(2, 4, *hw))
    assert y.shape == (2, 1, *hw) and 0 < y.min() and y.max() < 1
    net.eval()
    assert net(torch.rand(1, 4, *hw)).shape == (1, 1, *hw)


def test_published_widths():
    net = UNet()
    assert [b[0].out_channels for b in net.down] == [8, 16, 32, 32]
    assert [b[0].in_channels for b in net.up] == [32, 64, 32, 16]
    assert [b[0].out_channels for b in net.up] == [32, 16, 8, 1]
    assert all(b[0].kernel_size == (4, 4) and b[0].stride == (2, 2) for b in [*net.down, *net.up])


def test_seeded_construction_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = build_unet(seed=1), build_unet(seed=1), build_unet(seed=2)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.down[0][0].weight, c.down[0][0].weight)


def test_refiner_feeds_each_prediction_back_with_gradients_through_every_iteration():
    refiner = Refiner(build_unet(seed=0), refine=3)
    x = torch.rand(2, 3, 20, 24, requires_grad=True)
    preds = refiner(x)
    assert len(preds) == 3 and all(p.shape == (2, 1, 20, 24) for p in preds)
    first = preds[0]
    first.retain_grad()
    preds[-1].mean().backward()  # the last prediction alone
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="refine must be at least 1"):
        Refiner(build_unet(), refine=0)


def test_first_iteration_starts_from_an_empty_map():
    unet = build_unet(seed=0).eval()
    x = torch.rand(1, 3, 16, 16)
    first = Refiner(unet, refine=2)(x)[0]
    assert torch.equal(first, unet(torch.cat([x, torch.zeros(1, 1, 16, 16)], 1)))


def test_refinement_loss_weighs_iteration_k_by_k():
    preds = [torch.full((1,), v) for v in (6.0, 12.0, 18.0)]
    assert refinement_loss(preds, lambda y: y.sum()).item() == pytest.approx((6 + 24 + 54) / 6)
    assert refinement_loss(preds[:1], lambda y: y.sum()).item() == pytest.approx(6)


def test_a_few_steps_learn_the_made_roads(tmp_path):
    root = make_roads(tmp_path, n_train=4, n_valid=2, n_test=0, size=48, seed=0)
    train, valid = load_split(root, "train"), load_split(root, "valid")
    refiner = Refiner(build_unet(seed=0), refine=2)
    opt = torch.optim.Adam(refiner.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)

    def quality() -> float:
        refiner.eval()
        with torch.no_grad():
            pred = refiner(valid.sat.float() / 255)[-1]
        refiner.train()
        return count(pred, valid.mask, relaxed=False).scores()["quality"]  # eval mode: BN running statistics

    before = quality()  # about the road fraction: the untrained net calls everything road
    for _ in range(80):
        sat, mask = random_crops(train, torch.randperm(len(train), generator=g), 32, g)
        preds = refiner(sat.float() / 255)
        loss = refinement_loss(preds, lambda y: F.binary_cross_entropy(y, mask.float()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert quality() > before + 0.15  # measured +0.38 to +0.48 under AVX-512, AVX2 and SSE4.1 kernels
