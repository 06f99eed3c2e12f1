"""PerceptualLoss: a loss network's tap distances as a training loss, frozen whatever its owner does."""
from __future__ import annotations

import torch
from torch import Tensor

from .perceptual import TapDistances


class PerceptualLoss(TapDistances):
    """``loss(output, target)``: the tap-weighted sum of per-tap feature losses of two image batches.

    The loss network follows the input's device, stays in eval mode with frozen weights, and is no parameter,
    submodule or state_dict entry of this module. The target's features are computed without autograd unless
    the target requires grad. Every option is checked when the loss is built; the images of every call are
    checked (input_contract.py) before the network runs.
    """

    __init__ = TapDistances.init_with(
        "A perceptual loss; by default the feature MSE (``distance='mse'``), averaged over the batch.",
        distance="mse", reduction="mean")

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        """The loss between ``output`` and ``target``, two (N, 3|1, H, W) batches of as many images of one size
        in ``input_range`` (or uint8): a scalar, or (N,) with ``reduction="none"``."""
        x, y = self.checked_pair(("output", "target"), output, target)
        fo = self.features(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            ft = self.features(y)
        return self.reduce(self.total(self.per_tap(fo, ft)))
