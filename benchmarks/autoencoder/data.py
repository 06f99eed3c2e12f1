"""SVHN and STL-10 in their official file formats: readers, the benchmark's splits and downloads.

Files read (torchvision's classes check the official md5 of every file on every load, so these are the
project's own readers):

    SVHN    DIR/{train,test,extra}_32x32.mat      MATLAB v5: X uint8 (32,32,3,N), y (N,1) with 10 for the digit 0
    STL-10  DIR/stl10_binary/{train,test}_{X,y}.bin, DIR/stl10_binary/unlabeled_X.bin
            uint8 images of 3x96x96, each channel stored column-major; labels 1..10, one byte each

Images come back as uint8 (N,3,H,W) at their stored size, labels as int64 0..9 (None for unlabeled images).
``model_input`` makes a batch what the autoencoder sees: SVHN reflection-padded from 32x32 to 64x64, STL-10 at
its native 96x96, as floats in [0,1].

Splits (``load_splits``): the autoencoder trains on SVHN ``extra`` / STL-10 ``unlabeled`` and the MLPs on
``train``, each split 80/20 into training and validation with a seeded permutation; the MLPs are tested on
``test``.

made.py writes small SYNTHETIC sets in exactly these formats.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from torchvision.datasets.utils import download_and_extract_archive, download_url

from lossnets.errors import LossnetsError

from ..data.download import DownloadError
from ..data.photos import SYNTHETIC_MARKER

DATASETS = ("svhn", "stl10")
CLASSES = 10
VAL_FRACTION = 0.2
SVHN_SIDE, SVHN_PAD = 32, 16  # 32x32 reflection-padded by 16 on each side: 64x64
STL10_SIDE = 96
STL10_IMAGE_BYTES = 3 * STL10_SIDE * STL10_SIDE
MODEL_SIDE = {"svhn": SVHN_SIDE + 2 * SVHN_PAD, "stl10": STL10_SIDE}
SPLITS = {"svhn": ("train", "test", "extra"), "stl10": ("train", "test", "unlabeled")}
AUTOENCODER_SPLIT = {"svhn": "extra", "stl10": "unlabeled"}

# the official sources and md5s (as in torchvision's datasets/svhn.py and datasets/stl10.py)
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_MD5 = {"train": "e26dedcc434d2e4c54c9b2d4a06d8373", "test": "eb5a983be6a315427106f1b164d9cef3",
            "extra": "a93ce644f1a588dc4d68dda5feec44a7"}
STL10_URL = "http://ai.stanford.edu/~acoates/stl10/"
STL10_ARCHIVE, STL10_MD5 = "stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb"
STL10_FOLDER = "stl10_binary"
STL10_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin"),
               "unlabeled": ("unlabeled_X.bin", None)}


class AutoencoderDataError(LossnetsError, ValueError):
    """An SVHN or STL-10 file that is missing or not in the official format; the message names the file."""


@dataclass
class ImageSet:
    """Images uint8 (N,3,H,W) with int64 labels 0..9 (None: unlabeled) and their positions in the source file."""
    images: torch.Tensor
    labels: torch.Tensor | None
    positions: np.ndarray
    source: str  # e.g. "svhn/extra"

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> ImageSet:
        t = torch.from_numpy(index)
        return ImageSet(self.images[t], None if self.labels is None else self.labels[t], self.positions[index],
                        self.source)


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    return dataset


def check_split(dataset: str, split: str) -> str:
    if split not in SPLITS[dataset]:
        raise ValueError(f"{dataset} has no split {split!r}; splits: {', '.join(SPLITS[dataset])}")
    return split


def _missing(path: Path, dataset: str, split: str, root: Path) -> AutoencoderDataError:
    return AutoencoderDataError(
        f"{dataset} split {split!r}: {path} does not exist; get the official files with `lossnets data download "
        f"{dataset} {root}` or make a small SYNTHETIC set with `lossnets data make-{dataset} {root}`")


def _stored_labels(raw: np.ndarray, path: Path) -> np.ndarray:
    """Labels as stored (1..10 in both formats) as int64; anything else is an error naming the file."""
    bad = (raw < 1) | (raw > CLASSES)
    if bad.any():
        raise AutoencoderDataError(f"{path}: label {int(raw[bad][0])} at position {int(np.argmax(bad))} is outside "
                                   f"1..{CLASSES}")
    return raw.astype(np.int64)


def _first(limit: int | None, count: int) -> int:
    """How many images to read: all ``count``, or the first ``limit``."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (or None for all images), got {limit}")
    return count if limit is None else min(limit, count)


