"""The delineation U-Net (pix2pix style, as the published code) and Mosinska et al.'s iterative refinement.

:class:`UNet`: 4 down blocks (LeakyReLU(0.2), 4x4 conv with stride 2, batch norm) to width x (2, 4, 8, 8)
channels and 4 up blocks (ReLU, 4x4 transposed conv with stride 2, batch norm) back to 1 channel, skip
connections by concatenation, sigmoid output. As in the published code every block starts with its
activation, the last batch norm comes before the sigmoid, and the skips carry the activated encoder maps
(what its in-place activations hand to the concatenation). A side that is not a multiple of 16 is padded
by replicating the border pixels, and the output is cropped back.

:class:`Refiner`: y_k = unet(cat(x, y_{k-1})) for k = 1..K from y_0 = 0, shared weights, gradients through
every iteration; :func:`refinement_loss` weighs L(y_k) by k.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

MULTIPLE = 16  # four stride-2 levels


def _block(conv: type[nn.Module], cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout))


class UNet(nn.Module):
    """(N, in_channels, H, W) -> road probability (N,1,H,W) in (0,1); the published code's width is 4."""

    def __init__(self, in_channels: int = 4, width: int = 4):
        super().__init__()
        down = (in_channels, 2 * width, 4 * width, 8 * width, 8 * width)
        up_in, up_out = (8 * width, 16 * width, 8 * width, 4 * width), (8 * width, 4 * width, 2 * width, 1)
        self.down = nn.ModuleList(_block(nn.Conv2d, a, b) for a, b in zip(down, down[1:]))
        self.up = nn.ModuleList(_block(nn.ConvTranspose2d, a, b) for a, b in zip(up_in, up_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % MULTIPLE, 0, -h % MULTIPLE), mode="replicate")
        skips = []
        for block in self.down:
            x = F.leaky_relu(x, 0.2)
            skips.append(x)
            x = block(x)
        x = self.up[0](F.relu(x))
        for block, skip in zip(self.up[1:], reversed(skips[1:])):
            x = block(F.relu(torch.cat([x, skip], 1)))
        return torch.sigmoid(x[..., :h, :w])


class Refiner(nn.Module):
    """Applies a U-Net ``refine`` times with shared weights to RGB (N,3,H,W) in [0,1] and its previous prediction,
    from an empty map; returns the K predictions (N,1,H,W), the last the final one."""

    def __init__(self, unet: UNet, refine: int = 3):
        super().__init__()
        if refine < 1:
            raise ValueError(f"refine must be at least 1, got {refine}")
        self.unet, self.refine = unet, refine

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = x.new_zeros(x.shape[0], 1, *x.shape[-2:])
        preds = []
        for _ in range(self.refine):
            y = self.unet(torch.cat([x, y], 1))
            preds.append(y)
        return preds


def refinement_loss(preds: Sequence[torch.Tensor],
                    per_prediction_loss: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """sum_k k L(y_k) / sum_k k over the predictions y_1..y_K of a :class:`Refiner`."""
    weights = range(1, len(preds) + 1)
    return sum(k * per_prediction_loss(y) for k, y in zip(weights, preds)) / sum(weights)


def build_unet(seed: int = 0, device=None, width: int = 4) -> UNet:
    """A UNet (RGB + previous prediction in) initialised from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = UNet(4, width)
    return model.to(device) if device is not None else model
