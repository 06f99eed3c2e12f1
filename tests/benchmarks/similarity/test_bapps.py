"""The BAPPS loader (official layout, pairing, errors that name the file) and the made synthetic set."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lossnets.benchmarks.similarity.bapps import (BappsError, JND_SUBSETS, TWOAFC_SUBSETS, find_subsets,
                                       load_bapps, make_bapps)
from lossnets.benchmarks.data.photos import SYNTHETIC_MARKER
from lossnets.cli import main


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_bapps(tmp_path_factory.mktemp("made"), size=3, seed=1)


@pytest.fixture
def copy(made, tmp_path):
    dst = tmp_path / "bapps"
    shutil.copytree(made, dst)
    return dst


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "README.txt":
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_make_bapps_layout_deterministic_and_labelled(made, tmp_path):
    assert find_subsets(made) == [f"2afc/val/{s}" for s in TWOAFC_SUBSETS] + [f"jnd/val/{s}" for s in JND_SUBSETS]
    for d in ("ref", "p0", "p1"):
        assert len(list((made / "2afc/val/cnn" / d).glob("*.png"))) == 3
    judge = np.load(made / "2afc/val/cnn/judge/000000.npy")
    assert judge.shape == (1,) and 0 <= judge[0] <= 1
    assert "SYNTHETIC" in (made / "README.txt").read_text()
    assert (made / SYNTHETIC_MARKER).is_file()
    again = make_bapps(tmp_path / "again", size=3, seed=1)
    assert _digest(again) == _digest(made)
    other = make_bapps(tmp_path / "other", size=3, seed=2)
    assert _digest(other) != _digest(made)


def test_load(made):
    data = load_bapps(made)
    assert data.synthetic and data.label == "synthetic"
    assert data.images.dtype == torch.uint8 and tuple(data.images.shape[1:]) == (3, 64, 64)
    assert len(data.subsets) == 8
    cnn = data.subsets["2afc/val/cnn"]
    assert cnn.names == ["000000", "000001", "000002"] and cnn.target.dtype == np.float64
    im = np.array(Image.open(made / "2afc/val/cnn/p1/000002.png").convert("RGB"))
    assert torch.equal(data.images[cnn.index["p1"][2]], torch.from_numpy(im).permute(2, 0, 1))
    assert torch.equal(data.load_images([data.keys[5], data.keys[0]]), data.images[[5, 0]])


def test_resize_dedupe_and_official_label(copy):
    (copy / SYNTHETIC_MARKER).unlink()
    shutil.copy(copy / "2afc/val/cnn/ref/000000.png", copy / "2afc/val/cnn/p0/000000.png")  # a duplicate
    big = np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    Image.fromarray(big).save(copy / "jnd/val/cnn/p1/000001.png")
    data = load_bapps(copy)
    assert not data.synthetic and data.label == "bapps"
    cnn = data.subsets["2afc/val/cnn"]
    assert cnn.index["ref"][0] == cnn.index["p0"][0]
    n_files = 6 * 3 * 3 + 2 * 3 * 2
    assert len(data.images) < n_files
    expected = np.asarray(Image.fromarray(big).resize((64, 64), Image.BILINEAR))
    jnd = data.subsets["jnd/val/cnn"]
    assert torch.equal(data.images[jnd.index["p1"][1]], torch.from_numpy(expected).permute(2, 0, 1))


def test_dataset_subfolder_and_subset_choice(copy, tmp_path):
    outer = tmp_path / "outer"
    shutil.copytree(copy, outer / "dataset")  # where the official archives unpack
    assert list(load_bapps(outer, ["jnd"]).subsets) == ["jnd/val/traditional", "jnd/val/cnn"]
    assert list(load_bapps(copy, ["cnn"]).subsets) == ["2afc/val/cnn", "jnd/val/cnn"]
    assert list(load_bapps(copy, ["2afc/val/color", "jnd/traditional"]).subsets) == \
        ["2afc/val/color", "jnd/val/traditional"]
    with pytest.raises(BappsError, match="no subset 'nope'"):
        load_bapps(copy, ["nope"])


def test_error_missing_pair(copy):
    (copy / "2afc/val/deblur/p1/000001.png").unlink()
    with pytest.raises(BappsError, match=r"2afc/val/deblur/p1/000001\.png is missing"):
        load_bapps(copy)


def test_error_missing_judgment(copy):
    (copy / "jnd/val/cnn/same/000002.npy").unlink()
    with pytest.raises(BappsError, match=r"jnd/val/cnn/same/000002\.npy is missing"):
        load_bapps(copy)


def test_error_unreadable_image(copy):
    (copy / "2afc/val/color/ref/000000.png").write_bytes(b"not a png")
    with pytest.raises(BappsError, match=r"2afc/val/color/ref/000000\.png"):
        load_bapps(copy)


@pytest.mark.parametrize("value", [np.array([0.2, 0.4]), np.array([[0.5]]), np.array([1.5]), np.array(["a"])])
def test_error_bad_judgment(copy, value):
    np.save(copy / "2afc/val/superres/judge/000001.npy", value)
    with pytest.raises(BappsError, match=r"2afc/val/superres/judge/000001\.npy"):
        load_bapps(copy)


def test_error_no_data(tmp_path):
    with pytest.raises(BappsError, match="does not exist"):
        load_bapps(tmp_path / "absent")
    with pytest.raises(BappsError, match="holds no BAPPS subsets"):
        load_bapps(tmp_path)


def test_cli_make_bapps_and_errors(tmp_path, capsys):
    assert main(["data", "make-bapps", str(tmp_path / "d"), "--size", "1", "--seed", "4"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert len(load_bapps(tmp_path / "d").subsets["2afc/val/cnn"]) == 1
    assert main(["similarity", "--data", str(tmp_path / "empty"), "--archs", "alexnet", "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
