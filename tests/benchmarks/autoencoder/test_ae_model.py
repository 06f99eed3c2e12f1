"""Benchmark 4 autoencoder: the published layer sizes at 64 and 96, the embedding, the variational variant."""
import pytest
import torch
from torch import nn

from lossnets.benchmarks.autoencoder.model import build_autoencoder, kl_divergence

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size, flat, sides", [(64, 1024, [5, 13, 30, 64]), (96, 4096, [9, 21, 46, 96])])
def test_shapes(size, flat, sides):
    model = build_autoencoder(size, embedding=16).eval()
    x = torch.rand(2, 3, size, size)
    assert model.encoder(x).shape == (2, flat)
    assert model.encode(x).shape == (2, 16)
    h, seen = model.dense(torch.zeros(2, 16)).view(2, 1024, model.grid, model.grid), []
    for layer in model.decoder:
        h = layer(h)
        if isinstance(layer, nn.ConvTranspose2d):
            seen.append(h.shape[-1])
    assert seen == sides
    out = model(x)
    assert out.image.shape == x.shape and 0 <= out.image.min() and out.image.max() <= 1
    assert torch.equal(out.mean, model.encode(x)) and out.logvar is None
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == \
        [(c, (4, 4), (2, 2), (0, 0)) for c in (32, 64, 128, 256)]


def test_seeded_construction_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_autoencoder(64, seed=1), build_autoencoder(64, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.mean.weight, build_autoencoder(64, seed=2).mean.weight)


def test_variational_variant_samples_in_training_and_embeds_the_mean():
    model = build_autoencoder(64, embedding=8, vae=True)
    x = torch.rand(3, 3, 64, 64)
    out = model.train()(x)
    assert out.logvar.shape == (3, 8) and kl_divergence(out.mean, out.logvar).dim() == 0
    model.eval()
    assert torch.equal(model(x).mean, model.encode(x))
    z = torch.zeros(4, 8)
    assert kl_divergence(z, z).item() == 0  # the prior itself


def test_bad_size():
    with pytest.raises(ValueError, match="64 \\+ 16n"):
        build_autoencoder(72)
