"""Road delineation metrics: pixel counts by hand, the relaxed metric against a brute-force search, counts that add
up, empty sets, and the scoring of folders."""
import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.morphology import skeletonize

from lossnets.benchmarks.segmentation.data import RoadsError
from lossnets.benchmarks.segmentation.metrics import METRICS, Counts, count, score_folders

pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(rng, shape=(28, 28), sigma=2.0) -> np.ndarray:
    """Random smooth maps in [0,1]: thresholded, they are blobs and bands whose skeletons branch."""
    x = gaussian_filter(rng.random(shape), sigma)
    return (x - x.min()) / (x.max() - x.min())


def _matched_by_search(points: np.ndarray, target: np.ndarray, tolerance: float) -> int:
    """Points with a target pixel within the tolerance, by exhaustive search over all pairs."""
    p, t = np.argwhere(points), np.argwhere(target)
    if len(p) == 0 or len(t) == 0:
        return 0
    d2 = ((p[:, None, :] - t[None, :, :]) ** 2).sum(-1)
    return int((d2.min(1) <= tolerance ** 2).sum())


def test_pixel_metrics_by_hand():
    pred = np.array([[0.9, 0.6, 0.2, 0.0],
                     [0.5, 0.31, 0.3, 0.0]])
    mask = np.array([[1, 0, 1, 0],
                     [1, 1, 0, 0]], dtype=np.uint8) * 255
    c = count(pred, mask, threshold=0.5, relaxed=False)
    assert (c.tp, c.fp, c.fn) == (1, 1, 3)  # 0.5 is not above the threshold 0.5
    s = c.scores()
    assert s["completeness"] == pytest.approx(1 / 4) and s["correctness"] == pytest.approx(1 / 2)
    assert s["quality"] == pytest.approx(1 / 5)
    c = count(pred, mask, threshold=0.3, relaxed=False)
    assert (c.tp, c.fp, c.fn) == (3, 1, 1)  # 0.31 is road at 0.3, 0.3 is not
    assert math.isnan(c.scores()["relaxed_quality"])  # not computed: no skeleton pixels counted


@pytest.mark.parametrize("tolerance", [0, 1, 1.5, 3])
def test_relaxed_metric_against_brute_force(tolerance):
    rng = np.random.default_rng(int(tolerance * 10))
    for _ in range(6):
        pred, mask = _blobs(rng), _blobs(rng) > 0.55
        c = count(pred, mask, threshold=0.5, tolerance=tolerance)
        pred_skeleton, mask_skeleton = skeletonize(pred > 0.5), skeletonize(mask)
        assert c.pred_skeleton == pred_skeleton.sum() > 0 and c.mask_skeleton == mask_skeleton.sum() > 0
        assert c.pred_skeleton_matched == _matched_by_search(pred_skeleton, mask_skeleton, tolerance)
        assert c.mask_skeleton_matched == _matched_by_search(mask_skeleton, pred_skeleton, tolerance)
        s = c.scores()
        corr, comp = c.pred_skeleton_matched / c.pred_skeleton, c.mask_skeleton_matched / c.mask_skeleton
        assert s["relaxed_correctness"] == pytest.approx(corr) and s["relaxed_completeness"] == pytest.approx(comp)
        if corr and comp:
            assert s["relaxed_quality"] == pytest.approx(comp * corr / (comp - comp * corr + corr))


def test_relaxed_tolerance_on_a_shifted_line():
    mask = np.zeros((20, 20), bool)
    mask[10, 2:18] = True
    pred = np.roll(mask, 2, axis=0).astype(float)
    assert count(pred, mask, tolerance=2).scores()["relaxed_quality"] == pytest.approx(1.0)
    far = count(pred, mask, tolerance=1.9).scores()
    assert far["relaxed_correctness"] == 0 and far["relaxed_quality"] == 0 and far["quality"] == 0


