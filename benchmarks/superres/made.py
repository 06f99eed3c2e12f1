"""Small made folders for the super-resolution benchmark, in the layout it reads (``DIR/train``, ``DIR/val``,
``DIR/test/{set5,set14,bsd100}``): crops of scikit-image's photos, for the demo and the tests, never for results."""
from __future__ import annotations

import os
from pathlib import Path

from ..data.images import save_png
from ..data.photos import photo_patches

TEST_SETS = {"set5": 5, "set14": 4, "bsd100": 3}  # made test sets: name -> number of images


README = """Super-resolution demo data made by lossnets (`lossnets data make-sr`).

These are NOT the benchmark's datasets (COCO train2014/val2014, Set5, Set14, BSD100): every image here
is a random crop of the photos that scikit-image ships (skimage.data: astronaut, coffee, chelsea, rocket,
immunohistochemistry, hubble_deep_field, retina), made for the demo and the tests. Results on them say
nothing about the published figures.

train/  {n_train} images of {tw}x{th}
val/    {n_val} images of {tw}x{th}
test/   {tests}
"""


def make_sr(root: str | os.PathLike, *, n_train: int = 32, n_val: int = 4, test_sets: dict[str, int] | None = None,
            size: int = 288, seed: int = 0) -> Path:
    """Write ``root/train``, ``root/val``, ``root/test/{set5,set14,bsd100}`` and ``root/README.txt`` made from
    scikit-image's photos. Training and validation images are ``size`` x ``4/3 size`` (at least ``size`` on
    the shorter side); test images have sizes that are not multiples of 8 (mod-cropping is exercised)."""
    root = Path(root)
    test_sets = dict(TEST_SETS if test_sets is None else test_sets)
    if size > 300:
        raise ValueError(f"size {size} is larger than the smallest bundled photo (300 pixels)")
    tw = min(451, size * 4 // 3)
    for split, n, s in (("train", n_train, seed), ("val", n_val, seed + 1)):
        for i, a in enumerate(photo_patches(n, (size, tw), seed=s)):
            save_png(a, root / split / f"{split}_{i:05d}.png")
    desc = []
    for j, (name, n) in enumerate(test_sets.items()):
        hw = (min(300, size + 5 + 2 * j), min(451, size + size // 3 + 3 + 2 * j))
        for i, a in enumerate(photo_patches(n, hw, seed=seed + 2 + j)):
            save_png(a, root / "test" / name / f"{name}_{i:03d}.png")
        desc.append(f"{name}/ ({n} images of {hw[1]}x{hw[0]})")
    (root / "README.txt").write_text(README.format(n_train=n_train, n_val=n_val, tw=tw, th=size, tests=", ".join(desc)))
    return root
