"""The convolutional autoencoder of Pihlgren et al. (IJCNN 2020, ICPR 2020), after the World Models VAE.

Encoder: 4 x [conv 4x4 stride 2, no padding, batch norm, ReLU] with 32, 64, 128, 256 channels, flatten,
a linear layer to the embedding. Decoder: linear to 1024 x g x g (g = (size - 64) / 16 + 1), ReLU, transposed
convs with kernels 5, 5, 6, 6 and stride 2 to 128, 64, 32, 3 channels (batch norm and ReLU between), sigmoid.
Sides: 64 -> 1, 5, 13, 30, 64 and 96 -> 3, 9, 21, 46, 96; the input side must be 64 + 16n.

The variational variant (``vae=True``) adds a log-variance head and samples the code in training; the embedding
is always the mean (as the published code).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

ENCODER_CHANNELS = (32, 64, 128, 256)
DECODER_CHANNELS = (128, 64, 32, 3)
DECODER_KERNELS = (5, 5, 6, 6)
DECODER_WIDTH = 1024


class Reconstruction(NamedTuple):
    """What the autoencoder returns: the image in [0,1], the embedding (mean) and, for a VAE, the log-variance."""
    image: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor | None


def check_size(size: int) -> int:
    if size < 64 or (size - 64) % 16:
        raise ValueError(f"the autoencoder's input side must be 64 + 16n (64 for SVHN, 96 for STL-10), got {size}")
    return size


def encoder_side(size: int) -> int:
    """Side of the encoder's last feature map: floor((s - 4) / 2) + 1 four times (64 -> 2, 96 -> 4)."""
    for _ in ENCODER_CHANNELS:
        size = (size - 4) // 2 + 1
    return size


class Autoencoder(nn.Module):
    """Images (N,3,size,size) in [0,1] -> ``Reconstruction``; ``encode`` gives the embedding (N, embedding)."""

    def __init__(self, size: int = 64, embedding: int = 64, vae: bool = False):
        super().__init__()
        self.size, self.embedding, self.vae = check_size(size), embedding, vae
        self.grid = (size - 64) // 16 + 1
        blocks, cin = [], 3
        for cout in ENCODER_CHANNELS:
            blocks += [nn.Conv2d(cin, cout, 4, stride=2), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.encoder = nn.Sequential(*blocks, nn.Flatten())
        flat = ENCODER_CHANNELS[-1] * encoder_side(size) ** 2
        self.mean = nn.Linear(flat, embedding)
        self.logvar = nn.Linear(flat, embedding) if vae else None
        self.dense = nn.Sequential(nn.Linear(embedding, DECODER_WIDTH * self.grid ** 2), nn.ReLU())
        layers, cin = [], DECODER_WIDTH
        for i, (cout, k) in enumerate(zip(DECODER_CHANNELS, DECODER_KERNELS)):
            layers.append(nn.ConvTranspose2d(cin, cout, k, stride=2))
            layers += [nn.BatchNorm2d(cout), nn.ReLU()] if i < len(DECODER_CHANNELS) - 1 else [nn.Sigmoid()]
            cin = cout
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: the mean head's output (N, embedding)."""
        return self.mean(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.dense(z).view(-1, DECODER_WIDTH, self.grid, self.grid))

    def forward(self, x: torch.Tensor) -> Reconstruction:
        h = self.encoder(x)
        mean = self.mean(h)
        if self.logvar is None:
            return Reconstruction(self.decode(mean), mean, None)
        logvar = self.logvar(h)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if self.training else mean
        return Reconstruction(self.decode(z), mean, logvar)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The published KL term: -mean(1 + logvar - mean^2 - exp(logvar)) over batch and dimensions (no 1/2)."""
    return -torch.mean(1 + logvar - mean.pow(2) - logvar.exp())


def build_autoencoder(size: int = 64, embedding: int = 64, vae: bool = False, seed: int = 0,
                      device=None) -> Autoencoder:
    """An Autoencoder initialised from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Autoencoder(size, embedding, vae)
    return model.to(device) if device is not None else model
