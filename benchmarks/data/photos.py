"""Patches of the photos that scikit-image ships: the source of every made (synthetic) data set."""
from __future__ import annotations

import numpy as np
import skimage.data

# the file every made set writes in its root: its presence labels the data set SYNTHETIC
SYNTHETIC_MARKER = "SYNTHETIC.json"
# colour photos bundled with scikit-image (no download needed)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 (H,W,3)."""
    return getattr(skimage.data, name)()


def photo_patches(n: int, size: int | tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``n`` random uint8 (h,w,3) crops of the bundled photos, cycling over the photos, seeded."""
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    photos = [photo(p) for p in PHOTOS]
    out = []
    for i in range(n):
        im = photos[i % len(photos)]
        if im.shape[0] < h or im.shape[1] < w:
            raise ValueError(f"patch {h}x{w} is larger than photo {PHOTOS[i % len(photos)]} {im.shape[:2]}")
        y = int(rng.integers(0, im.shape[0] - h + 1))
        x = int(rng.integers(0, im.shape[1] - w + 1))
        out.append(np.ascontiguousarray(im[y:y + h, x:x + w]))
    return out
