"""BAPPS (Zhang et al. 2018) in its official layout: the loader (made.py writes a small SYNTHETIC stand-in).

Layout read, split ``val`` (the official archives ``twoafc_val`` and ``jnd``)::

    DIR/2afc/val/<subset>/{ref,p0,p1}/<name>.png   DIR/2afc/val/<subset>/judge/<name>.npy
    DIR/jnd/val/<subset>/{p0,p1}/<name>.png        DIR/jnd/val/<subset>/same/<name>.npy

and split ``train`` (the archive ``twoafc_train``: traditional, cnn and mix, 56.6k / 38.1k / 56.6k
triplets, on which the LPIPS "lin" weights are trained)::

    DIR/2afc/train/<subset>/{ref,p0,p1}/<name>.png DIR/2afc/train/<subset>/judge/<name>.npy

DIR may also be the folder above ``dataset/``, where the official archives unpack. Files are paired
by name. ``judge`` is the fraction of people who found p1 closer to ref, ``same`` the fraction who
found p0 and p1 identical: float arrays of shape (1,) in [0, 1].

Images are decoded once, resized to 64x64 with PIL bilinear and kept as uint8; identical images
(by content) are stored once, so the features of each are computed once.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lossnets.errors import LossnetsError

from ..data.images import ImageError, list_images, read_rgb
from ..data.photos import SYNTHETIC_MARKER

SIZE = 64
TWOAFC_SUBSETS = ("traditional", "cnn", "superres", "deblur", "color", "frameinterp")
JND_SUBSETS = ("traditional", "cnn")
TRAIN_SUBSETS = ("traditional", "cnn", "mix")  # 2afc/train/<subset>, in the official order
SPLITS = ("val", "train")
SPLIT_KINDS = {"val": ("2afc", "jnd"), "train": ("2afc",)}  # the kinds each split has
_EXPECTED = {"val": "2afc/val/<subset>/ref,p0,p1,judge or jnd/val/<subset>/p0,p1,same",
             "train": "2afc/train/<subset>/ref,p0,p1,judge, e.g. from the twoafc_train archive"}
KINDS = {"2afc": (("ref", "p0", "p1"), "judge"), "jnd": (("p0", "p1"), "same")}


class BappsError(LossnetsError, ValueError):
    """A BAPPS folder that cannot be used; the message names the file."""


@dataclass
class Subset:
    """One subset: per item the indices of its images in ``BAPPS.images`` and the human judgment."""
    kind: str  # "2afc" or "jnd"
    name: str  # e.g. "2afc/val/cnn", "2afc/train/mix"
    names: list[str]  # item file stems, sorted
    index: dict[str, np.ndarray]  # "ref"/"p0"/"p1" -> int64 (n,) into BAPPS.images
    target: np.ndarray  # float64 (n,): judge (2afc) or same (jnd)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class BAPPS:
    root: Path
    subsets: dict[str, Subset]  # by name, 2afc first, in the official order
    images: torch.Tensor  # uint8 (U,3,64,64), every distinct image once
    keys: list[str]  # content digest of each image (cache item ids)
    synthetic: bool = False
    info: dict = field(default_factory=dict)  # contents of the synthetic marker
    split: str = "val"  # "val" or "train": which split the subsets come from

    @property
    def label(self) -> str:
        """``synthetic`` for made data (judgments are not human), ``bapps`` for the official data."""
        return "synthetic" if self.synthetic else "bapps"

    def of_kind(self, kind: str) -> list[Subset]:
        return [s for s in self.subsets.values() if s.kind == kind]

    def load_images(self, keys) -> torch.Tensor:
        """uint8 (n,3,64,64) images by content key (the ``load_images`` of the feature cache)."""
        pos = self._positions
        return self.images[torch.as_tensor([pos[k] for k in keys], dtype=torch.long)]

    @property
    def _positions(self) -> dict[str, int]:
        if getattr(self, "_pos", None) is None:
            self._pos = {k: i for i, k in enumerate(self.keys)}
        return self._pos


def _check_split(split, root) -> None:
    if split not in SPLITS:
        raise BappsError(f"unknown BAPPS split {split!r} for {root}; expected one of "
                         f"{', '.join(repr(s) for s in SPLITS)} ({'; '.join(_EXPECTED[s] for s in SPLITS)})")


def _order(kind: str, name: str, split: str = "val") -> tuple:
    official = TRAIN_SUBSETS if split == "train" else TWOAFC_SUBSETS if kind == "2afc" else JND_SUBSETS
    return (official.index(name) if name in official else len(official), name)


def find_subsets(root: str | Path, split: str = "val") -> list[str]:
    """Names of the subsets of one split present under root: ``2afc/val/<subset>`` then ``jnd/val/<subset>``
    (split ``val``) or ``2afc/train/<subset>`` (split ``train``), official subsets first in their order."""
    root = Path(root)
    _check_split(split, root)
    out = []
    for kind in SPLIT_KINDS[split]:
        base = root / kind / split
        if base.is_dir():
            names = sorted((p.name for p in base.iterdir() if p.is_dir()), key=lambda n: _order(kind, n, split))
            out += [f"{kind}/{split}/{n}" for n in names]
    return out


def resolve_root(root: str | Path, split: str | None = None) -> Path:
    """root itself, or root/dataset (where the official archives unpack) if only that holds the data.

    With ``split``, the folder holding that split wins; otherwise (or if neither holds it) any split counts.
    """
    root = Path(root)
    if not root.is_dir():
        raise BappsError(f"BAPPS folder {root} does not exist")
    tries = [SPLITS]
    if split is not None:
        _check_split(split, root)
        tries.insert(0, (split,))
    for splits in tries:
        for folder in (root, root / "dataset"):
            if any(find_subsets(folder, s) for s in splits):
                return folder
    return root


def select_subsets(available: list[str], wanted=None) -> list[str]:
    """Filter subset names: full names (``2afc/val/cnn``, ``2afc/train/mix``), a kind (``2afc``, ``jnd``),
    ``kind/split`` (``2afc/train``), ``kind/subset`` (``jnd/cnn``) or a bare subset name (``cnn``, in every
    kind that has it)."""
    if not wanted:
        return list(available)
    chosen = []
    for w in wanted:
        w = w.strip("/")
        hits = [s for s in available
                if w == s or w == s.split("/")[0] or w == s.split("/")[-1]
                or w == f"{s.split('/')[0]}/{s.split('/')[-1]}" or w == s.rsplit("/", 1)[0]]
        if not hits:
            raise BappsError(f"no subset {w!r}; found: {', '.join(available) or 'none'}")
        chosen += [h for h in hits if h not in chosen]
    return [s for s in available if s in chosen]


def _read_judgment(path: Path) -> float:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported by name
        raise BappsError(f"cannot read judgment {path}: {e}") from e
    if arr.shape not in ((1,), ()) or not np.issubdtype(arr.dtype, np.number):
        raise BappsError(f"judgment {path} has shape {arr.shape} dtype {arr.dtype}; expected a float array of shape (1,)")
    v = float(arr.reshape(-1)[0])
    if not (0.0 <= v <= 1.0):
        raise BappsError(f"judgment {path} is {v}; expected a value in [0, 1]")
    return v


def _pair_files(folder: Path, kind: str) -> tuple[list[str], dict[str, list[Path]], list[Path]]:
    """Stems present in every folder of a subset; an error naming the first unpaired file."""
    image_dirs, target_dir = KINDS[kind]
    found: dict[str, dict[str, Path]] = {}
    for d in image_dirs:
        try:
            found[d] = {p.stem: p for p in list_images(folder / d)}
        except ImageError as e:
            raise BappsError(str(e)) from None
    tdir = folder / target_dir
    if not tdir.is_dir():
        raise BappsError(f"judgment folder {tdir} does not exist")
    found[target_dir] = {p.stem: p for p in sorted(tdir.glob("*.npy"))}
    all_stems = sorted(set().union(*found.values()))
    for d, files in found.items():
        missing = [s for s in all_stems if s not in files]
        if missing:
            other = next(o for o in found if missing[0] in found[o])
            suffix = ".npy" if d == target_dir else found[other][missing[0]].suffix
            raise BappsError(f"{folder / d / (missing[0] + suffix)} is missing (its pair "
                             f"{found[other][missing[0]]} exists); {len(missing)} file(s) unpaired in {folder / d}")
    return all_stems, {d: [found[d][s] for s in all_stems] for d in image_dirs}, [found[target_dir][s] for s in all_stems]


def _other_splits_hint(root: Path, split: str, wanted=None) -> str:
    """``; the train split holds ...: pass split='train'`` when another split has what was asked for, else ''."""
    for other in SPLITS:
        if other == split:
            continue
        found = find_subsets(root, other)
        if wanted:
            try:
                found = select_subsets(found, wanted)
            except BappsError:
                found = []
        if found:
            return f"; the {other} split holds {', '.join(found)}: pass split={other!r}"
    return ""


_SHARED: dict[tuple, BAPPS] = {}


def shared_bapps(root: str | Path, subsets=None, *, split: str = "val", progress: bool = False) -> BAPPS:
    """:func:`load_bapps`, decoded once per process and split (the last set of each split is kept): the cells of
    a grid run, one group per architecture, share it instead of decoding the set again for every network. A file
    added, removed or written since (the files' count and latest mtime) reads the set again."""
    folder = resolve_root(root, split).resolve()
    stamps = [p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()]
    key = (str(folder), split, tuple(subsets) if subsets else None, len(stamps), max(stamps, default=0))
    if key not in _SHARED:
        for old in [k for k in _SHARED if k[1] == split]:
            del _SHARED[old]
        _SHARED[key] = load_bapps(root, subsets, split=split, progress=progress)
    return _SHARED[key]


def load_bapps(root: str | Path, subsets=None, *, split: str = "val", size: int = SIZE,
               workers: int | None = None, progress: bool = False) -> BAPPS:
    """Load the BAPPS subsets of ``split`` (``val``: 2afc/val/* and jnd/val/*; ``train``: 2afc/train/*)
    found under root, or those of them chosen by ``subsets`` (see :func:`select_subsets`)."""
    _check_split(split, root)
    root = resolve_root(root, split)
    available = find_subsets(root, split)
    if not available:
        raise BappsError(f"{root} holds no BAPPS subsets of the {split} split (expected {_EXPECTED[split]})"
                         + _other_splits_hint(root, split))
    try:
        names = select_subsets(available, subsets)
    except BappsError as e:
        raise BappsError(str(e) + _other_splits_hint(root, split, subsets)) from None
    plan = []  # (subset name, kind, stems, {dir: paths}, target paths)
    for name in names:
        kind = name.split("/")[0]
        stems, images, targets = _pair_files(root / name, kind)
        plan.append((name, kind, stems, images, targets))

    paths = [p for *_, images, _ in plan for d in images for p in images[d]]
    workers = workers or min(16, (os.cpu_count() or 1) + 2)
    decode = lambda p: read_rgb(p, size, Image.BILINEAR)  # noqa: E731
    with ThreadPoolExecutor(workers) as pool:
        it = pool.map(decode, paths, chunksize=64)
        if progress:
            from tqdm.auto import tqdm
            it = tqdm(it, total=len(paths), desc="decoding BAPPS", unit="img")
        try:
            decoded = list(it)
        except ImageError as e:
            raise BappsError(str(e)) from None

    keys: list[str] = []
    store: list[torch.Tensor] = []
    pos: dict[str, int] = {}
    flat_index = []
    for t in decoded:
        k = hashlib.blake2b(t.numpy().tobytes(), digest_size=16).hexdigest()
        if k not in pos:
            pos[k] = len(keys)
            keys.append(k)
            store.append(t)
        flat_index.append(pos[k])
    flat_index = np.asarray(flat_index, dtype=np.int64)

    out: dict[str, Subset] = {}
    at = 0
    for name, kind, stems, images, targets in plan:
        index = {}
        for d in images:
            index[d] = flat_index[at:at + len(stems)]
            at += len(stems)
        target = np.array([_read_judgment(p) for p in targets], dtype=np.float64)
        out[name] = Subset(kind, name, stems, index, target)

    marker = root / SYNTHETIC_MARKER
    info = json.loads(marker.read_text()) if marker.is_file() else {}
    images = torch.stack(store) if store else torch.empty(0, 3, size, size, dtype=torch.uint8)
    return BAPPS(root, out, images, keys, synthetic=marker.is_file(), info=info, split=split)
