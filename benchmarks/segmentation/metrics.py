"""Road delineation scores, one implementation for the benchmark and ``lossnets segmentation score``.

Pixel (the published code's): a pixel is road where the prediction exceeds the threshold, and in the mask
where it exceeds 0.5; completeness TP/(TP+FN), correctness TP/(TP+FP), quality TP/(TP+FP+FN).

Relaxed (Wiedemann et al. 1998, as the EPFL CVLab metric code): skeletons of the thresholded prediction and
of the mask (``skimage.morphology.skeletonize``); a prediction-skeleton pixel within ``tolerance`` px
(Euclidean, ``scipy.ndimage.distance_transform_edt``) of the mask skeleton is correct, a mask-skeleton pixel
within ``tolerance`` px of the prediction skeleton is complete; quality 1/(1/correctness + 1/completeness - 1).

Scores come from :class:`Counts`, which add up: a set's scores are those of its tiles' summed counts (each
tile once). A denominator of 0 gives NaN.
"""
from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from scipy.ndimage import distance_transform_edt
from skimage.morphology import skeletonize

from .data import RoadsError, pair_by_stem, read_mask

METRICS = ("completeness", "correctness", "quality", "relaxed_completeness", "relaxed_correctness", "relaxed_quality")


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def _relaxed_quality(correctness: float, completeness: float) -> float:
    if math.isnan(correctness) or math.isnan(completeness):
        return math.nan
    if correctness == 0 or completeness == 0:
        return 0.0
    return 1 / (1 / correctness + 1 / completeness - 1)


@dataclass(frozen=True)
class Counts:
    """Pixel and skeleton counts of one tile or many; ``a + b`` holds the counts of both."""
    tp: int = 0  # road pixels predicted as road
    fp: int = 0  # background pixels predicted as road
    fn: int = 0  # road pixels predicted as background
    pred_skeleton: int = 0  # pixels of the prediction's skeleton
    pred_skeleton_matched: int = 0  # ... within the tolerance of the mask's skeleton
    mask_skeleton: int = 0  # pixels of the mask's skeleton
    mask_skeleton_matched: int = 0  # ... within the tolerance of the prediction's skeleton

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other))))

    def scores(self) -> dict[str, float]:
        """The metrics of ``METRICS`` as fractions in [0,1] (NaN where a denominator is 0)."""
        correctness = _ratio(self.pred_skeleton_matched, self.pred_skeleton)
        completeness = _ratio(self.mask_skeleton_matched, self.mask_skeleton)
        return dict(zip(METRICS, (_ratio(self.tp, self.tp + self.fn), _ratio(self.tp, self.tp + self.fp),
                                  _ratio(self.tp, self.tp + self.fp + self.fn), completeness, correctness,
                                  _relaxed_quality(correctness, completeness))))


def _within(points: np.ndarray, target: np.ndarray, tolerance: float) -> int:
    """How many ``points`` pixels lie within ``tolerance`` px of a ``target`` pixel (both bool (H,W))."""
    if not points.any() or not target.any():
        return 0
    return int(np.count_nonzero(points & (distance_transform_edt(~target) <= tolerance)))


def _skeleton_counts(road: np.ndarray, truth: np.ndarray, tolerance: float) -> Counts:
    pred_skeleton, mask_skeleton = skeletonize(road), skeletonize(truth)
    return Counts(pred_skeleton=int(pred_skeleton.sum()), mask_skeleton=int(mask_skeleton.sum()),
                  pred_skeleton_matched=_within(pred_skeleton, mask_skeleton, tolerance),
                  mask_skeleton_matched=_within(mask_skeleton, pred_skeleton, tolerance))


def count(pred, mask, threshold: float = 0.5, tolerance: float = 3, relaxed: bool = True) -> Counts:
    """Counts of predicted road probabilities against masks, one tile (H,W) or many (..., H, W), as numpy
    arrays or CPU tensors; the skeleton counts stay 0 unless ``relaxed``."""
    pred, mask = np.asarray(pred), np.asarray(mask)
    if pred.shape != mask.shape or pred.ndim < 2:
        raise ValueError(f"prediction {pred.shape} and mask {mask.shape} must be maps of one shape")
    road, truth = pred > threshold, mask > 0.5
    pixels = Counts(tp=int(np.count_nonzero(road & truth)), fp=int(np.count_nonzero(road & ~truth)),
                    fn=int(np.count_nonzero(~road & truth)))
    if not relaxed:
        return pixels
    tiles = zip(road.reshape(-1, *road.shape[-2:]), truth.reshape(-1, *truth.shape[-2:]))
    return sum((_skeleton_counts(r, t, tolerance) for r, t in tiles), pixels)


def read_prediction(path: str | Path) -> np.ndarray:
    """A predicted road map as float64 (H,W) in [0,1]: 8-bit files (colour ones converted to grey) scaled by
    1/255, float TIFF as stored."""
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im if mode == "F" else im.convert("L"), dtype=np.float64)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise RoadsError(f"cannot decode prediction {path}: {e}") from e
    if mode.startswith("I"):
        raise RoadsError(f"prediction {path} is an integer image of mode {mode}; expected 8-bit or float in [0,1]")
    if mode != "F":
        return arr / 255
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise RoadsError(f"float prediction {path} has values in [{arr.min()}, {arr.max()}]; expected [0,1]")
    return arr


def score_folders(pred_dir: str | Path, gt_dir: str | Path, threshold: float = 0.5,
                  tolerance: float = 3) -> pd.DataFrame:
    """Predicted maps matched by stem to masks: tidy rows ``dataset, metric, value, n`` for ``dataset=all`` (the
    folder's summed counts, n = tiles) and per file stem (n = 1)."""
    per_tile = {}
    for stem, pred_path, mask_path in pair_by_stem(pred_dir, gt_dir):
        pred, mask = read_prediction(pred_path), read_mask(mask_path).numpy()
        if pred.shape != mask.shape:
            raise RoadsError(f"size mismatch: prediction {pred_path} is {pred.shape[0]}x{pred.shape[1]}, "
                             f"its mask {mask_path} is {mask.shape[0]}x{mask.shape[1]}")
        per_tile[stem] = count(pred, mask, threshold, tolerance)
    sets = [("all", sum(per_tile.values(), Counts()), len(per_tile)), *((s, c, 1) for s, c in per_tile.items())]
    return pd.DataFrame([{"dataset": name, "metric": metric, "value": value, "n": n}
                         for name, counts, n in sets for metric, value in counts.scores().items()],
                        columns=["dataset", "metric", "value", "n"])
