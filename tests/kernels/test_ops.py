"""The public ops on CPU (the PyTorch reference behind the custom ops) against float64 gold."""
import sys

import pytest
import torch

from kernel_cases import CASES, TOLS, assert_near, case_id, gold_channels, gold_mse, gold_perceptual, make, upstream
from lossnets.kernels import feature_mse, perceptual_distance


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["distance", "per_channel"])
def test_perceptual_distance_matches_float64(case, weighted, per_channel):
    """The distance (N,), or its per-channel terms (N, C) with an (N, C) upstream gradient."""
    shape, dtype, layout = case
    vtol, gtol = TOLS[dtype]
    f0, f1, w = make(shape, dtype, layout)
    w = w.requires_grad_() if weighted else None
    f0.requires_grad_(), f1.requires_grad_()
    d = perceptual_distance(f0, f1, w, per_channel)
    assert d.shape == (shape[:2] if per_channel else shape[:1]) and d.dtype == torch.float32
    grad = upstream(shape, per_channel)
    grads = torch.autograd.grad(d, [t for t in (f0, f1, w) if t is not None], grad)
    gold_d, gold_g = (gold_channels if per_channel else gold_perceptual)(f0, f1, w, grad)
    assert_near(d, gold_d, vtol, "value")
    for name, x, g, gg in zip(("f0", "f1", "w"), (f0, f1, w), grads, gold_g):
        assert g.dtype == x.dtype and g.stride() == x.stride(), name
        assert_near(g, gg, gtol if name != "w" else vtol * 10, f"grad {name}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_feature_mse_matches_float64(case):
    shape, dtype, layout = case
    vtol, gtol = TOLS[dtype]
    f, g, _ = make(shape, dtype, layout)
    f.requires_grad_(), g.requires_grad_()
    per = feature_mse(f, g, reduction="none")
    assert per.shape == (shape[0],) and per.dtype == torch.float32
    grad = torch.linspace(0.5, 1.5, shape[0])
    gf, gg = torch.autograd.grad(per, (f, g), grad)
    gold_v, (gold_f, gold_g) = gold_mse(f, g, grad)
    assert_near(per, gold_v, vtol, "value")
    assert gf.stride() == f.stride() and gg.stride() == g.stride() and gf.dtype == dtype
    assert_near(gf, gold_f, gtol, "grad f")
    assert_near(gg, gold_g, gtol, "grad g")
    assert_near(feature_mse(f, g), gold_v.mean().reshape(()), vtol, "mean")


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(1)
    f0, f1 = (torch.randn(2, 5, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2))
    w = torch.rand(5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(perceptual_distance, (f0, f1, w))
    assert torch.autograd.gradcheck(perceptual_distance, (f0, f1.to(memory_format=torch.channels_last)))
    assert torch.autograd.gradcheck(lambda a, b: feature_mse(a, b, "none"), (f0, f1))
    assert torch.autograd.gradcheck(feature_mse, (f0, f1))


@pytest.mark.parametrize("op", ["perceptual_distance", "feature_mse", "perceptual_distance_backward",
                                "feature_mse_backward"])
def test_opcheck(op):
    gen = torch.Generator().manual_seed(2)
    f0, f1 = (torch.randn(2, 5, 3, 2, generator=gen, requires_grad=True) for _ in range(2))
    w = torch.rand(5, generator=gen, requires_grad=True)
    grad = torch.ones(2)
    args = {"perceptual_distance": (f0, f1, w), "feature_mse": (f0, f1),
            "perceptual_distance_backward": (grad, f0.detach(), f1.detach(), w.detach(), True),
            "feature_mse_backward": (grad, f0.detach(), f1.detach())}[op]
    torch.library.opcheck(getattr(torch.ops.lossnets, op).default, args)


def test_all_zero_features_are_finite():
    z = torch.zeros(2, 4, 3, 3, requires_grad=True)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    w = torch.rand(4, requires_grad=True)
    d0 = perceptual_distance(z, z.detach().clone().requires_grad_(), w)
    assert torch.equal(d0, torch.zeros(2))
    d1 = perceptual_distance(z, x, w)
    gold = (w.detach().view(1, -1, 1, 1) * (x.detach() / x.detach().norm(dim=1, keepdim=True)) ** 2).sum(1).mean((1, 2))
    torch.testing.assert_close(d1, gold)
    for g in torch.autograd.grad((d0 + d1).sum(), (z, x, w)):
        assert g.isfinite().all()


def test_deterministic():
    f0, f1, w = make((3, 65, 13, 11), torch.float32, "mixed")
    assert torch.equal(perceptual_distance(f0, f1, w), perceptual_distance(f0, f1, w))


def test_rejects_bad_inputs():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError):
        perceptual_distance(x, x[:1])
    with pytest.raises(ValueError):
        perceptual_distance(x, x, torch.ones(4))
    with pytest.raises(ValueError):
        feature_mse(x, x, reduction="sum")
    with pytest.raises(TypeError):
        feature_mse(x.long(), x.long())


def test_works_without_triton(monkeypatch):
    from lossnets.kernels import ops
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton now raises ImportError
    for name in ("triton_common", "triton_mse", "triton_perceptual"):
        monkeypatch.delitem(sys.modules, f"lossnets.kernels.{name}", raising=False)
        monkeypatch.delattr(f"lossnets.kernels.{name}", raising=False)
    assert ops._triton.__wrapped__() is None
