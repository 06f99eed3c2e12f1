"""Triton kernels against float64 gold. Not collected by default (see test_triton_interpret.py):
runs on CUDA where there is a GPU, else on CPU tensors under TRITON_INTERPRET=1."""
import os

import pytest
import torch

from kernel_cases import (LAYOUTS, SHAPES, TOLS, assert_near, case_id, gold_channels, gold_mse, gold_perceptual,
                          make, upstream)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs a GPU or TRITON_INTERPRET=1", allow_module_level=True)
pytest.importorskip("triton")

from lossnets.kernels import triton_mse, triton_perceptual  # noqa: E402
from lossnets.kernels.triton_common import flat_strides  # noqa: E402

# The interpreter is slow: each dtype once per shape, the layouts rotating (a Latin square), so every
# dtype meets every layout and every shape.
CASES = [(shape, dtype, LAYOUTS[(i + j) % 3]) for i, shape in enumerate(SHAPES) for j, dtype in enumerate(TOLS)]


def blocks(case):
    """Default tiles (at C=65, H*W=143: three channel blocks, two pixel blocks with masked tails),
    and once 16x16 tiles (at C=37, H*W=35: three channel and three pixel blocks, with tails)."""
    return [(None, None), (16, 16)] if case is not None and case[:2] == (SHAPES[1], torch.float32) else [(None, None)]


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("per_channel", [False, True], ids=["distance", "per_channel"])
def test_perceptual(case, per_channel):
    """The distance (N,), or its per-channel terms (N, C) with an (N, C) upstream gradient."""
    shape, dtype, layout = case
    vtol, gtol = TOLS[dtype]
    f0, f1, w = make(shape, dtype, layout, device=DEVICE)
    grad = upstream(shape, per_channel, device=DEVICE)
    for weight in (None, w):
        gold_d, gold_g = (gold_channels if per_channel else gold_perceptual)(f0, f1, weight, grad)
        for bc, bp in blocks(case) if weight is not None else blocks(None):
            d = triton_perceptual.forward(f0, f1, weight, per_channel, block_c=bc, block_p=bp)
            assert d.dtype == torch.float32 and d.shape == gold_d.shape
            assert_near(d, gold_d, vtol, "value")
            g0, g1, gw = triton_perceptual.backward(grad, f0, f1, weight, True, block_c=bc, block_p=bp)
            assert g0.stride() == f0.stride() and g1.stride() == f1.stride() and g0.dtype == dtype
            assert_near(g0, gold_g[0], gtol, "grad f0")
            assert_near(g1, gold_g[1], gtol, "grad f1")
            if weight is None:
                assert gw.numel() == 0
            else:
                assert_near(gw, gold_g[2], vtol * 10, "grad w")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_mse(case):
    shape, dtype, layout = case
    vtol, gtol = TOLS[dtype]
    f, g, _ = make(shape, dtype, layout, device=DEVICE)
    grad = torch.linspace(0.5, 1.5, shape[0], device=DEVICE)
    gold_v, gold_g = gold_mse(f, g, grad)
    for bc, bp in blocks(case):
        assert_near(triton_mse.forward(f, g, block_c=bc, block_p=bp), gold_v, vtol, "value")
        gf, gg = triton_mse.backward(grad, f, g, block_c=bc, block_p=bp)
        assert gf.stride() == f.stride() and gg.stride() == g.stride() and gf.dtype == dtype
        assert_near(gf, gold_g[0], gtol, "grad f")
        assert_near(gg, gold_g[1], gtol, "grad g")


def test_both_layouts_are_indexed_without_a_copy():
    for layout in ("nchw", "channels_last"):
        f0, _, _ = make((2, 5, 4, 3), torch.float32, layout, device=DEVICE)
        assert flat_strides(f0)[0] is f0
    odd = torch.randn(2, 4, 5, 3, device=DEVICE).permute(0, 2, 1, 3)  # H and W not flattenable
    assert_near(triton_mse.forward(odd, odd * 2), gold_mse(odd, odd * 2, torch.ones(2))[0], 1e-5, "odd layout")


def test_all_zero_features():
    z = torch.zeros(2, 5, 3, 3, device=DEVICE)
    x = torch.randn(2, 5, 3, 3, device=DEVICE)
    w = torch.rand(5, device=DEVICE)
    assert torch.equal(triton_perceptual.forward(z, z, w), torch.zeros(2, device=DEVICE))
    gold_d, gold_g = gold_perceptual(z, x, w, torch.ones(2))
    assert_near(triton_perceptual.forward(z, x, w), gold_d, 1e-6, "value")
    for got, gold in zip(triton_perceptual.backward(torch.ones(2, device=DEVICE), z, x, w, True), gold_g):
        assert got.isfinite().all()
        assert_near(got, gold, 1e-5, "grad")


@pytest.mark.parametrize("per_channel", [False, True], ids=["distance", "per_channel"])
def test_deterministic(per_channel):
    f0, f1, w = make((3, 37, 7, 5), torch.float32, "mixed", device=DEVICE)
    grad = upstream(f0.shape, per_channel, device=DEVICE)
    d = triton_perceptual.forward(f0, f1, w, per_channel)
    assert torch.equal(d, triton_perceptual.forward(f0, f1, w, per_channel))
    for a, b in zip(triton_perceptual.backward(grad, f0, f1, w, True), triton_perceptual.backward(grad, f0, f1, w, True)):
        assert torch.equal(a, b)
    if per_channel:  # the channel sum is the distance, to rounding (other order of the sums)
        torch.testing.assert_close(d.sum(1), triton_perceptual.forward(f0, f1, w), rtol=1e-5, atol=0)


@pytest.mark.skipif(DEVICE != "cuda", reason="the custom ops dispatch to Triton only for CUDA tensors")
def test_ops_dispatch_to_triton_on_cuda():
    from lossnets.kernels import feature_mse, perceptual_distance
    f0, f1, w = make((3, 65, 13, 11), torch.bfloat16, "mixed", device=DEVICE)
    assert torch.equal(perceptual_distance(f0, f1, w), triton_perceptual.forward(f0, f1, w))
    assert torch.equal(perceptual_distance(f0, f1, w, per_channel=True), triton_perceptual.forward(f0, f1, w, True))
    assert torch.equal(feature_mse(f0, f1, "none"), triton_mse.forward(f0, f1))