def test_counts_add_up_over_tiles():
    rng = np.random.default_rng(7)
    preds, masks = np.stack([_blobs(rng) for _ in range(3)]), np.stack([_blobs(rng) > 0.5 for _ in range(3)])
    tiles = [count(p, m) for p, m in zip(preds, masks)]
    whole = count(preds[:, None], masks[:, None])  # (N,1,H,W) as the benchmark holds them
    assert sum(tiles, Counts()) == whole == tiles[0] + tiles[1] + tiles[2]
    assert whole.scores()["quality"] == pytest.approx(whole.tp / (whole.tp + whole.fp + whole.fn))
    assert list(whole.scores()) == list(METRICS)


def test_empty_maps_give_nan_not_a_crash():
    empty = np.zeros((8, 8))
    assert all(math.isnan(v) for v in count(empty, empty).scores().values())
    road = np.zeros((8, 8))
    road[4, 1:7] = 1
    missed = count(empty, road).scores()
    assert missed["completeness"] == 0 and missed["quality"] == 0 and math.isnan(missed["correctness"])
    assert missed["relaxed_completeness"] == 0 and math.isnan(missed["relaxed_quality"])
    with pytest.raises(ValueError, match="one shape"):
        count(empty, road[:4])


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    maps = {}
    for stem in ("a", "b", "c"):
        maps[stem] = (_blobs(rng, (24, 30)), _blobs(rng, (24, 30)) > 0.5)
        Image.fromarray(maps[stem][1].astype(np.uint8) * 255).save(gt / f"{stem}.tif")
    Image.fromarray(np.rint(maps["a"][0] * 255).astype(np.uint8)).save(pred / "a.png")
    Image.fromarray(np.rint(maps["b"][0] * 255).astype(np.uint8)).save(pred / "b.tif")
    Image.fromarray(maps["c"][0].astype(np.float32), "F").save(pred / "c.tiff")
    return pred, gt, maps


def test_score_folders(folders):
    pred, gt, maps = folders
    df = score_folders(pred, gt, threshold=0.5, tolerance=2)
    assert list(df.columns) == ["dataset", "metric", "value", "n"]
    assert list(df["dataset"].unique()) == ["all", "a", "b", "c"] and set(df["metric"]) == set(METRICS)
    assert df[df["dataset"] == "all"]["n"].eq(3).all() and df[df["dataset"] != "all"]["n"].eq(1).all()
    assert df["value"].between(0, 1).all()
    u8 = {s: np.rint(p * 255) / 255 for s, (p, _) in maps.items()}  # what 8-bit files hold
    want = count(u8["a"], maps["a"][1], tolerance=2) + count(u8["b"], maps["b"][1], tolerance=2) + count(
        maps["c"][0].astype(np.float32), maps["c"][1], tolerance=2)
    got = df[df["dataset"] == "all"].set_index("metric")["value"]
    for metric, value in want.scores().items():
        assert got[metric] == pytest.approx(value)


def test_score_folders_bad_input(folders):
    pred, gt, _ = folders
    Image.fromarray(np.zeros((24, 30), np.uint8)).save(pred / "d.png")
    with pytest.raises(RoadsError, match=r"pred/d\.png has no partner d\.\* in .*gt"):
        score_folders(pred, gt)
    (pred / "d.png").unlink()
    (gt / "c.tif").rename(gt / "e.tif")
    with pytest.raises(RoadsError, match=r"c\.tiff has no partner"):
        score_folders(pred, gt)
    (gt / "e.tif").rename(gt / "c.tif")
    Image.fromarray(np.full((24, 30), 1.5, np.float32), "F").save(pred / "c.tiff")
    with pytest.raises(RoadsError, match=r"c\.tiff has values in \[1\.5, 1\.5\]; expected \[0,1\]"):
        score_folders(pred, gt)
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(pred / "c.tiff")
    with pytest.raises(RoadsError, match=r"size mismatch: prediction .*c\.tiff is 20x30, its mask .*c\.tif is 24x30"):
        score_folders(pred, gt)
    (pred / "c.tiff").write_bytes(b"not an image")
    with pytest.raises(RoadsError, match=r"cannot decode prediction .*c\.tiff"):
        score_folders(pred, gt)
