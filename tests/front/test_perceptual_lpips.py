"""lossnets.LPIPS is lpips.LPIPS v0.1: the value, the spatial map, the per-layer values, [0, 1] inputs and the
gradients, for alex, vgg and squeeze, against the lpips package with its shipped v0.1 lin weights on a seeded
random backbone (pnet_rand=True: nothing is downloaded) that lossnets reads from a file."""
import pytest
import torch

import lossnets

lpips = pytest.importorskip("lpips")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny images: one thread is faster on a loaded machine


@pytest.fixture(scope="module", params=["alex", "vgg", "squeeze"])
def pair(request, tmp_path_factory):
    """(lpips.LPIPS v0.1 on a seeded random backbone, the path of that backbone as a torchvision state_dict)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ref = lpips.LPIPS(net=request.param, pretrained=True, pnet_rand=True, verbose=False).eval()
    path = tmp_path_factory.mktemp("backbone") / f"{request.param}.pt"
    # lpips keeps torchvision's features.<i> modules as slice<k>.<i>
    torch.save({"features." + k.split(".", 1)[1]: v for k, v in ref.net.state_dict().items()}, path)
    return ref, str(path)


def _signed(seed, shape=(2, 3, 36, 44)):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_value_spatial_and_layers_equal_lpips(pair):
    ref, weights = pair
    ours = lossnets.LPIPS(net=ref.pnet_type, weights=weights)
    x, y = _signed(1), _signed(2)
    with torch.no_grad():
        gold, gold_layers = ref(x, y, retPerLayer=True)
        gold_unit = ref((x + 1) / 2, (y + 1) / 2, normalize=True)
    value, layers = ours(x, y, retPerLayer=True)
    assert value.shape == gold.shape == (2, 1, 1, 1) and len(layers) == len(gold_layers)
    torch.testing.assert_close(value, gold, rtol=1e-5, atol=1e-7)
    for a, b in zip(layers, gold_layers):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ours((x + 1) / 2, (y + 1) / 2, normalize=True), gold_unit, rtol=1e-5, atol=1e-7)
    ref.spatial = ours.spatial = True
    try:
        with torch.no_grad():
            gold_map = ref(x, y)
        torch.testing.assert_close(ours(x, y), gold_map, rtol=1e-5, atol=1e-7)
    finally:
        ref.spatial = False


def test_gradients_equal_lpips(pair):
    ref, weights = pair
    ours = lossnets.LPIPS(net=ref.pnet_type, weights=weights)
    x, y = _signed(3), _signed(4)
    grads = []
    for model in (ref, ours):
        a = x.clone().requires_grad_(True)
        model(a, y).sum().backward()
        grads.append(a.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-7)


def test_baseline_and_errors(pair):
    ref, weights = pair
    x, y = _signed(5), _signed(6)
    ref.lpips = False  # lpips's own switch to its baseline (channel sums, no lin layers)
    try:
        with torch.no_grad():
            gold = ref(x, y)
    finally:
        ref.lpips = True
    torch.testing.assert_close(lossnets.LPIPS(net=ref.pnet_type, lpips=False, weights=weights)(x, y), gold,
                               rtol=1e-5, atol=1e-7)
    ours = lossnets.LPIPS(net=ref.pnet_type, weights=weights)
    with pytest.raises(ValueError, match=r"in0 has max 2\.\d*, outside input_range=\(-1, 1\)"):
        ours(x + 2, y)
    with pytest.raises(ValueError, match=r"in1 has min -0\.9\d*, outside input_range=\(0, 1\)"):
        ours((x + 1) / 2, y, normalize=True)  # [-1, 1] images where [0, 1] ones were declared
    with pytest.raises(ValueError, match=r"LPIPS v0.1 only .*got version='0.0'"):
        lossnets.LPIPS(net=ref.pnet_type, version="0.0", weights=weights)
