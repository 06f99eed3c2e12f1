"""Shared by the PerceptualLoss/PerceptualMetric tests: one seeded alexnet as a weights file, and the lpips
package's random-weight alexnet LPIPS built on the same backbone with its lin weights as a file."""
import re

import pytest
import torch
import torchvision


@pytest.fixture(scope="session")
def alexnet_file(tmp_path_factory):
    """A state_dict file of a seeded torchvision alexnet's features (all a loss network's prefix needs)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        features = torchvision.models.alexnet().features
    path = tmp_path_factory.mktemp("weights") / "alexnet.pt"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="session")
def lpips_alex(alexnet_file, tmp_path_factory):
    """(lpips LPIPS model with spatial=True, path of its lin weights in lpips's format): its backbone is
    alexnet_file's, its lin weights lpips's random init made non-negative."""
    lpips = pytest.importorskip("lpips")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, spatial=True, verbose=False).eval()
    ours = torch.load(alexnet_file, weights_only=True)
    model.net.load_state_dict({k: ours["features." + k.split(".", 1)[1]] for k in model.net.state_dict()})
    lin = {k: v.abs() for k, v in model.state_dict().items() if re.match(r"lin\d+\.", k)}
    model.load_state_dict(lin, strict=False)
    path = tmp_path_factory.mktemp("lin") / "alex_lin.pth"
    torch.save(lin, path)
    return model, path
