"""The BAPPS loader (official layout, val and train splits, pairing, errors that name the file) and the made
synthetic set."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lossnets.benchmarks.similarity.bapps import (BappsError, JND_SUBSETS, TRAIN_SUBSETS, TWOAFC_SUBSETS,
                                                  find_subsets, load_bapps, resolve_root, select_subsets,
                                                  shared_bapps)
from lossnets.benchmarks.similarity.made import make_bapps
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


def _digest(root, split=None):
    """Digest of the files under root (all but README.txt, or only those of one split)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if split is not None and p.relative_to(root).parts[1:2] != (split,):
            continue
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


def test_shared_bapps_decodes_once_and_again_after_a_change(copy):
    first = shared_bapps(copy)
    assert shared_bapps(copy) is first  # the next architecture's cells: not decoded again
    assert torch.equal(first.images, load_bapps(copy).images)
    (copy / "jnd/val/cnn/same/000002.npy").unlink()  # the set changed on disk: read again, and the error shows
    with pytest.raises(BappsError, match=r"jnd/val/cnn/same/000002\.npy is missing"):
        shared_bapps(copy)


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


TRAIN = [f"2afc/train/{s}" for s in TRAIN_SUBSETS]


def test_train_split_loads(made):
    assert TRAIN_SUBSETS == ("traditional", "cnn", "mix")
    assert find_subsets(made, "train") == TRAIN
    data = load_bapps(made, split="train")
    assert data.split == "train" and load_bapps(made, ["jnd"]).split == "val"
    assert data.synthetic and data.label == "synthetic" and data.info["train_size"] == 6  # default 2 * size
    assert list(data.subsets) == TRAIN
    for name, sub in data.subsets.items():
        assert sub.kind == "2afc" and len(sub) == 6 and sub.names[-1] == "000005"
        assert sub.target.dtype == np.float64 and ((sub.target >= 0) & (sub.target <= 1)).all()
        assert set(sub.index) == {"ref", "p0", "p1"}
    im = np.array(Image.open(made / "2afc/train/mix/p0/000004.png").convert("RGB"))
    mix = data.subsets["2afc/train/mix"]
    assert torch.equal(data.images[mix.index["p0"][4]], torch.from_numpy(im).permute(2, 0, 1))
    judge = np.load(made / "2afc/train/mix/judge/000004.npy")
    assert judge.shape == (1,) and mix.target[4] == judge[0]
    # other photo patches than the val subsets'
    val = load_bapps(made)
    val_refs = {val.keys[i] for s in val.subsets.values() for i in s.index["ref" if s.kind == "2afc" else "p0"]}
    train_refs = {data.keys[i] for s in data.subsets.values() for i in s.index["ref"]}
    assert len(train_refs) == 18 and not train_refs & val_refs
    readme = (made / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "2afc/train" in readme and "train_size 6" in readme


def test_val_unchanged_by_train_split(made, tmp_path):
    none = make_bapps(tmp_path / "none", size=3, seed=1, train_size=0)
    assert not (none / "2afc/train").exists() and find_subsets(none, "train") == []
    assert json.loads((none / SYNTHETIC_MARKER).read_text())["train_size"] == 0
    assert _digest(none, "val") == _digest(made, "val")  # byte-identical val/jnd images and judgments
    one = make_bapps(tmp_path / "one", size=3, seed=1, train_size=1)
    assert _digest(one, "val") == _digest(made, "val")
    assert [len(s) for s in load_bapps(one, split="train").subsets.values()] == [1, 1, 1]
    with pytest.raises(ValueError, match="train_size"):
        make_bapps(tmp_path / "bad", size=1, train_size=-1)


def test_train_split_missing_or_bad_split_is_clear_error(made, tmp_path):
    none = make_bapps(tmp_path / "none", size=2, seed=1, train_size=0)
    with pytest.raises(BappsError, match=rf"{none} holds no BAPPS subsets of the train split "
                                         r"\(expected 2afc/train/<subset>/ref,p0,p1,judge"):
        load_bapps(none, split="train")
    with pytest.raises(BappsError, match=rf"unknown BAPPS split 'test' for {made}; expected one of 'val', 'train'"):
        load_bapps(made, split="test")
    with pytest.raises(BappsError, match="unknown BAPPS split 'nope'"):
        find_subsets(made, "nope")


def test_train_only_root_and_dataset_subfolder(made, tmp_path):
    outer = tmp_path / "outer"
    shutil.copytree(made / "2afc/train", outer / "dataset/2afc/train")  # the twoafc_train archive alone
    assert resolve_root(outer) == outer / "dataset" == resolve_root(outer, "train")
    data = load_bapps(outer, ["mix"], split="train")
    assert data.root == outer / "dataset" and list(data.subsets) == ["2afc/train/mix"] and not data.synthetic
    with pytest.raises(BappsError, match=r"holds no BAPPS subsets of the val split .*"
                                         r"the train split holds 2afc/train/traditional.*pass split='train'"):
        load_bapps(outer)
    shutil.copytree(made / "jnd", outer / "jnd")  # val at the top, train under dataset/
    assert list(load_bapps(outer).subsets) == ["jnd/val/traditional", "jnd/val/cnn"]
    assert list(load_bapps(outer, split="train").subsets) == TRAIN


def test_train_subset_choice(made):
    pick = lambda wanted: list(load_bapps(made, wanted, split="train").subsets)  # noqa: E731
    assert pick(["mix"]) == ["2afc/train/mix"]
    assert pick(["cnn"]) == ["2afc/train/cnn"]
    assert pick(["2afc/mix", "2afc/train/traditional"]) == ["2afc/train/traditional", "2afc/train/mix"]
    assert pick(["2afc"]) == pick(["2afc/train"]) == pick(None) == TRAIN
    everything = find_subsets(made) + find_subsets(made, "train")
    assert select_subsets(everything, ["2afc/train"]) == TRAIN
    assert select_subsets(everything, ["mix", "jnd/cnn"]) == ["jnd/val/cnn", "2afc/train/mix"]
    with pytest.raises(BappsError, match=r"no subset 'mix'.*the train split holds 2afc/train/mix: pass split='train'"):
        load_bapps(made, ["mix"])


def test_train_error_missing_or_bad_judgment(copy):
    (copy / "2afc/train/mix/judge/000004.npy").unlink()
    with pytest.raises(BappsError, match=r"2afc/train/mix/judge/000004\.npy is missing"):
        load_bapps(copy, split="train")
    assert len(load_bapps(copy).subsets) == 8  # the val split does not read the train files
    np.save(copy / "2afc/train/cnn/judge/000001.npy", np.array([1.5]))
    with pytest.raises(BappsError, match=r"2afc/train/cnn/judge/000001\.npy is 1\.5"):
        load_bapps(copy, ["cnn"], split="train")
    (copy / "2afc/train/traditional/judge/000002.npy").write_bytes(b"junk")
    with pytest.raises(BappsError, match=r"cannot read judgment .*2afc/train/traditional/judge/000002\.npy"):
        load_bapps(copy, ["traditional"], split="train")
