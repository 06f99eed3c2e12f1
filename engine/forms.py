"""Tap forms: every tap as (N, C, H, W) whatever the model's own layout, converted inside the truncated graph.

- ``nchw``: the module's output as it is (convolutional trunks, MaxViT).
- ``nhwc``: a channels-last map (Swin's stages), permuted.
- ``tokens``: ViT tokens (N, 1 + h*w, C): the class token dropped, the patch tokens as their h x w grid.
- ``class_token``: ViT's class token alone, as a 1 x 1 map (N, C, 1, 1).
- ``as_is``: an ad-hoc tap whose output is none of these, unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import fx

from .truncate import truncate


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def tokens(x: torch.Tensor) -> torch.Tensor:
    n, t, c = x.shape
    side = math.isqrt(t - 1)
    return x[:, 1:].reshape(n, side, side, c).permute(0, 3, 1, 2)


def class_token(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0, :, None, None]


CONVERSIONS = {"nchw": None, "as_is": None, "nhwc": nhwc, "tokens": tokens, "class_token": class_token}


def cut(model: torch.nn.Module, taps) -> fx.GraphModule:
    """``truncate`` at the taps' modules, returning ``{tap.layer: output in the tap's form}``; several taps may
    share a module (a ViT block's grid and class token)."""
    modules = list(dict.fromkeys(t.module for t in taps))
    gm = truncate(model, {m: f"_tap{i}" for i, m in enumerate(modules)})
    output = next(n for n in gm.graph.nodes if n.op == "output")
    raw = output.args[0]
    outs = {}
    with gm.graph.inserting_before(output):
        for t in taps:
            if t.form not in CONVERSIONS:
                raise ValueError(f"tap {t.layer} of {t.arch}: unknown form {t.form!r}; known: {', '.join(CONVERSIONS)}")
            node, convert = raw[f"_tap{modules.index(t.module)}"], CONVERSIONS[t.form]
            outs[t.layer] = node if convert is None else gm.graph.call_function(convert, (node,))
    output.args = (outs,)
    gm.graph.lint()
    gm.recompile()
    return gm
