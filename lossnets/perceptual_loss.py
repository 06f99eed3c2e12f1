"""PerceptualLoss: a loss network's tap distances as a training loss, frozen whatever its owner does."""
from __future__ import annotations

import torch
from torch import Tensor

from .perceptual import TapDistances


class PerceptualLoss(TapDistances):
    """``loss(output, target)``: the tap-weighted sum of per-tap feature losses of two image batches.

    ``distance``: "mse" (feature MSE, default) or "lpips" (with optional ``lin`` channel weights); images obey
    the input contract (``input_range``, default (0, 1); uint8 scaled; grayscale repeated to RGB).
    ``reduction``: "mean", "sum" or "none" (per image). The loss network follows the input's device, stays
    in eval mode with frozen weights, and is no parameter, submodule or state_dict entry of this module.
    The target's features are computed without autograd unless the target requires grad.
    See :class:`~lossnets.perceptual.TapDistances` for every option.
    """

    def __init__(self, arch: str, layers=None, weights: str = "imagenet", *, distance: str = "mse", **options):
        super().__init__(arch, layers, weights, distance=distance, **options)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        if output.shape[0] != target.shape[0]:
            raise ValueError(f"output and target batches differ: {tuple(output.shape)} and {tuple(target.shape)}")
        fo = self.features(output)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            ft = self.features(target)
        return self.reduce(self.total(self.per_tap(fo, ft)))
