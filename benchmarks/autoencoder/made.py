"""Small SYNTHETIC sets in the official SVHN and STL-10 file formats (see data.py), made from scikit-image's
photos: the class of an image is its colour (the texture comes from a photo), a task a small autoencoder and MLP
learn. Data for tests and the demo, never for results."""
from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib
import numpy as np
import scipy.io

from ..data.photos import SYNTHETIC_MARKER, photo_patches
from .data import CLASSES, STL10_FILES, STL10_FOLDER, STL10_SIDE, SVHN_SIDE, check_split


def write_svhn(root: str | os.PathLike, split: str, images: np.ndarray, labels: np.ndarray) -> Path:
    """``root/<split>_32x32.mat`` in the official layout from uint8 (N,3,32,32) images and labels 0..9."""
    path = Path(root) / f"{check_split('svhn', split)}_32x32.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    y = np.where(labels == 0, CLASSES, labels).astype(np.uint8).reshape(-1, 1)
    scipy.io.savemat(path, {"X": np.ascontiguousarray(images.transpose(2, 3, 1, 0)), "y": y}, do_compression=True)
    return path


def write_stl10(root: str | os.PathLike, split: str, images: np.ndarray, labels: np.ndarray | None) -> Path:
    """``root/stl10_binary/<split>_X.bin`` (and ``_y.bin`` with labels 1..10) from uint8 (N,3,96,96) images."""
    x_name, y_name = STL10_FILES[check_split("stl10", split)]
    folder = Path(root) / STL10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tofile(folder / x_name)
    if y_name is not None:
        (labels + 1).astype(np.uint8).tofile(folder / y_name)
    return folder


TEXTURE_CONTRAST = 0.7  # a made image: its class colour plus this much of a photo patch's deviation from its mean

README = """SYNTHETIC {name}-FORMAT DATA made by lossnets -- NOT THE {name} DATA SET.

Written by `lossnets data make-{dataset}` (lossnets {version}) with seed {seed}, in the official file format
({layout}). Images: the colour of their class (matplotlib's tab10 colours, class c = colour c) plus
the texture of a {side}x{side} patch of the photos that scikit-image ships (its deviation from its own mean
colour, at {contrast:.0%} contrast): a 10-class task a small autoencoder and MLP can learn. Splits: {counts}.
Use this set for tests and demos only. Accuracies on it say nothing about the published figures.
The file {marker} marks the set as synthetic.
"""


def tinted_patches(n: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 (N,3,side,side) images: their class colour plus a photo patch's texture; the classes cycle 0..9."""
    labels = np.arange(n) % CLASSES
    colours = np.asarray(matplotlib.colormaps["tab10"].colors) * 255
    patches = np.stack(photo_patches(n, side, seed=seed)).astype(np.float64)
    texture = patches - patches.mean((1, 2), keepdims=True)
    tinted = colours[labels][:, None, None, :] + TEXTURE_CONTRAST * texture
    return np.clip(np.rint(tinted), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2), labels


def _mark_synthetic(root: Path, dataset: str, seed: int, counts: dict[str, int], side: int, layout: str) -> None:
    from lossnets import __version__
    name = {"svhn": "SVHN", "stl10": "STL-10"}[dataset]
    info = {"synthetic": True, "generator": f"lossnets data make-{dataset}", "lossnets_version": __version__,
            "seed": seed, "counts": counts, "classes": "tab10 colour plus the texture of scikit-image photo patches"}
    (root / SYNTHETIC_MARKER).write_text(json.dumps(info, indent=1) + "\n")
    (root / "README.txt").write_text(README.format(
        name=name, dataset=dataset, version=__version__, seed=seed, layout=layout, side=side, contrast=TEXTURE_CONTRAST,
        counts=", ".join(f"{k} {v}" for k, v in counts.items()), marker=SYNTHETIC_MARKER))


def make_svhn(root: str | os.PathLike, *, n_train: int = 400, n_test: int = 200, n_extra: int = 800,
              seed: int = 0) -> Path:
    """Write ``root/{train,test,extra}_32x32.mat``, ``root/README.txt`` and the SYNTHETIC marker."""
    root = Path(root)
    counts = {"train": n_train, "test": n_test, "extra": n_extra}
    for i, (split, n) in enumerate(counts.items()):
        write_svhn(root, split, *tinted_patches(n, SVHN_SIDE, seed + i))
    _mark_synthetic(root, "svhn", seed, counts, SVHN_SIDE, "MATLAB v5 X uint8 (32,32,3,N), y (N,1), 10 = digit 0")
    return root


def make_stl10(root: str | os.PathLike, *, n_train: int = 200, n_test: int = 100, n_unlabeled: int = 400,
               seed: int = 0) -> Path:
    """Write ``root/stl10_binary/{train,test}_{X,y}.bin`` and ``unlabeled_X.bin``, ``root/README.txt`` and the
    SYNTHETIC marker. The unlabeled images are made alike (their classes are simply not written)."""
    root = Path(root)
    counts = {"train": n_train, "test": n_test, "unlabeled": n_unlabeled}
    for i, (split, n) in enumerate(counts.items()):
        images, labels = tinted_patches(n, STL10_SIDE, seed + i)
        write_stl10(root, split, images, labels if split != "unlabeled" else None)
    _mark_synthetic(root, "stl10", seed, counts, STL10_SIDE,
                    "stl10_binary/*.bin, uint8 3x96x96 column-major per channel, labels 1..10")
    return root
