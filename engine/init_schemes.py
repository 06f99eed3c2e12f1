"""Initialisation schemes for random-weight loss networks (``weights="random:SCHEME"``).

Each scheme re-draws a freshly built torchvision model in place, under the caller's seed. ``fan_in`` of a
weight is ``C_in/groups * k_h * k_w`` for a convolution and ``in_features`` for a linear layer, ``fan_out``
likewise with ``C_out``. Every scheme but ``torchvision`` applies the same rules outside its weight draw:

- biases of convolutions and linear layers are 0;
- batch-norm (and layer/group-norm) layers are the identity: weight 1, bias 0, running mean 0, variance 1;
- only the layers up to the deepest tap are drawn (``weights.random_state_dict`` keeps no more): the
  classifier head, which no loss network reaches, keeps the builder's init (and under ``liu`` is rescaled by
  the calibration like any layer, to no effect on a tap). Each module is drawn from its own generator,
  seeded by (seed, module path), so a layer's weights do not depend on how deep the stored prefix reaches;
- any other parameter (ViT tokens and position embeddings, attention in-projections, ConvNeXt layer scales,
  Swin position-bias tables) keeps the builder's own init.

The schemes:

- ``torchvision``: the builder's own init, untouched (``random`` means this). For VGG and AlexNet that is
  kaiming_normal_ with mode="fan_out", so the activation std falls with depth; ResNets: the same on convs,
  batch norm weight 1.
- ``kaiming``: ``W ~ N(0, 2 / fan_in)`` (He et al. 2015, "Delving deep into rectifiers", eq. 10: the
  fan-in Gaussian with the ReLU gain, which keeps the forward variance of a ReLU chain).
- ``xavier``: ``W ~ N(0, 2 / (fan_in + fan_out))`` (Glorot & Bengio 2010, eq. 16, normal form, gain 1).
- ``orthogonal``: the weight flattened to ``(C_out, fan_in)`` is a random (semi-)orthogonal matrix times the
  ReLU gain sqrt(2) (Saxe et al. 2014), so every element has std ``sqrt(2 / max(fan_in, C_out))``.
- ``liu``: Liu et al. (CVPR 2021, arXiv 2103.10571, "Devils in the initialization") require that a random
  loss network's layers neither amplify nor attenuate, so that activations and gradients keep their scale
  with depth. Their exact formula could not be confirmed from the sources available to us, so this scheme
  is what it does, a *depth-calibrated Gaussian*: the ``kaiming`` draw, then every convolution and linear
  layer, in forward order, divided by the std of its own output on a seeded probe batch (layer-sequential
  unit variance, Mishkin & Matas 2016, "All you need is a good init"): ``W_l = W~_l / std(W~_l * h_{l-1})``
  with ``h`` the probe's activations through the already calibrated layers before ``l``. The probe is
  ``PROBE_BATCH`` crops of ``PROBE_SIZE`` px from scikit-image's bundled photos (at positions drawn from the
  same seed), normalised as the loss network normalises its input: the scale is set on natural images, the
  inputs a loss network sees. Layers the forward never calls keep the ``kaiming`` draw.
"""
from __future__ import annotations

import hashlib
import math

import skimage.data
import torch
from torch import nn

SCHEMES = ("torchvision", "kaiming", "xavier", "orthogonal", "liu")
DEFAULT_SCHEME = "torchvision"
PROBE_BATCH, PROBE_SIZE = 4, 224  # 224: the size every torchvision classifier accepts (ViTs accept no other)
PROBE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # colour photos bundled with scikit-image (no download)
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def random_scheme(spec: str) -> str | None:
    """The scheme of a ``random`` or ``random:SCHEME`` weights string, None for any other string."""
    spec = str(spec)
    if spec == "random":
        return DEFAULT_SCHEME
    if not spec.startswith("random:"):
        return None
    scheme = spec.split(":", 1)[1]
    if scheme not in SCHEMES:
        raise ValueError(f"weights {spec!r}: unknown initialisation scheme {scheme!r}; "
                         f"expected random:SCHEME with SCHEME one of {', '.join(SCHEMES)}")
    return scheme


def module_generator(seed: int, name: str) -> torch.Generator:
    """The generator of one module's draw, seeded by (seed, module path): a module's weights do not depend on
    which other modules are drawn, or in what order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _draw(weight: torch.Tensor, scheme: str, g: torch.Generator) -> None:
    if scheme in ("kaiming", "liu"):
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", generator=g)
    elif scheme == "xavier":
        nn.init.xavier_normal_(weight, generator=g)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight, gain=math.sqrt(2.0), generator=g)


@torch.no_grad()
def initialise(model: nn.Module, scheme: str, seed: int, mean_std, modules=None) -> nn.Module:
    """Re-draw ``model`` (just built under ``torch.manual_seed(seed)``) by ``scheme``, in place.

    ``mean_std``: the per-channel normalisation the loss network applies to its input (the probe of ``liu``
    is normalised the same way). ``modules``: the paths of the modules to re-draw (None: all); the others,
    e.g. a classifier head that no loss network reaches (an orthogonal draw of VGG's takes minutes), keep the
    builder's init. Each module is drawn from its own generator (``module_generator``)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown initialisation scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if scheme == "torchvision":
        return model
    for name, m in model.named_modules():
        if modules is not None and name not in modules:
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            _draw(m.weight, scheme, module_generator(seed, name))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NORMS):
            if getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            if getattr(m, "running_mean", None) is not None:
                m.reset_running_stats()
    if scheme == "liu":
        calibrate(model, probe_images(PROBE_BATCH, PROBE_SIZE, seed, mean_std))
    return model


@torch.no_grad()
def calibrate(model: nn.Module, probe: torch.Tensor) -> None:
    """Layer-sequential unit variance: one eval forward of ``probe`` in which every convolution and linear
    layer, as it runs, divides its weight and bias by the std of its output (and passes the rescaled output
    on, so each later layer is calibrated on the already calibrated activations before it)."""
    done: set[nn.Module] = set()

    def rescale(module, _inputs, out):
        if module in done:  # a module called twice is calibrated at its first call
            return None
        done.add(module)
        std = out.float().std()
        if not torch.isfinite(std) or std <= 0:
            return None
        module.weight.div_(std)
        if module.bias is not None:
            module.bias.div_(std)
        return out / std

    hooks = [m.register_forward_hook(rescale) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()(probe)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


def probe_images(n: int, size: int, seed: int, mean_std) -> torch.Tensor:
    """``n`` (n,3,size,size) crops of scikit-image's bundled photos (one per photo in turn, at seeded
    positions), in [0,1] and then normalised by ``mean_std``."""
    g = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(n):
        photo = torch.from_numpy(getattr(skimage.data, PROBE_PHOTOS[i % len(PROBE_PHOTOS)])()).permute(2, 0, 1)
        y, x = (int(torch.randint(0, d - size + 1, (1,), generator=g)) for d in photo.shape[1:])
        crops.append(photo[:, y:y + size, x:x + size].float() / 255)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in mean_std)
    return (torch.stack(crops) - mean) / std
