"""A small SYNTHETIC set in the BAPPS layout (see bapps.py), made from the photos scikit-image ships, with
judgments from a pixel metric plus noise: data for tests and the demo, never for results."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.images import save_png
from ..data.photos import SYNTHETIC_MARKER, photo_patches
from .bapps import JND_SUBSETS, KINDS, SIZE, TRAIN_SUBSETS, TWOAFC_SUBSETS


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    return gaussian_filter(x, sigma=(sigma, sigma, 0), mode="reflect")


def _resample(x: np.ndarray, factor: int, down, up) -> np.ndarray:
    h, w = x.shape[:2]
    im = Image.fromarray(_u8(x)).resize((max(1, w // factor), max(1, h // factor)), down)
    return np.asarray(im.resize((w, h), up), dtype=np.float64)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(_u8(x)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float64)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _distort(x: np.ndarray, op: str, s: float, rng: np.random.Generator) -> np.ndarray:
    """One distortion of strength s in (0, 1] on a float (H,W,3) image in [0,255]."""
    if op == "noise":
        return x + rng.normal(0, 4 + 40 * s, x.shape)
    if op == "blur":
        return _blur(x, 0.4 + 2.5 * s)
    if op == "jpeg":
        return _jpeg(x, 60 - 55 * s)
    if op == "contrast":
        m = x.mean()
        return m + (x - m) * (1 + rng.choice([-1, 1]) * 0.6 * s)
    if op == "brightness":
        return x + rng.choice([-1, 1]) * 60 * s
    if op == "colorshift":
        return x + rng.normal(0, 35 * s, 3)
    if op == "saturation":
        g = x.mean(axis=2, keepdims=True)
        return g + (x - g) * (1 + rng.choice([-1, 1]) * 0.9 * s)
    if op == "gamma":
        return 255 * (x.clip(0, 255) / 255) ** (1 + rng.choice([-1, 1]) * 0.7 * s)
    if op == "downsample":
        f = 2 + int(round(3 * s))
        modes = [Image.NEAREST, Image.BILINEAR, Image.BICUBIC]
        return _resample(x, f, Image.BICUBIC, modes[int(rng.integers(len(modes)))])
    if op == "sharpen":
        b = _blur(x, 1.0 + s)
        return x + (1 + 3 * s) * (x - b)
    if op == "deblur":  # blur, then a partial unsharp-mask restoration
        b = _blur(x, 0.8 + 2 * s)
        return b + rng.uniform(0.3, 1.5) * (b - _blur(b, 1.0))
    if op == "shift":
        k = 1 + int(round(3 * s))
        return np.roll(x, (int(rng.integers(-k, k + 1)), k), axis=(0, 1))
    if op == "ghost":
        k = 1 + int(round(5 * s))
        return (1 - 0.5 * s) * x + 0.5 * s * np.roll(x, k, axis=int(rng.integers(2)))
    raise ValueError(op)


FAMILIES = {  # which distortions make up each made subset (named after the official ones)
    "traditional": ("noise", "blur", "jpeg", "contrast", "brightness"),
    "cnn": ("noise", "blur", "jpeg", "colorshift", "sharpen", "downsample", "saturation"),
    "superres": ("downsample",),
    "deblur": ("deblur", "blur", "sharpen"),
    "color": ("colorshift", "saturation", "gamma", "brightness"),
    "frameinterp": ("ghost", "shift", "blur"),
}
# the training split's "mix": traditional and cnn operations together
FAMILIES["mix"] = tuple(dict.fromkeys(FAMILIES["traditional"] + FAMILIES["cnn"]))
CHAINED = ("cnn", "mix")  # families that apply one or two operations in a row (the others one)


def _random_distortion(x: np.ndarray, family: str, rng: np.random.Generator) -> np.ndarray:
    ops = FAMILIES[family]
    y = x
    for _ in range(int(rng.integers(1, 3)) if family in CHAINED else 1):
        y = _distort(y, ops[int(rng.integers(len(ops)))], float(rng.uniform(0.05, 1.0)), rng)
    out = _u8(y)
    if np.array_equal(out, _u8(x)):  # never an undistorted copy (keeps distances distinct)
        out = _u8(x + rng.normal(0, 3, x.shape))
    return out


def _pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The pixel metric behind the synthetic judgments: RMSE in [0,1] units."""
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) / 255)


def _made_triplet(ref: np.ndarray, family: str, rng: np.random.Generator) -> tuple[dict, float]:
    """A 2AFC triplet on ref and its SYNTHETIC judge: 5 simulated raters (val and train alike)."""
    x = ref.astype(np.float64)
    p0 = _random_distortion(x, family, rng)
    p1 = _random_distortion(x, family, rng)
    while np.array_equal(p0, p1):  # two different distortions (no exact ties by construction)
        p1 = _random_distortion(x, family, rng)
    d0, d1 = _pixel_distance(ref, p0), _pixel_distance(ref, p1)
    prob = 1 / (1 + np.exp(-((d0 - d1) / 0.02 + rng.normal(0, 1.0))))
    return {"ref": ref, "p0": p0, "p1": p1}, rng.binomial(5, prob) / 5