def read_svhn(root: str | os.PathLike, split: str, limit: int | None = None) -> ImageSet:
    """``root/<split>_32x32.mat``: the first ``limit`` images (all by default), label 10 read as the digit 0.

    The official files are compressed MATLAB v5, so the whole file is decoded even for a small ``limit``.
    """
    root, split = Path(root), check_split("svhn", split)
    path = root / f"{split}_32x32.mat"
    if not path.is_file():
        raise _missing(path, "svhn", split, root)
    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except (ValueError, OSError, NotImplementedError) as e:
        raise AutoencoderDataError(f"cannot read {path} as a MATLAB v5 file: {e}") from e
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None:
        raise AutoencoderDataError(f"{path} lacks the variable {'X' if x is None else 'y'}; expected X and y")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (SVHN_SIDE, SVHN_SIDE, 3):
        raise AutoencoderDataError(f"{path}: X is {x.dtype} {x.shape}; expected uint8 (32, 32, 3, N)")
    if y.shape != (x.shape[3], 1):
        raise AutoencoderDataError(f"{path}: y has shape {y.shape}; expected ({x.shape[3]}, 1), one label per image")
    n = _first(limit, x.shape[3])
    labels = torch.from_numpy(_stored_labels(y.reshape(-1)[:n], path) % CLASSES)  # 10 is the digit 0
    images = torch.from_numpy(np.ascontiguousarray(x[..., :n].transpose(3, 2, 0, 1)))
    return ImageSet(images, labels, np.arange(n), f"svhn/{split}")


def read_stl10(root: str | os.PathLike, split: str, limit: int | None = None) -> ImageSet:
    """``root/stl10_binary/<split>_X.bin`` (and ``_y.bin``): the first ``limit`` images, read through a memory map
    so that only those are loaded (``unlabeled_X.bin`` is 2.6 GB)."""
    root, split = Path(root), check_split("stl10", split)
    x_name, y_name = STL10_FILES[split]
    x_path = root / STL10_FOLDER / x_name
    if not x_path.is_file():
        raise _missing(x_path, "stl10", split, root)
    size = x_path.stat().st_size
    if size == 0 or size % STL10_IMAGE_BYTES:
        raise AutoencoderDataError(f"{x_path} has {size} bytes, not a positive multiple of one image's "
                                   f"{STL10_IMAGE_BYTES} (3x96x96): truncated or not an STL-10 image file")
    count = size // STL10_IMAGE_BYTES
    n = _first(limit, count)
    stored = np.memmap(x_path, np.uint8, "r", shape=(count, 3, STL10_SIDE, STL10_SIDE))
    images = torch.from_numpy(np.ascontiguousarray(stored[:n].transpose(0, 1, 3, 2)))  # column-major channels
    labels = None
    if y_name is not None:
        y_path = x_path.with_name(y_name)
        if not y_path.is_file():
            raise _missing(y_path, "stl10", split, root)
        raw = np.fromfile(y_path, np.uint8)
        if len(raw) != count:
            raise AutoencoderDataError(f"{y_path} holds {len(raw)} labels for the {count} images of {x_path}")
        labels = torch.from_numpy(_stored_labels(raw[:n], y_path) - 1)
    return ImageSet(images, labels, np.arange(n), f"stl10/{split}")


def read_split(root: str | os.PathLike, dataset: str, split: str, limit: int | None = None) -> ImageSet:
    """The first ``limit`` images of one official split of ``dataset`` (``svhn`` or ``stl10``)."""
    reader = read_svhn if check_dataset(dataset) == "svhn" else read_stl10
    return reader(root, split, limit)


