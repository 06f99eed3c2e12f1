"""The lpips package as the reference of the similarity tests: its model with our weights, its distances.

Both sides get the same random weights (ours copied into lpips's torchvision slices) and the same
normalised input (lpips's ScalingLayer set to the ImageNet normalisation).
"""
from __future__ import annotations

import torch

from lossnets.engine import LossNetwork
from lossnets.engine.registry import NORMALIZATIONS

# lpips's name of each network and the lpips layer index of each torchvision module path
LPIPS_LAYERS = {
    "alexnet": ("alex", {"features.1": 0, "features.4": 1, "features.7": 2, "features.9": 3, "features.11": 4}),
    "vgg16": ("vgg", {"features.3": 0, "features.8": 1, "features.15": 2, "features.22": 3, "features.29": 4}),
    "squeezenet1_1": ("squeeze", {"features.1": 0, "features.4": 1, "features.7": 2, "features.9": 3,
                                  "features.10": 4, "features.11": 5, "features.12": 6}),
}


def lpips_model(net: LossNetwork, **options):
    """lpips.LPIPS for ``net``'s architecture with ``net``'s backbone weights and input normalisation
    (``options``: lpips's, e.g. ``lpips=True`` with its shipped v0.1 lin weights)."""
    import lpips
    lp_name, _ = LPIPS_LAYERS[net.arch.name]
    options = {"lpips": False, "pretrained": False, **options}
    model = lpips.LPIPS(net=lp_name, pnet_rand=True, verbose=False, **options).eval()
    ours = net.body.state_dict()
    # lpips's key sliceK.<i>.<param> is torchvision's features.<i>.<param>; every one is in our prefix
    state = {key: ours["features." + key.split(".", 1)[1]] for key in model.net.state_dict()}
    model.net.load_state_dict(state)
    # lpips feeds 2x-1 to (x - shift) / scale; with these both sides see (x - mean) / std
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATIONS["imagenet"])
    model.scaling_layer.shift.copy_(2 * mean - 1)
    model.scaling_layer.scale.copy_(2 * std)
    return model


class OneBatch:
    """What lpips's scoring functions iterate: one batch holding a whole (or pooled) subset."""

    def __init__(self, batch):
        self.batch = batch

    def load_data(self):
        return [self.batch]


def images(data, index) -> torch.Tensor:
    """The BAPPS images at ``index`` as float [0, 1] (lpips's ``normalize=True`` input)."""
    return data.images[torch.from_numpy(index)].float() / 255
