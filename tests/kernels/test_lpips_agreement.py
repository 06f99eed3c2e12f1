"""With weight None, perceptual_distance is the lpips package's per-layer baseline distance."""
import pytest
import torch

from lossnets.kernels import perceptual_distance

lpips = pytest.importorskip("lpips")


def test_matches_lpips_baseline_per_layer():
    torch.manual_seed(0)
    model = lpips.LPIPS(net="alex", lpips=False, pretrained=False, pnet_rand=True, verbose=False).eval()
    in0, in1 = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        _, per_layer = model(in0, in1, retPerLayer=True)
        outs0 = model.net(model.scaling_layer(in0))
        outs1 = model.net(model.scaling_layer(in1))
    for kk, (a, b) in enumerate(zip(outs0, outs1)):
        ours = perceptual_distance(a, b)
        torch.testing.assert_close(ours, per_layer[kk].view(-1), atol=1e-6, rtol=1e-6, msg=f"layer {kk}")
        cl = torch.channels_last
        torch.testing.assert_close(perceptual_distance(a.to(memory_format=cl), b), ours, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_lpips_normalize_tensor(dtype):
    gen = torch.Generator().manual_seed(3)
    shape = (3, 37, 13, 11)
    f0 = torch.randn(shape, generator=gen, dtype=dtype).relu()
    f1 = torch.randn(shape, generator=gen, dtype=dtype) * 5
    f0[0, :, 2, 3] = 0  # an all-zero feature vector: both normalise it to zero
    gold = lpips.spatial_average((lpips.normalize_tensor(f0) - lpips.normalize_tensor(f1)) ** 2).sum(1).view(-1)
    torch.testing.assert_close(perceptual_distance(f0, f1), gold, atol=1e-6, rtol=1e-6)
