"""Decoding image files into uint8 tensors, with errors that name the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lossnets.errors import LossnetsError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(LossnetsError, ValueError):
    """An image file that cannot be used."""


def read_rgb(path: str | Path, size: int | tuple[int, int] | None = None,
             resample=Image.BILINEAR) -> torch.Tensor:
    """Decode one image as uint8 (3,H,W) RGB (grayscale and RGBA converted), optionally resized to ``size``
    (an int means square) with PIL ``resample``."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                hw = (size, size) if isinstance(size, int) else tuple(size)
                im = im.resize((hw[1], hw[0]), resample)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot decode image {path}: {e}") from e
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def list_images(folder: str | Path) -> list[Path]:
    """Image files in a folder, sorted by name; an error if the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageError(f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 (H,W,3) or (H,W) array as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
