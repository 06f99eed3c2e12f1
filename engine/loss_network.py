"""LossNetwork: an ImageNet classifier cut at its taps, returning every requested tap from one pass."""
from __future__ import annotations

import contextlib
import os
from functools import cached_property

import torch
from torch import nn

from .catalog import expand_layers
from .digests import source_digest, tap_digests
from .init_schemes import random_scheme
from .registry import LAYERS, NORMALIZATIONS, Architecture, Tap, get_architecture
from .forms import cut
from .input_size import min_input_size
from .weights import file_state_dict, load_prefix_state, random_state_dict

AMP_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Normalize(nn.Module):
    """(x - mean) / std per channel, as buffers so they follow the module's device."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LossNetwork(nn.Module):
    """A loss network: ``net(images)`` with images (N,3,H,W) in [0,1] returns ``{layer: features}``.

    ``layers`` are tap letters (E, S, M, L), module paths of the torchvision model, "stages" (E, S, M, L) or
    "blocks" (every block tap, catalog.blocks); the keys of the output are the letters of registered taps and
    the paths otherwise; every tap is (N, C, H, W) (``forms``).
    ``weights``: "imagenet" (the study's recipe for its 14, torchvision's DEFAULT for the others),
    "imagenet:NAME" (any recipe of the architecture's weights enum, ``recipes``),
    "random" (torchvision's own init of the full model, seeded by ``seed``; see
    ``weights.random_state_dict``), "random:SCHEME" (another init, ``init_schemes``) or a path to a
    state_dict of the full torchvision model.
    ``normalize``: "imagenet" applies the normalisation the ImageNet weights expect (for googlenet and
    inception_v3 that is their ``transform_input``, applied here once and never in the model),
    "none" feeds the input as it is. ``lazy=True`` defers cutting and loading to first use (for
    callers that may find every feature in the cache; parameters() is empty until then).
    """

    def __init__(self, arch: str, layers=LAYERS, weights: str = "imagenet", *, seed: int = 0,
                 normalize: str = "imagenet", device=None, compile: bool = False,
                 channels_last: bool = True, amp: str | None = None, lazy: bool = False):
        super().__init__()
        self.arch: Architecture = get_architecture(arch)
        layers = expand_layers(self.arch.name, layers)  # "blocks", "stages": their taps
        if normalize not in ("imagenet", "none"):
            raise ValueError(f"normalize must be 'imagenet' or 'none', got {normalize!r}")
        if amp not in AMP_DTYPES:
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
        self.weights_spec = str(weights)
        random_scheme(self.weights_spec)  # an unknown random:SCHEME fails here, not at first use
        self.recipe = self.arch.recipe(self.weights_spec)  # None for random weights or a file
        # models with a fixed input size (ViT, MaxViT) are built for the recipe's and get inputs resized to it
        self.fixed_size = self.recipe.fixed_size if self.recipe else self.arch.fixed_size
        self.seed = seed
        self.normalize = normalize
        self.amp = amp
        self.channels_last = channels_last
        self.device = torch.device(device) if device is not None else default_device()

        self.taps: tuple[Tap, ...] = tuple(self.arch.resolve(layer) for layer in layers)
        self.layers = tuple(t.layer for t in self.taps)
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers repeat a tap: {layers}")
        mean, std = self.arch.mean_std(self.recipe) if normalize == "imagenet" else NORMALIZATIONS["imagenet"]
        self.norm = (Normalize(mean, std) if normalize == "imagenet" else nn.Identity()).to(self.device)
        self._subs: dict[tuple[str, ...], LossNetwork] = {}  # see sub(); a dict, so not submodules
        self._parent: LossNetwork | None = None  # sub(): the network whose tensors it shares once that is built
        if not lazy:
            self._build()
        self._forward = torch.compile(self._forward_eager, dynamic=False) if compile else self._forward_eager
        self.compiled = compile
        self.eval()

    def _build(self) -> None:
        """Cut the meta model at the taps and load the weights into the prefix (outside inference mode whatever
        the caller's: a lazy network first used by the cache must still serve autograd afterwards)."""
        with torch.inference_mode(False):
            self._build_prefix()

    def _build_prefix(self) -> None:
        full = self.arch.build(self.fixed_size, meta=True)  # shapes only: weights are loaded into the prefix below
        body = cut(full, self.taps)
        if self._parent is not None and self._parent.built:  # a shorter prefix: the built one's tensors, shared
            state = self._parent.body.state_dict()
            body.load_state_dict({k: state[k] for k in body.state_dict()}, assign=True)
        else:
            self._load_weights(body)
        body.to(self.device)
        if self.channels_last:
            body.to(memory_format=torch.channels_last)
        self.body = body.eval().requires_grad_(False)

    def _load_weights(self, body: nn.Module) -> None:
        """Allocate the meta prefix on the CPU and load the weights of ``weights_spec`` into it."""
        body.to_empty(device="cpu")
        if scheme := random_scheme(self.weights_spec):
            state = random_state_dict(self.arch, self.seed, self.taps, body.state_dict(), scheme)
            source = f"random weights ({scheme}, seed {self.seed})"
        elif self.recipe:
            state, source = self.recipe.state_dict(), f"torchvision's {self.recipe.enum}.{self.recipe.name}"
        else:
            state, source = file_state_dict(self.weights_spec), f"weights file {self.weights_spec}"
        load_prefix_state(body, state, source)

    def __getattr__(self, name: str):
        if name == "body" and "_modules" in self.__dict__ and not self.built:
            self._build()  # a lazy network is built on first use
        return super().__getattr__(name)

    def sub(self, layers) -> LossNetwork:
        """A network with the same weights and options cut at some of this one's taps (the shortest prefix
        that computes them; built on first use, kept for the next call). Built after this one, it shares this
        one's weight tensors instead of loading a copy (a lockstep run's generated side: one per tap)."""
        layers = tuple(self.arch.resolve(layer).layer for layer in layers)
        if not set(layers) <= set(self.layers):
            raise ValueError(f"{sorted(set(layers) - set(self.layers))} are not taps of this network {self.layers}")
        if set(layers) == set(self.layers):
            return self
        if layers not in self._subs:
            self._subs[layers] = LossNetwork(self.arch.name, layers, self.weights_spec, seed=self.seed,
                                             normalize=self.normalize, device=self.device, compile=self.compiled,
                                             channels_last=self.channels_last, amp=self.amp, lazy=True)
            object.__setattr__(self._subs[layers], "_parent", self)  # not a submodule (nor its parameters)
        return self._subs[layers]

    def renormalized(self, normalize: str) -> LossNetwork:
        """The same network with another input normalisation ("imagenet" or "none"; ``self`` if it has it already;
        built on first use)."""
        if normalize == self.normalize:
            return self
        return LossNetwork(self.arch.name, self.layers, self.weights_spec,
                           seed=self.seed, normalize=normalize, device=self.device, compile=self.compiled,
                           channels_last=self.channels_last, amp=self.amp, lazy=True)

    @property
    def built(self) -> bool:
        """Whether the prefix is cut and loaded (a lazy network is not, until first use)."""
        return "body" in self._modules

    def train(self, mode: bool = True):
        """Loss networks always stay in eval mode (batch norm statistics never drift)."""
        return super().train(False)

    @cached_property
    def weights_digest(self) -> str:
        """sha256 of the weights source's identity, the same whatever the taps (``digests.source_digest``)."""
        return source_digest(self.arch, self.weights_spec, self.seed)

    @cached_property
    def tap_digests(self) -> dict[str, str]:
        """Per tap, sha256 of the tensors its output depends on (``digests.tap_digests``: memoised, so a lazy
        network whose features are all cached is never built); the feature cache keys each tap by it."""
        return tap_digests(self.arch, self.weights_digest, self.taps, lambda: self.body)

    @property
    def config(self) -> str:
        """What fixes this network's features, short: architecture, taps, weights source and digest prefix (and
        the normalisation and autocast where not the defaults). Results carry it so two numbers can be told apart."""
        scheme = random_scheme(self.weights_spec)
        source = (self.recipe.spec if self.recipe else f"random:{scheme}-seed{self.seed}" if scheme
                  else os.path.basename(self.weights_spec))
        parts = [f"{self.arch.name}:{','.join(self.layers)}", f"weights={source}@{self.weights_digest[:8]}"]
        if self.fixed_size:
            parts.append(f"resize={self.fixed_size}({self._interpolation})")
        if self.normalize != "imagenet":
            parts.append(f"normalize={self.normalize}")
        if self.amp is not None:
            parts.append(f"amp={self.amp}")
        return " ".join(parts)

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AMP_DTYPES[self.amp])

    @property
    def _interpolation(self) -> str:
        return (self.recipe or self.arch.recipe()).interpolation

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """Images at the fixed input size of a model that has one (antialiased, the recipe's interpolation)."""
        if not self.fixed_size or x.shape[-2:] == (self.fixed_size, self.fixed_size):
            return x
        return nn.functional.interpolate(x, size=(self.fixed_size,) * 2, mode=self._interpolation,
                                         antialias=True, align_corners=False)

    def _forward_eager(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.autocast():
            return self.body(self.norm(self.resize(x)))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of every requested tap; uint8 images are scaled to [0,1] first."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (N,3,H,W), got {tuple(images.shape)}")
        x = images.to(self.device, non_blocking=True)
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.built:
            self._build()  # here, not inside the compiled region (Dynamo would trace the build: posix.stat, ...)
        try:
            return self._forward(x)
        except RuntimeError as e:
            self._refuse_small(x.shape[-2:], e)
            raise

    def _refuse_small(self, size, error: RuntimeError) -> None:
        """After a failed pass: a ValueError with the smallest side that works if a tap needs larger inputs."""
        if self.fixed_size:
            return  # resized to its size
        need = {layer: min_input_size(self.arch.name, layer) for layer in self.layers}
        if min(size) < max(need.values()):
            raise ValueError(f"images of {size[0]}x{size[1]} are too small for {self.arch.name}'s tap(s) "
                             + ", ".join(f"{k} (needs {s}x{s})" for k, s in need.items() if min(size) < s)
                             + f": give images of at least {max(need.values())}x{max(need.values())}") from error

    @torch.inference_mode()
    def extract(self, images: torch.Tensor, batch_size: int = 64, out_device="cpu") -> dict[str, torch.Tensor]:
        """Target-side features of many images in fixed-size batches (the last one padded)."""
        chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            n = len(batch)
            if n < batch_size and self.compiled:
                pad = batch[-1:].expand(batch_size - n, *batch.shape[1:])
                batch = torch.cat([batch, pad])
            for layer, f in self(batch).items():
                chunks[layer].append(f[:n].to(out_device))
        return {layer: torch.cat(c) for layer, c in chunks.items()} if len(images) else {}

    def extra_repr(self) -> str:
        return (f"arch={self.arch.name}, layers={self.layers}, weights={self.weights_spec!r}, "
                f"normalize={self.normalize!r}, amp={self.amp}, compiled={self.compiled}")
