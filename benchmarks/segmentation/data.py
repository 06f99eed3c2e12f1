"""Massachusetts Roads (Mnih 2013, the data of Mosinska et al. 2018): tiles decoded once into uint8 tensors,
and training crops (made.py writes a small SYNTHETIC stand-in).

Layouts read (aerial tile and road mask paired by file stem)::

    DIR/{train,valid,test}/{sat,map}/      official: aerial NAME.tiff in sat, mask NAME.tif in map
    DIR/{train,val,test}/{input,output}/   the published benchmark code's

Masks are binarised at >127 (the official ones are 0/255). A split is kept at its native size, or each
tile is resized whole to ``size`` x ``size`` (the ``paper`` protocol's validation and test tiles): the
aerial image with PIL bilinear, the mask with PIL bilinear (antialiased: an area average when shrinking)
then thresholded at 0.5, as the published code's bilinear resize of the mask and its ``mask > 0.5``.

Training crops: :func:`random_crops` draws fresh crops with a horizontal flip from a ``torch.Generator``
(the published code: one random crop per tile and epoch); :func:`fixed_crops` makes a seeded bank of
crops per tile whose ids ``tile:y:x:flip`` key the feature cache.
"""
from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lossnets.errors import LossnetsError

from ..data.images import ImageError, list_images, read_rgb
from ..data.photos import SYNTHETIC_MARKER

SPLITS = ("train", "valid", "test")
LAYOUTS = {  # name: (folder of each split, aerial folder, mask folder)
    "official": ({"train": "train", "valid": "valid", "test": "test"}, "sat", "map"),
    "published": ({"train": "train", "valid": "val", "test": "test"}, "input", "output"),
}


class RoadsError(LossnetsError, ValueError):
    """A road data folder or file that cannot be used; the message names it."""


@dataclass
class RoadTiles:
    """The tiles of one split by file stem: ``sat`` uint8 (N,3,H,W), ``mask`` bool (N,1,H,W), road = True."""
    names: list[str]
    sat: torch.Tensor
    mask: torch.Tensor
    folder: str
    synthetic: bool = False  # made by make_roads (a SYNTHETIC.json marker in the data folder)

    def __len__(self) -> int:
        return len(self.names)


def split_folders(root: str | Path, split: str) -> tuple[Path, Path]:
    """(aerial folder, mask folder) of a split, in whichever of the two layouts root holds."""
    if split not in SPLITS:
        raise RoadsError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    tried = []
    for folders, sat, mask in LAYOUTS.values():
        folder = root / folders[split]
        if (folder / sat).is_dir() or (folder / mask).is_dir():
            return folder / sat, folder / mask
        tried.append(f"{folder}/{{{sat},{mask}}}")
    raise RoadsError(f"no {split} split under {root}: expected {' or '.join(tried)}")


