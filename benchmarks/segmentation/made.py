"""A small SYNTHETIC set of road tiles in the official Massachusetts Roads layout (or the published code's, see
data.py): photos tinted green with random road networks drawn over them; data for tests and the demo, never for
results."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.photos import SYNTHETIC_MARKER, photo_patches
from .data import LAYOUTS, SPLITS

ROAD_WIDTH = 7  # px: the official masks draw OpenStreetMap centre-lines about this wide
FIELD = np.array([70.0, 105.0, 50.0])  # made tiles: the green the photos are tinted towards
ASPHALT = np.array([128.0, 128.0, 132.0])  # made tiles: the grey of the roads


def _border_point(size: int, rng: np.random.Generator) -> tuple[int, int]:
    t, side = int(rng.integers(size)), int(rng.integers(4))
    return ((t, 0), (t, size - 1), (0, t), (size - 1, t))[side]


def _road_network(size: int, rng: np.random.Generator) -> np.ndarray:
    """bool (size,size): 2 to 4 polylines ``ROAD_WIDTH`` px wide, each from one border to another through 1 or
    2 random inner points."""
    im = Image.new("L", (size, size))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(2, 5))):
        inner = [tuple(p) for p in rng.integers(0, size, (int(rng.integers(1, 3)), 2)).tolist()]
        draw.line([_border_point(size, rng), *inner, _border_point(size, rng)], fill=255, width=ROAD_WIDTH,
                  joint="curve")
    return np.asarray(im) > 127


def _road_tile(photo: np.ndarray, roads: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (H,W,3): the photo tinted half-way to green, asphalt grey with fine noise on the roads."""
    x = 0.5 * photo + 0.5 * FIELD
    x[roads] = ASPHALT + rng.normal(0, 6, (int(roads.sum()), 3))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


README = """SYNTHETIC ROAD TILES -- NOT THE MASSACHUSETTS ROADS DATA SET.

Tiles made by lossnets (`lossnets data make-roads`, lossnets {version}) with seed {seed}, for tests and demos.
Aerial tiles: {size}x{size} crops of the photos that scikit-image ships, tinted green, with road networks
drawn over them as random polylines {width} px wide in asphalt grey. Masks: the same polylines, 0/255.
Layout ({layout}): {folders}; {counts}.
Scores on this set say nothing about road delineation. The file {marker} marks the set as synthetic.
"""


def make_roads(root: str | Path, *, n_train: int = 8, n_valid: int = 2, n_test: int = 2, size: int = 256,
               seed: int = 0, layout: str = "official") -> Path:
    """Write a small SYNTHETIC set of ``size`` x ``size`` tiles (at most 300, the smallest bundled photo) in the
    official layout (or the published code's, ``layout="published"``); deterministic for a seed."""
    from lossnets import __version__
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {tuple(LAYOUTS)}, got {layout!r}")
    root = Path(root)
    folders, sat_name, mask_name = LAYOUTS[layout]
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    for i, (split, n) in enumerate(counts.items()):
        rng = np.random.default_rng([seed, i])
        sat_dir, mask_dir = root / folders[split] / sat_name, root / folders[split] / mask_name
        sat_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for j, photo in enumerate(photo_patches(n, size, seed=seed + i)):
            roads = _road_network(size, rng)
            Image.fromarray(_road_tile(photo, roads, rng)).save(sat_dir / f"{split}_{j:04d}.tiff")
            Image.fromarray(roads.astype(np.uint8) * 255).save(mask_dir / f"{split}_{j:04d}.tif")
    info = {"synthetic": True, "generator": "lossnets data make-roads", "lossnets_version": __version__,
            "seed": seed, "size": size, "layout": layout, "tiles": counts, "road_width": ROAD_WIDTH}
    (root / SYNTHETIC_MARKER).write_text(json.dumps(info, indent=1) + "\n")
    (root / "README.txt").write_text(README.format(
        version=__version__, seed=seed, size=size, width=ROAD_WIDTH, layout=layout, marker=SYNTHETIC_MARKER,
        folders=", ".join(f"{folders[s]}/{{{sat_name},{mask_name}}}" for s in SPLITS),
        counts=", ".join(f"{n} {s} tiles" for s, n in counts.items())))
    return root
