"""Super-resolution data: made folders, HR/LR making, bad input."""
import numpy as np
import pytest
import torch
from PIL import Image

from lossnets.benchmarks.data.images import ImageError, read_rgb
from lossnets.benchmarks.superres.data import gaussian_blur, load_sr_folder, load_test_folder, make_pair, sample_files
from lossnets.benchmarks.superres.made import make_sr


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_sr(tmp_path_factory.mktemp("sr"), n_train=6, n_val=2, test_sets={"set5": 2, "set14": 1}, size=32)


def test_make_sr_layout(made):
    assert len(list((made / "train").glob("*.png"))) == 6
    assert len(list((made / "val").glob("*.png"))) == 2
    assert sorted(p.name for p in (made / "test").iterdir()) == ["set14", "set5"]
    assert "scikit-image" in (made / "README.txt").read_text()


def test_make_sr_defaults_match_the_brief(tmp_path):
    root = make_sr(tmp_path, size=32)
    assert len(list((root / "train").iterdir())) == 32 and len(list((root / "val").iterdir())) == 4
    assert {p.name: len(list(p.iterdir())) for p in (root / "test").iterdir()} == {"set5": 5, "set14": 4, "bsd100": 3}


@pytest.mark.parametrize("protocol", ["paper", "standard"])
def test_load_folder_shapes(made, protocol):
    s = load_sr_folder(made / "train", 32, 4, protocol)
    assert s.hr.shape == (6, 3, 32, 32) and s.lr.shape == (6, 3, 8, 8)
    assert s.hr.dtype == torch.uint8 and s.lr.dtype == torch.uint8
    assert s.names == sorted(s.names)
    s8 = load_sr_folder(made / "train", 32, 8, protocol, n=3, seed=1)
    assert s8.lr.shape == (3, 3, 4, 4)


def test_protocols_blur_in_different_places(made):
    img = read_rgb(sorted((made / "train").iterdir())[0])
    hr_p, lr_p = make_pair(img, 32, 4, "paper")
    hr_s, lr_s = make_pair(img, 32, 4, "standard")
    assert torch.equal(hr_p, hr_s)
    assert lr_p.shape == lr_s.shape and not torch.equal(lr_p, lr_s)
    # the blur keeps the mean and smooths
    x = torch.rand(1, 3, 20, 20)
    b = gaussian_blur(x)
    assert b.mean().item() == pytest.approx(x.mean().item(), abs=0.02) and b.std() < x.std()


def test_sample_files_is_seeded_and_sorted(made):
    a = sample_files(made / "train", 3, seed=5)
    assert a == sample_files(made / "train", 3, seed=5) and a == sorted(a)
    assert len(sample_files(made / "train", 100)) == 6


def test_test_folder_protocols(made):
    paper = load_test_folder(made / "test" / "set5", 32, 4, "paper")
    assert [tuple(im.hr.shape) for im in paper] == [(3, 32, 32)] * 2
    std = load_test_folder(made / "test" / "set5", 32, 4, "standard")
    h, w = np.asarray(Image.open(sorted((made / "test" / "set5").iterdir())[0])).shape[:2]
    assert tuple(std[0].hr.shape) == (3, h - h % 4, w - w % 4)
    assert tuple(std[0].lr.shape) == (3, h // 4, w // 4)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no images"):
        load_sr_folder(tmp_path / "empty", 32, 4)
    with pytest.raises(ImageError, match="does not exist"):
        load_sr_folder(tmp_path / "missing", 32, 4)


def test_grayscale_and_rgba_are_converted(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 50), dtype=np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(rng.integers(0, 256, (40, 50, 4), dtype=np.uint8), "RGBA").save(tmp_path / "rgba.png")
    s = load_sr_folder(tmp_path, 32, 4)
    assert s.hr.shape == (2, 3, 32, 32)
    gray = s.hr[s.names.index("gray.png")]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_image_smaller_than_patch_names_the_file(tmp_path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(np.zeros((20, 60, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match=r"tiny\.png.*smaller than the 32x32 patch"):
        load_sr_folder(tmp_path, 32, 4)


def test_bad_options(made, tmp_path):
    with pytest.raises(ValueError, match="protocol"):
        load_sr_folder(made / "train", 32, 4, "johnson")
    with pytest.raises(ValueError, match="divisible"):
        load_sr_folder(made / "train", 30, 4)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="bad.png"):
        load_sr_folder(tmp_path, 32, 4)
