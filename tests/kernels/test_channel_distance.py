"""perceptual_distance(..., per_channel=True) on CPU beyond test_ops.py's fp32/fp16/bf16 cases: float64,
the channel sum against the distance, the custom ops' checks, zero features, a bad weight."""
import pytest
import torch

from kernel_cases import TOLS, assert_near, gold_channels, make, upstream
from lossnets.kernels import perceptual_distance

# (values, gradients) of the float64 inputs, as TOLS has them for the others
ALL_TOLS = {**TOLS, torch.float64: (1e-12, 1e-12)}


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_per_channel_float64(layout):
    f0, f1, w = make((2, 37, 5, 3), torch.float64, layout)
    w = w.double().requires_grad_()
    f0.requires_grad_(), f1.requires_grad_()
    m = perceptual_distance(f0, f1, w, per_channel=True)
    assert m.dtype == torch.float64
    grad = upstream(f0.shape, per_channel=True).double()
    gold_m, gold_g = gold_channels(f0, f1, w, grad)
    assert_near(m, gold_m, 1e-12, "value")
    for name, g, gg in zip(("f0", "f1", "w"), torch.autograd.grad(m, (f0, f1, w), grad), gold_g):
        assert_near(g, gg, 1e-12, f"grad {name}")
    # Gaussian features: an all-zero feature vector (f0 is ReLU-like) has a 1/sqrt(EPS) derivative
    gen = torch.Generator().manual_seed(1)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    small = [torch.randn(2, 5, 3, 2, generator=gen, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
             for _ in range(2)]
    assert torch.autograd.gradcheck(lambda a, b, v: perceptual_distance(a, b, v, True), (*small, w.detach()[:5]))
    assert torch.autograd.gradcheck(lambda a, b: perceptual_distance(a, b, per_channel=True), small)


@pytest.mark.parametrize("dtype", ALL_TOLS, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_channel_sum_is_the_distance(dtype, weighted):
    """The same values and gradients (to rounding: the sums run in another order) as the distance."""
    vtol, gtol = ALL_TOLS[dtype]
    f0, f1, w = make((3, 37, 7, 5), dtype, "mixed")
    w = w.to(torch.promote_types(dtype, torch.float32)).requires_grad_() if weighted else None
    leaves = [t for t in (f0.requires_grad_(), f1.requires_grad_(), w) if t is not None]
    summed = perceptual_distance(f0, f1, w, per_channel=True).sum(1)
    d = perceptual_distance(f0, f1, w)
    assert_near(summed, d.detach().double(), min(vtol, 1e-6), "value")
    grad = upstream(f0.shape, per_channel=False).to(d.dtype)
    for name, a, b in zip(("f0", "f1", "w"), torch.autograd.grad(summed, leaves, grad),
                          torch.autograd.grad(d, leaves, grad)):
        assert_near(a, b.double(), gtol if name != "w" else min(vtol, 1e-6), f"grad {name}")


@pytest.mark.parametrize("op", ["perceptual_channel_distance", "perceptual_channel_distance_backward"])
def test_opcheck_per_channel(op):
    f0, f1, w = make((2, 5, 3, 2), torch.float32, "mixed", seed=2)
    forward = op == "perceptual_channel_distance"
    args = tuple(t.requires_grad_() for t in (f0, f1, w)) if forward else (upstream(f0.shape, True), f0, f1, w, True)
    torch.library.opcheck(getattr(torch.ops.lossnets, op).default, args)


def test_per_channel_all_zero_features_are_finite():
    z = torch.zeros(2, 4, 3, 3, requires_grad=True)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    m = perceptual_distance(z, x, per_channel=True)
    torch.testing.assert_close(m, (x.detach() / x.detach().norm(dim=1, keepdim=True)).pow(2).mean((2, 3)))
    for g in torch.autograd.grad(m, (z, x), upstream(z.shape, per_channel=True)):
        assert g.isfinite().all()


@pytest.mark.parametrize("bad", [(4,), (1, 3), ()], ids=["too_long", "2d", "scalar"])
def test_per_channel_rejects_a_weight_of_the_wrong_shape(bad):
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), got"):
        perceptual_distance(x, x, torch.ones(bad), per_channel=True)
    with pytest.raises(ValueError, match="feature maps of one shape"):
        perceptual_distance(x, x[:, :2], torch.ones(3), per_channel=True)
