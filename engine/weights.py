"""Weights for a loss network: torchvision's ImageNet weights, seeded random, or a state_dict file."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision

from .atomic import atomic_write
from .init_schemes import DEFAULT_SCHEME, initialise
from .memo import lossnets_home
from .recipes import WeightsNotFoundError  # noqa: F401 (raised by the recipes, caught by name from here)
from .registry import Architecture, Tap, meta_model
from .torch_files import load_torch_file
from .truncate import truncate


def imagenet_checkpoint_path(arch: Architecture, weights: str = "imagenet") -> Path:
    """Where torchvision's download cache keeps (or would keep) the file of the recipe ``weights`` names."""
    return arch.recipe(weights).checkpoint_path


def imagenet_state_dict(arch: Architecture, weights: str = "imagenet") -> dict[str, torch.Tensor]:
    """The state_dict of the recipe ``weights`` names ("imagenet", "imagenet:NAME"), from torchvision's cache or
    downloaded by torchvision; WeightsNotFoundError naming the file and URL otherwise (recipes.Recipe)."""
    return arch.recipe(weights).state_dict()


def random_weights_path(arch: Architecture, seed: int, scheme: str = DEFAULT_SCHEME) -> Path:
    """The stored prefix of a seeded random init under ``scheme`` (``init_schemes``); the versions are in the name
    because they fix the RNG use."""
    name = arch.name if scheme == DEFAULT_SCHEME else f"{arch.name}-{scheme}"
    tag = f"{name}-seed{seed}-torch{torch.__version__}-torchvision{torchvision.__version__}"
    return lossnets_home() / "random_weights" / (tag.replace("+", "_") + ".pt")


def random_state_dict(arch: Architecture, seed: int, taps: tuple[Tap, ...], needed,
                      scheme: str = DEFAULT_SCHEME) -> dict[str, torch.Tensor]:
    """The full model built under ``torch.manual_seed(seed)`` and initialised by ``scheme`` (torchvision's own
    init by default; see ``init_schemes``), as a state_dict.

    Initialising a full model costs seconds (VGG's classifier alone has 120M parameters) and all but the
    prefix is thrown away, so the prefix up to the deepest registered or requested tap is stored once
    (atomically) and loaded from then on. ``needed``: the keys the caller will load (those of the cut
    at ``taps``).
    """
    path = random_weights_path(arch, seed, scheme)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if set(needed) <= state.keys():
            return state
    if set(arch.taps) <= set(taps):
        keep = list(needed)  # the caller's cut already reaches every registered tap
    else:
        keep = truncate(meta_model(arch), {t.module: f"t{i}" for i, t in enumerate(arch.taps + taps)}).state_dict()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prefix = {k.rpartition(".")[0] for k in keep}  # the layers a scheme re-draws (never the head)
        full = initialise(arch.build(), scheme, seed, arch.mean_std(), prefix).state_dict()
    state = {k: full[k] for k in keep}
    atomic_write(path, lambda f: torch.save(state, f))
    return state


def file_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict saved with torch.save (a bare dict, or one under a 'state_dict' key)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist (expected a torch.save'd state_dict "
                                   "of the full torchvision model, or 'imagenet' or 'random')")
    sd = load_torch_file(path, "a state_dict of the full torchvision model")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"weights file {path} holds a {type(sd).__name__}, expected a state_dict")
    return sd


def load_prefix_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load the keys a truncated module needs from a full-model state_dict; keys after the cut are ignored."""
    own = module.state_dict()
    transient = [n for n, _ in module.named_buffers() if n not in own]
    if transient:  # would stay uninitialised after loading
        raise RuntimeError(f"cannot load {source}: non-persistent buffers {transient}")
    missing = [k for k in own if k not in state]
    if missing:
        raise KeyError(f"{source} lacks {len(missing)} key(s) needed before the cut, e.g. {missing[:5]}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(f"{source}: {k} has shape {tuple(state[k].shape)}, the network needs {tuple(v.shape)}")
    module.load_state_dict({k: state[k] for k in own}, strict=True)