def model_input(images: torch.Tensor, dataset: str, device=None) -> torch.Tensor:
    """uint8 (N,3,h,w) -> float (N,3,S,S) in [0,1]: SVHN reflection-padded from 32 to 64 (as the published
    benchmark code; the original papers tiled the digit 2x2 instead, wrap-padding bottom and right), STL-10 as is."""
    x = images.to(device).float().div_(255)
    return F.pad(x, (SVHN_PAD,) * 4, mode="reflect") if check_dataset(dataset) == "svhn" else x


def split_train_val(n: int, seed: int = 0, val_fraction: float = VAL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) positions of n items, each sorted; ``val_fraction`` of them (rounded) for
    validation, at least one item in each."""
    if n < 2:
        raise ValueError(f"cannot split {n} item(s) into training and validation; need at least 2")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class BenchmarkSplits:
    """The five sets of Benchmark 4, uint8 at their stored size (``model_input`` prepares batches)."""
    dataset: str
    autoencoder_train: ImageSet
    autoencoder_val: ImageSet
    mlp_train: ImageSet
    mlp_val: ImageSet
    mlp_test: ImageSet
    synthetic: bool  # made by make_svhn / make_stl10


def load_splits(root: str | os.PathLike, dataset: str, seed: int = 0, *, autoencoder_limit: int | None = None,
                mlp_limit: int | None = None, test_limit: int | None = None) -> BenchmarkSplits:
    """The autoencoder's split (``extra``/``unlabeled``) and ``train``, each split 80/20 with ``seed``, and ``test``.

    The limits read only the first that many images of the split (small runs and the demo).
    """
    check_dataset(dataset)
    auto = read_split(root, dataset, AUTOENCODER_SPLIT[dataset], autoencoder_limit)
    mlp = read_split(root, dataset, "train", mlp_limit)
    auto_train, auto_val = split_train_val(len(auto), seed)
    mlp_train, mlp_val = split_train_val(len(mlp), seed)
    return BenchmarkSplits(dataset, auto.subset(auto_train), auto.subset(auto_val), mlp.subset(mlp_train),
                           mlp.subset(mlp_val), read_split(root, dataset, "test", test_limit),
                           (Path(root) / SYNTHETIC_MARKER).is_file())


# ---------------------------------------------------------------------------------------------- downloads

def download_svhn(root: str | os.PathLike, splits: Sequence[str] = SPLITS["svhn"], *,
                  base_url: str | None = None) -> Path:
    """The official ``<split>_32x32.mat`` files into root, md5-verified (a verified file is not fetched again).

    ``base_url`` replaces the official address (a mirror, or a test server)."""
    root = Path(root)
    for split in splits:
        name = f"{check_split('svhn', split)}_32x32.mat"
        url = (base_url or SVHN_URL).rstrip("/") + "/" + name
        try:
            download_url(url, root, name, SVHN_MD5[split])
        except (RuntimeError, OSError) as e:
            raise DownloadError(f"{url} -> {root / name}: {e} (expected md5 {SVHN_MD5[split]}); run again") from e
    return root


def download_stl10(root: str | os.PathLike, *, base_url: str | None = None) -> Path:
    """The official ``stl10_binary.tar.gz`` into root, md5-verified, and extracted to ``root/stl10_binary``.

    A marker file makes a rerun after a finished extraction do nothing."""
    root = Path(root)
    marker = root / f".{STL10_FOLDER}.extracted"
    if marker.is_file():
        return root
    url = (base_url or STL10_URL).rstrip("/") + "/" + STL10_ARCHIVE
    try:
        download_and_extract_archive(url, root, filename=STL10_ARCHIVE, md5=STL10_MD5)
    except (RuntimeError, OSError, EOFError) as e:
        raise DownloadError(f"{url} -> {root / STL10_ARCHIVE}: {e} (expected md5 {STL10_MD5}); run again") from e
    marker.write_text(STL10_MD5 + "\n")
    return root
