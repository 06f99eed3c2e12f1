"""The input contract of PerceptualLoss and PerceptualMetric, checked before any network runs: each error has its
type and a message naming the input and the fact (sizes as images, NaN/Inf counts, the exact extreme, the
smallest size a tap accepts, empty batches), and range_check's four modes and default rule."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from lossnets import PerceptualLoss, PerceptualMetric
from lossnets.engine.input_size import min_input_size

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny images: one thread is faster on a loaded machine


def _images(n=2, size=40, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def loss_fn(alexnet_file):
    return PerceptualLoss("alexnet", "E", str(alexnet_file), reduction="none")


def _refused_before_the_network(module, call, error, pattern):
    """``call()`` raises ``error`` matching ``pattern`` and no network was built for it."""
    with pytest.raises(error, match=pattern):
        call()
    assert not module._loaded.net.built


def test_images_of_different_sizes_are_named_as_images(alexnet_file):
    loss = PerceptualLoss("alexnet", "E", str(alexnet_file))
    metric = PerceptualMetric("alexnet", "E", str(alexnet_file))
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 32, 32)
    _refused_before_the_network(loss, lambda: loss(a, b), ValueError,
                                r"output is \(2, 3, 64, 64\), target is \(2, 3, 32, 32\): .*as many images of one size")
    _refused_before_the_network(metric, lambda: metric(a, b), ValueError,
                                r"x0 is \(2, 3, 64, 64\), x1 is \(2, 3, 32, 32\)")
    _refused_before_the_network(metric, lambda: metric(a, a[:1]), ValueError, r"x1 is \(1, 3, 64, 64\)")
    _refused_before_the_network(metric, lambda: metric.matrix(a, b), ValueError,
                                r"xs is \(2, 3, 64, 64\), ys is \(2, 3, 32, 32\): .*images of one size")
    assert metric.matrix(a, a[:1]).value.shape == (2, 1)  # matrix sides may differ in count


def test_nan_and_inf_are_counted_per_input(loss_fn):
    x, y = _images(3), _images(3, seed=1)
    y[2, 0, 0, :3] = float("nan")
    y[0, 1, 5, 5] = float("inf")
    with pytest.raises(ValueError, match=r"target holds 3 NaN and 1 Inf values \(of 14400\), in image\(s\) 0, 2 of"):
        loss_fn(x, y)
    with pytest.raises(ValueError, match=r"output holds 0 NaN and 1 Inf values"):
        loss_fn(y.nan_to_num(nan=0.5, posinf=float("inf")), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_offending_extreme_is_printed_exactly(alexnet_file, dtype):
    strict = PerceptualLoss("alexnet", "E", str(alexnet_file), range_margin=0)
    x = _images().to(dtype)
    x[0, 0, 0, 0], x[1, 2, 3, 4] = 1.0001, 1.466e-05
    with pytest.raises(ValueError, match=r"output has max 1\.0001, outside input_range=\(0, 1\) by more than "
                                         r"range_margin=0 .*input_range=\(-1, 1\)") as e:
        strict(x, x.clamp(0, 1))
    assert "min" not in str(e.value).split(",")[0]  # only the offending extreme


def test_the_default_stops_a_signed_batch_but_not_a_bicubic_overshoot(loss_fn):
    x, y = _images(seed=2), _images(seed=3)
    with pytest.raises(ValueError, match=r"output has min -0\.9\d*, outside input_range=\(0, 1\) by more than "
                                         r"range_margin=0.25.*input_range=\(-1, 1\)"):
        loss_fn(x * 2 - 1, y)
    with pytest.raises(ValueError, match=r"target has max 25\d\.\d*, outside"):
        loss_fn(x, y * 255)
    checker = (torch.arange(10)[:, None] + torch.arange(10)[None, :]) % 2  # the worst photo seen: checkerboard
    up = F.interpolate(checker.float().expand(2, 3, 10, 10), size=40, mode="bicubic", align_corners=False)
    assert up.min() < -0.1 and up.max() > 1.1  # SYNTHETIC overshoot of bicubic upsampling
    off = PerceptualLoss("alexnet", "E", loss_fn._options["weights"], reduction="none", range_check="off")
    torch.testing.assert_close(loss_fn(up, y), off(up, y))  # passes unchanged
    signed = PerceptualLoss("alexnet", "E", loss_fn._options["weights"], reduction="none", input_range=(-1, 1))
    torch.testing.assert_close(signed(x * 2 - 1, y * 2 - 1), loss_fn(x, y))
    with pytest.raises(ValueError, match=r"output has max 1\.9\d*, outside input_range=\(-1, 1\)"):
        signed(x * 2, y)  # [0, 2]: beyond 1 + 0.25 x 2


def test_range_check_warn_clamp_off(alexnet_file):
    x, y = _images(seed=4), _images(seed=5)
    make = lambda mode: PerceptualLoss("alexnet", "E", str(alexnet_file), reduction="none",  # noqa: E731
                                       range_check=mode)
    warn, clamp, off = make("warn"), make("clamp"), make("off")
    with pytest.warns(UserWarning, match=r"output has min -0\.99\d* and max 1\.99\d*, outside.*warned once"):
        first = warn(x * 3 - 1, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn(x * 3 - 1, y)  # once per module
    torch.testing.assert_close(first, off(x * 3 - 1, y))
    torch.testing.assert_close(clamp(x * 3 - 1, y), off((x * 3 - 1).clamp(0, 1), y))
    assert "range=[0,1],clamped" in clamp.config
    assert off(torch.full_like(x, float("nan")), y).isnan().all()  # "off" checks nothing
    with pytest.raises(ValueError, match=r"output holds 9600 NaN and 0 Inf values \(of 9600\), in image\(s\) 0, 1 of"):
        clamp(torch.full_like(x, float("nan")), y)
    with pytest.raises(ValueError, match="range_check must be one of .*'error', 'warn', 'clamp', 'off'.*got 'strict'"):
        make("strict")
    with pytest.raises(ValueError, match="range_margin must be a fraction >= 0"):
        PerceptualLoss("alexnet", "E", str(alexnet_file), range_margin=-1)
    with pytest.raises(ValueError, match=r"input_range must be \(low, high\) with low < high"):
        PerceptualLoss("alexnet", "E", str(alexnet_file), input_range=(1, 0))


def test_images_too_small_for_a_tap_are_refused_with_the_smallest_size(alexnet_file):
    metric = PerceptualMetric("alexnet", ("E", "S", "M", "L"), str(alexnet_file))
    needs = {layer: min_input_size("alexnet", layer) for layer in "ESML"}
    small = ", ".join(f"{k} \\(needs at least {s}x{s}\\)" for k, s in needs.items() if s > 8)
    x = torch.rand(2, 3, 8, 8)
    _refused_before_the_network(metric, lambda: metric(x, x), ValueError,
                                f"x0 and x1 are 8x8, too small for alexnet's tap\\(s\\) {small}: give images of at "
                                f"least {max(needs.values())}x{max(needs.values())}")
    side = max(needs.values())
    assert metric(torch.rand(1, 3, side, side), torch.rand(1, 3, side, side)).value.shape == (1,)
    with pytest.raises(ValueError, match=f"resize is 16x16, too small .*needs at least {needs['M']}x"):
        PerceptualMetric("alexnet", None, str(alexnet_file), resize=16)
    squeeze = PerceptualMetric("squeezenet1_1", "L", "random")
    need = min_input_size("squeezenet1_1", "L")
    with pytest.raises(ValueError, match=f"16x16, too small for squeezenet1_1's tap\\(s\\) L \\(needs at least "
                                         f"{need}x{need}\\)"):
        squeeze(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_empty_batches_are_refused(loss_fn, alexnet_file):
    empty = torch.rand(0, 3, 40, 40)
    with pytest.raises(ValueError, match=r"output is an empty batch \(0, 3, 40, 40\): there are no images"):
        loss_fn(empty, empty)
    metric = PerceptualMetric("alexnet", "E", str(alexnet_file))
    for call in (lambda: metric(empty, empty), lambda: metric.update(empty, empty), lambda: metric.matrix(empty)):
        with pytest.raises(ValueError, match=r"(x0|xs) is an empty batch"):
            call()


def test_a_tap_after_the_flatten_is_refused_at_construction(alexnet_file):
    with pytest.raises(ValueError, match=r"tap 'classifier.1' of alexnet gives features of shape \(N, 4096\), not a "
                                         r"spatial map \(N, C, H, W\): a tap must come before the classifier's "
                                         r"flatten, e.g. E=features.1"):
        PerceptualLoss("alexnet", ("E", "classifier.1"), str(alexnet_file))


def test_forms_and_types(loss_fn):
    x, y = _images(seed=6), _images(seed=7)
    q = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(loss_fn(q, y), loss_fn(q.float() / 255, y))
    torch.testing.assert_close(loss_fn(x[:, :1], y), loss_fn(x[:, :1].expand(-1, 3, -1, -1), y))
    for channels in (2, 4):
        with pytest.raises(ValueError, match=f"output must have 3 \\(RGB\\) or 1 \\(grayscale.*got {channels}"):
            loss_fn(torch.rand(2, channels, 40, 40), y)
    with pytest.raises(ValueError, match=r"drop alpha: target\[:, :3\]"):
        loss_fn(x, torch.rand(2, 4, 40, 40))
    with pytest.raises(TypeError, match="target must be uint8 or floating-point images, got torch.int64"):
        loss_fn(x, torch.zeros(2, 3, 40, 40, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"output must be a batch of images of shape \(N, C, H, W\), got "
                                         r"\(3, 40, 40\)"):
        loss_fn(x[0], y[0])
