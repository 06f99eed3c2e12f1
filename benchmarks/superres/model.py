"""The image transformation network of Johnson et al. (2016) for single-image super-resolution.

9x9 conv to 64 channels, 4 residual blocks (conv-BN-ReLU-conv-BN + x), log2(scale) x2 upsamplings, a
9x9 conv to 3 channels, and tanh mapped to [0,1]. Upsampling: ``paper`` = nearest-neighbour x2 then a
3x3 conv (as the published code), ``standard`` = 3x3 transposed conv with stride 2 (as Johnson et al.).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class ResidualBlock(nn.Module):
    def __init__(self, ch: int = 64):
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch, 3), nn.BatchNorm2d(ch), nn.ReLU(),
                                  _conv(ch, ch, 3), nn.BatchNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


def _upsample(ch: int, protocol: str) -> nn.Sequential:
    if protocol == "paper":
        up = [nn.Upsample(scale_factor=2, mode="nearest"), _conv(ch, ch, 3)]
    elif protocol == "standard":
        up = [nn.ConvTranspose2d(ch, ch, 3, stride=2, padding=1, output_padding=1)]
    else:
        raise ValueError(f"protocol must be 'paper' or 'standard', got {protocol!r}")
    return nn.Sequential(*up, nn.BatchNorm2d(ch), nn.ReLU())


class TransformNet(nn.Module):
    """LR images (N,3,h,w) in [0,1] -> SR images (N,3,h*scale,w*scale) in [0,1]."""

    def __init__(self, scale: int = 4, protocol: str = "paper", channels: int = 64, blocks: int = 4):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"scale must be a power of two (4 or 8), got {scale}")
        self.scale, self.protocol = scale, protocol
        self.head = nn.Sequential(_conv(3, channels, 9), nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.up = nn.Sequential(*(_upsample(channels, protocol) for _ in range(int(math.log2(scale)))))
        self.tail = _conv(channels, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tail(self.up(self.blocks(self.head(x))))
        return (torch.tanh(y) + 1) / 2


def build_transform_net(scale: int = 4, protocol: str = "paper", seed: int = 0, device=None) -> TransformNet:
    """A TransformNet initialised from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TransformNet(scale, protocol)
    return model.to(device) if device is not None else model
