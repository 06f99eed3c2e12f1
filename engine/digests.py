"""Digests of a loss network's weights: the source's identity (config strings) and each tap's tensors (cache keys).

- ``source_digest``: which weights, the same whatever the taps. sha256 of the source's own identity:
  ``imagenet``, torchvision's weights file name (its hex part is the sha256 prefix torchvision checks the
  file against on load); a file, the sha256 of its bytes; ``random[:SCHEME]``, the architecture, scheme and
  seed with the torch and torchvision versions (which fix the RNG's use). No tensor is loaded for it.
- ``tap_digests``: per tap, sha256 over the names, shapes, dtypes and bytes of the parameters and buffers that
  the tap's output depends on (its ancestors in the cut graph: the network cut at that tap). A tap's cache
  entry is thus found whatever other taps are asked with it, and two sources with the same tensors up to a
  tap share it. Memoised per (source digest, architecture, tap module) under ``$LOSSNETS_HOME``, so a lazy
  network whose features are all cached is never built.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import fx

from .memo import memo_get, memo_put
from .registry import Architecture, Tap


def _sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised by path, size and mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    memo = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    digest = memo_get("file_sha256", memo)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        digest = h.hexdigest()
        memo_put("file_sha256", memo, digest)
    return digest


def source_digest(arch: Architecture, weights: str, seed: int) -> str:
    """sha256 of the identity of the weights ``weights`` ("imagenet", "random[:SCHEME]" or a state_dict file)
    of ``arch`` (see the module docstring)."""
    if recipe := arch.recipe(weights):  # "imagenet" or "imagenet:NAME"
        return _sha256_json({"torchvision": recipe.file})
    kind, _, scheme = weights.partition(":")
    if kind == "random":
        return _sha256_json({"random": arch.name, "scheme": scheme or "torchvision", "seed": int(seed),
                             "torch": torch.__version__, "torchvision": torchvision.__version__})
    if not Path(weights).is_file():
        raise FileNotFoundError(f"weights file {weights} does not exist (expected a torch.save'd state_dict "
                                "of the full torchvision model, or 'imagenet' or 'random')")
    return _sha256_json({"file_sha256": file_sha256(weights)})


def tap_state_keys(gm: fx.GraphModule) -> dict[str, list[str]]:
    """Per output of a cut graph: the sorted state_dict keys of the modules and attributes it depends on."""
    state = gm.state_dict().keys()
    output = next(n for n in gm.graph.nodes if n.op == "output")
    out = {}
    for name, node in output.args[0].items():
        seen, stack, keys = set(), [node], set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(n.all_input_nodes)
            if n.op == "call_module":
                keys.update(gm.get_submodule(n.target).state_dict(prefix=n.target + ".").keys())
            elif n.op == "get_attr" and n.target in state:
                keys.add(n.target)
        out[name] = sorted(keys)
    return out


def tensors_digest(state: dict[str, torch.Tensor], keys) -> str:
    """sha256 over the names, shapes, dtypes and bytes of ``state[k]`` for ``k`` in ``keys``, in that order."""
    h = hashlib.sha256()
    for k in keys:
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def tap_digests(arch: Architecture, source: str, taps: tuple[Tap, ...],
                body: Callable[[], fx.GraphModule]) -> dict[str, str]:
    """``{layer: digest of the tensors the tap depends on}`` of ``arch`` under the weights of digest ``source``;
    ``body()`` (the network cut at ``taps``, weights loaded) is called only where the memo lacks a tap."""
    memo = {t.layer: f"{source}|{arch.name}|{t.module}" for t in taps}
    out = {layer: memo_get("tap_digests", key) for layer, key in memo.items()}
    if None in out.values():
        gm = body()
        state, keys = gm.state_dict(), tap_state_keys(gm)
        for layer in [layer for layer, d in out.items() if d is None]:
            out[layer] = tensors_digest(state, keys[layer])
            memo_put("tap_digests", memo[layer], out[layer])
    return out