def _made_pair(ref: np.ndarray, family: str, rng: np.random.Generator) -> tuple[dict, float]:
    """A JND pair (ref, a distortion) and its SYNTHETIC same: 3 simulated raters."""
    p1 = _random_distortion(ref.astype(np.float64), family, rng)
    d = _pixel_distance(ref, p1)
    prob = 1 / (1 + np.exp((d - 0.06) / 0.02 + rng.normal(0, 1.0)))
    return {"p0": ref, "p1": p1}, rng.binomial(3, prob) / 3


def _write_made(root: Path, counts, patches, rng: np.random.Generator) -> None:
    """Write ``n`` made items per (kind, split, subset, n) in counts, each on the next patch."""
    at = 0
    for kind, split, sub, n in counts:
        folder = root / kind / split / sub
        make = _made_triplet if kind == "2afc" else _made_pair
        for i in range(n):
            ims, target = make(patches[at], sub, rng)
            at += 1
            stem = f"{i:06d}"
            for d_name, im in ims.items():
                save_png(im, folder / d_name / f"{stem}.png")
            tdir = folder / KINDS[kind][1]
            tdir.mkdir(parents=True, exist_ok=True)
            np.save(tdir / f"{stem}.npy", np.array([target], dtype=np.float64))


README = """SYNTHETIC BAPPS-LIKE DATA -- NOT THE BAPPS DATA SET, NOT HUMAN JUDGMENTS.

Written by `lossnets data make-bapps` (lossnets {version}) with seed {seed}, size {size} (2AFC val triplets
per subset), jnd_size {jnd_size} (JND pairs per subset) and train_size {train_size} (2AFC train triplets
per subset).
Images: {patch}x{patch} patches of the photos that scikit-image ships, distorted by simple operations
(noise, blur, JPEG, contrast, colour shifts, resampling, sharpening, shifts, ghosting). Subset names
copy the official BAPPS layout (2afc/val/<subset>, jnd/val/<subset> and the training split
2afc/train/<subset>: {train_subsets}) but the subsets only loosely imitate their distortion families
("mix" draws from the operations of "traditional" and "cnn" together). The training split is made from
other photo patches than the val subsets.
Judgments are SYNTHETIC (val and train alike): judge = fraction of 5 simulated raters preferring p1, drawn from
sigmoid(({d0} - {d1}) / scale + noise) with d = pixel RMSE to ref; same = fraction of 3 simulated raters,
drawn from a probability that falls with the pixel RMSE of the pair plus noise.
Use this set for tests and demos only. Scores on it say nothing about human perception.
The file {marker} marks the set as synthetic; lossnets labels every result row from it `data=synthetic`.
"""


def make_bapps(root: str | Path, *, size: int = 24, jnd_size: int | None = None, train_size: int | None = None,
               seed: int = 0, twoafc_subsets=TWOAFC_SUBSETS, jnd_subsets=JND_SUBSETS,
               train_subsets=TRAIN_SUBSETS, patch: int = SIZE) -> Path:
    """Write a small synthetic BAPPS-layout set under root (deterministic for a seed).

    ``size`` triplets per 2AFC val subset, ``jnd_size`` (default ``size``) pairs per JND subset and
    ``train_size`` (default ``2 * size``; 0: no training split) triplets per 2AFC train subset
    (``2afc/train/{traditional,cnn,mix}``). The val and JND items do not depend on ``train_size``: the
    training split is drawn after them, from the patches that follow theirs and its own random stream.
    """
    from lossnets import __version__
    root = Path(root)
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    jnd_size = size if jnd_size is None else jnd_size
    train_size = 2 * size if train_size is None else train_size
    if train_size < 0:
        raise ValueError(f"train_size must be at least 0, got {train_size}")
    train_subsets = tuple(train_subsets) if train_size else ()
    counts = [("2afc", "val", s, size) for s in twoafc_subsets] + [("jnd", "val", s, jnd_size) for s in jnd_subsets]
    train_counts = [("2afc", "train", s, train_size) for s in train_subsets]
    n_val = sum(n for *_, n in counts)
    # one draw for all: the first n_val patches are the same whatever train_size is, the rest are others
    patches = photo_patches(n_val + sum(n for *_, n in train_counts), patch, seed=seed)
    _write_made(root, counts, patches[:n_val], np.random.default_rng([seed, 1]))
    _write_made(root, train_counts, patches[n_val:], np.random.default_rng([seed, 2]))
    info = {"synthetic": True, "generator": "lossnets data make-bapps", "lossnets_version": __version__,
            "seed": seed, "size": size, "jnd_size": jnd_size, "train_size": train_size,
            "train_subsets": list(train_subsets), "patch": patch,
            "judgments": "synthetic: pixel RMSE plus noise, not human"}
    (root / SYNTHETIC_MARKER).write_text(json.dumps(info, indent=1) + "\n")
    (root / "README.txt").write_text(README.format(
        version=__version__, seed=seed, size=size, jnd_size=jnd_size, train_size=train_size, patch=patch,
        train_subsets=", ".join(train_subsets) or "none written", d0="d0", d1="d1", marker=SYNTHETIC_MARKER))
    return root
