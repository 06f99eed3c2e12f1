"""PSNR/SSIM in torch against scikit-image on the same arrays."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lossnets.benchmarks.image_metrics import mod_crop, psnr, rgb_to_y, shave, ssim, to_uint8
from lossnets.benchmarks.data.photos import photo_patches


def _pair(seed=0, size=(40, 52)):
    a = photo_patches(3, size, seed=seed)
    rng = np.random.default_rng(seed)
    b = [np.clip(x.astype(np.int16) + rng.integers(-25, 26, x.shape), 0, 255).astype(np.uint8) for x in a]
    return np.stack(a), np.stack(b)


def _t(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2)


def test_psnr_matches_skimage():
    a, b = _pair()
    ours = psnr(_t(a).double(), _t(b).double(), data_range=255)
    for i in range(len(a)):
        assert ours[i].item() == pytest.approx(peak_signal_noise_ratio(a[i], b[i], data_range=255), abs=1e-9)


def test_psnr_identical_is_inf():
    a, _ = _pair()
    assert torch.isinf(psnr(_t(a), _t(a), 255)).all()


@pytest.mark.parametrize("scale", [1, 255])
def test_ssim_rgb_matches_skimage(scale):
    a, b = _pair(seed=1)
    a_f, b_f = a / 255.0 * scale, b / 255.0 * scale
    ours = ssim(_t(a_f), _t(b_f), data_range=scale)
    for i in range(len(a)):
        ref = structural_similarity(a_f[i], b_f[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=scale, channel_axis=2)
        assert ours[i].item() == pytest.approx(ref, abs=1e-10)


def test_ssim_y_channel_protocol_matches_skimage():
    """The standard SR protocol: uint8 images, Y channel (BT.601), shave the scale, data_range 255."""
    a, b = _pair(seed=2, size=(50, 45))
    scale = 4
    ta, tb = mod_crop(_t(a), scale), mod_crop(_t(b), scale)
    ya, yb = shave(rgb_to_y(ta), scale), shave(rgb_to_y(tb), scale)
    p, s = psnr(ya, yb, 255), ssim(ya, yb, 255)
    for i in range(len(a)):
        na, nb = ya[i, 0].numpy(), yb[i, 0].numpy()
        assert na.shape == (48 - 8, 44 - 8)
        assert s[i].item() == pytest.approx(structural_similarity(
            na, nb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255), abs=1e-10)
        assert p[i].item() == pytest.approx(peak_signal_noise_ratio(na, nb, data_range=255), abs=1e-9)


def test_rgb_to_y_bt601():
    x = torch.tensor([[[[0.0]], [[0.0]], [[0.0]]], [[[255.0]], [[255.0]], [[255.0]]]])
    y = rgb_to_y(x).flatten()
    assert y[0].item() == pytest.approx(16.0) and y[1].item() == pytest.approx(235.0)
    from skimage.color import rgb2ycbcr
    a, _ = _pair()
    ref = rgb2ycbcr(a[0])[..., 0]
    assert np.allclose(rgb_to_y(_t(a[:1]))[0, 0].numpy(), ref, atol=1e-9)


def test_errors_and_helpers():
    with pytest.raises(ValueError, match="shape"):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match="window"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    assert to_uint8(torch.tensor([-0.1, 0.5, 1.2])).tolist() == [0, 128, 255]
    assert mod_crop(torch.zeros(1, 3, 13, 10), 4).shape[-2:] == (12, 8)