def pair_by_stem(first: str | Path, second: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, file in first, file in second) for the image files of two folders, sorted by stem; an error
    names the first file without a partner, or two files of one folder that share a stem."""
    found = []
    for folder in (first, second):
        try:
            files = list_images(folder)
        except ImageError as e:
            raise RoadsError(str(e)) from None
        by_stem: dict[str, Path] = {}
        for p in files:
            if p.stem in by_stem:
                raise RoadsError(f"{by_stem[p.stem]} and {p} share the stem {p.stem!r}; keep one of them")
            by_stem[p.stem] = p
        found.append(by_stem)
    a, b = found
    for have, other, folder in ((a, b, Path(second)), (b, a, Path(first))):
        unpaired = sorted(set(have) - set(other))
        if unpaired:
            raise RoadsError(f"{have[unpaired[0]]} has no partner {unpaired[0]}.* in {folder} "
                             f"({len(unpaired)} file(s) unpaired)")
    return [(stem, a[stem], b[stem]) for stem in sorted(a)]


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file's header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise RoadsError(f"cannot read tile {path}: {e}") from e
    return h, w


def _read(path: str | Path, size: int | None) -> torch.Tensor:
    """uint8 (3,H,W), optionally resized whole with PIL bilinear; a file that cannot be decoded is named."""
    try:
        return read_rgb(path, size, Image.BILINEAR)
    except ImageError as e:
        raise RoadsError(str(e)) from None


def read_mask(path: str | Path, size: int | None = None) -> torch.Tensor:
    """A road mask as bool (H,W): grey level >127, after an optional whole-tile resize (module docstring)."""
    return _read(path, size)[0] > 127


def load_split(root: str | Path, split: str, size: int | None = None, *, workers: int | None = None) -> RoadTiles:
    """Decode one split (``train``, ``valid`` or ``test``) once: native tiles, which must share one size, or
    each resized whole to ``size`` x ``size``. An aerial tile and its mask must have the same size."""
    sat_dir, mask_dir = split_folders(root, split)
    pairs = pair_by_stem(sat_dir, mask_dir)
    shape = None
    for _, sat_path, mask_path in pairs:
        hw, mask_hw = _header_size(sat_path), _header_size(mask_path)
        if hw != mask_hw:
            raise RoadsError(f"size mismatch: tile {sat_path} is {hw[0]}x{hw[1]}, its mask {mask_path} is "
                             f"{mask_hw[0]}x{mask_hw[1]}")
        shape = shape or hw
        if size is None and hw != shape:
            raise RoadsError(f"tile {sat_path} is {hw[0]}x{hw[1]}, the split's first tile {shape[0]}x{shape[1]}: "
                             "native tiles of a split must share one size (or resize them with size=)")
    h, w = (size, size) if size is not None else shape
    sat = torch.empty(len(pairs), 3, h, w, dtype=torch.uint8)
    mask = torch.empty(len(pairs), 1, h, w, dtype=torch.bool)

    def decode(i: int) -> None:
        _, sat_path, mask_path = pairs[i]
        sat[i] = _read(sat_path, size)
        mask[i, 0] = read_mask(mask_path, size)

    with ThreadPoolExecutor(workers or min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(decode, range(len(pairs))))
    return RoadTiles([stem for stem, *_ in pairs], sat, mask, str(sat_dir.parent),
                     synthetic=(Path(root) / SYNTHETIC_MARKER).is_file())


# ----------------------------------------------------------------------------------------- crops


def parse_crops(spec: str) -> int | None:
    """The ``--crops`` option: None for ``random``, N for ``fixed:N``."""
    if spec == "random":
        return None
    kind, _, n = spec.partition(":")
    if kind == "fixed" and n.isdigit() and int(n) > 0:
        return int(n)
    raise ValueError(f"--crops must be 'random' or 'fixed:N' with N >= 1, got {spec!r}")


def _crop_room(tiles: RoadTiles, size: int) -> tuple[int, int]:
    """How many crop positions fit along each side of the tiles."""
    h, w = tiles.sat.shape[-2:]
    if not 0 < size <= min(h, w):
        raise ValueError(f"crop size {size} does not fit the {h}x{w} tiles of {tiles.folder}")
    return h - size + 1, w - size + 1


def _cut(tiles: RoadTiles, where: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The crops at rows (tile, y, x, flip) of ``where``: uint8 (B,3,size,size) aerial, bool (B,1,size,size) mask."""
    sat, mask = [], []
    for t, y, x, flip in where.tolist():
        s, m = tiles.sat[t, :, y:y + size, x:x + size], tiles.mask[t, :, y:y + size, x:x + size]
        sat.append(s.flip(-1) if flip else s)
        mask.append(m.flip(-1) if flip else m)
    return torch.stack(sat), torch.stack(mask)


def random_crops(tiles: RoadTiles, index, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random ``size`` x ``size`` crop of each tile in ``index``, flipped horizontally with probability 1/2,
    drawn from ``generator``. An epoch as the published code:
    ``for index in torch.randperm(len(tiles), generator=g).split(batch)``."""
    index = torch.as_tensor(index, dtype=torch.long).reshape(-1)
    ny, nx = _crop_room(tiles, size)
    n = len(index)
    where = torch.stack([index, torch.randint(ny, (n,), generator=generator),
                         torch.randint(nx, (n,), generator=generator), torch.randint(2, (n,), generator=generator)], 1)
    return _cut(tiles, where, size)


@dataclass
class CropBank:
    """A fixed set of crops: rows (tile index, y, x, flip) of ``where``, and a stable id ``tile:y:x:flip`` each."""
    tiles: RoadTiles
    size: int
    where: torch.Tensor  # int64 (M,4)
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def crops(self, positions) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 aerial and bool mask crops at ``positions`` (indices into the bank)."""
        return _cut(self.tiles, self.where[torch.as_tensor(positions, dtype=torch.long).reshape(-1)], self.size)


def fixed_crops(tiles: RoadTiles, per_tile: int, size: int, seed: int = 0) -> CropBank:
    """``per_tile`` distinct crops (position and horizontal flip) of each tile, drawn from ``seed`` and the tile's
    name: a tile's crops do not depend on which other tiles are loaded."""
    ny, nx = _crop_room(tiles, size)
    if per_tile > 2 * ny * nx:
        raise ValueError(f"{per_tile} distinct {size}x{size} crops per tile do not fit tiles of "
                         f"{tiles.sat.shape[-2]}x{tiles.sat.shape[-1]}")
    rows, ids = [], []
    for t, name in enumerate(tiles.names):
        picks = np.random.default_rng([seed, zlib.crc32(name.encode())]).choice(2 * ny * nx, per_tile, replace=False)
        for p in picks.tolist():
            y, x, flip = p // (2 * nx), p // 2 % nx, p % 2
            rows.append((t, y, x, flip))
            ids.append(f"{name}:{y}:{x}:{flip}")
    return CropBank(tiles, size, torch.tensor(rows, dtype=torch.long).reshape(-1, 4), ids)
