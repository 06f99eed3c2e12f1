"""min_input_size / probe_taps: the smallest input a tap accepts, computed on the meta device, is the one the real
network (random weights) accepts: s x s and s x 3s run, (s-1) x (s-1) raises; and a tap's output shape."""
import pytest
import torch
import torchvision

from lossnets.engine import get_architecture
from lossnets.engine.input_size import min_input_size, probe_taps
from lossnets.engine.truncate import truncate

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny images: one thread is faster on a loaded machine


@pytest.mark.parametrize("arch", ["alexnet", "squeezenet1_1"])
def test_the_smallest_side_is_the_real_networks(arch):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)()
    a = get_architecture(arch)
    probes = probe_taps(arch, ("E", "S", "M", "L", "features.9"))
    for layer, p in probes.items():
        body = truncate(model, {a.resolve(layer).module: "t"})
        s = p.min_side
        with torch.no_grad():
            assert tuple(body(torch.rand(1, 3, s, s))["t"].shape) == p.shape
            body(torch.rand(1, 3, s, 3 * s))
            body(torch.rand(1, 3, 3 * s, s))
            with pytest.raises(RuntimeError):
                body(torch.rand(1, 3, s - 1, s - 1))
        assert min_input_size(arch, layer) == s


def test_shapes_after_the_flatten_and_errors():
    p = probe_taps("alexnet", ["classifier.1", "L"])
    assert len(p["classifier.1"].shape) == 2 and len(p["L"].shape) == 4
    assert p["classifier.1"].min_side == min_input_size("alexnet", "features.12")  # the flatten's input decides
    with pytest.raises(ValueError, match="tap features.12 of alexnet refuses every input up to 32x32"):
        probe_taps("alexnet", "features.12", limit=32)
