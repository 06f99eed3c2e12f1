"""Weights for a loss network: torchvision's ImageNet weights, seeded random, or a state_dict file."""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
import torchvision

from .atomic import atomic_write
from .memo import lossnets_home
from .registry import Architecture, Tap, meta_model
from .torch_files import load_torch_file
from .truncate import truncate


class WeightsNotFoundError(FileNotFoundError):
    """ImageNet weights are neither on disk nor downloadable."""


def imagenet_checkpoint_path(arch: Architecture) -> Path:
    """Where torchvision's download cache keeps (or would keep) the ImageNet weights file."""
    url = arch.weights().url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_state_dict(arch: Architecture) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state_dict, from its cache or downloaded by torchvision."""
    w = arch.weights()
    try:
        return w.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "download" not in str(e).lower() and "hash" not in str(e).lower():
            raise
        path = imagenet_checkpoint_path(arch)
        raise WeightsNotFoundError(
            f"ImageNet weights for {arch.name} are not on disk and could not be downloaded ({e}). "
            f"torchvision wants the file {path}: download {w.url} and put it there "
            f"(the folder follows $TORCH_HOME, now {torch.hub.get_dir()})."
        ) from e


def random_weights_path(arch: Architecture, seed: int) -> Path:
    """The stored prefix of a seeded random init; the versions are in the name because they fix the RNG use."""
    tag = f"{arch.name}-seed{seed}-torch{torch.__version__}-torchvision{torchvision.__version__}"
    return lossnets_home() / "random_weights" / (tag.replace("+", "_") + ".pt")


def random_state_dict(arch: Architecture, seed: int, taps: tuple[Tap, ...], needed) -> dict[str, torch.Tensor]:
    """torchvision's init of the full model under ``torch.manual_seed(seed)``, as a state_dict.

    Initialising a full model costs seconds (VGG's classifier alone has 120M parameters) and all but the
    prefix is thrown away, so the prefix up to the deepest registered or requested tap is stored once
    (atomically) and loaded from then on. ``needed``: the keys the caller will load (those of the cut
    at ``taps``).
    """
    path = random_weights_path(arch, seed)
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
        full = arch.build().state_dict()
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

