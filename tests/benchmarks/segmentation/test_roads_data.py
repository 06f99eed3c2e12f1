"""Massachusetts Roads data: the made set read back in both layouts, resizing, bad input, training crops."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lossnets.benchmarks.segmentation.data import RoadsError, fixed_crops, load_split, parse_crops, random_crops
from lossnets.benchmarks.segmentation.made import make_roads
from lossnets.benchmarks.data.photos import SYNTHETIC_MARKER

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 40


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_roads(tmp_path_factory.mktemp("roads"), n_train=3, n_valid=1, n_test=2, size=SIZE, seed=1)


@pytest.fixture
def copy(made, tmp_path):
    return shutil.copytree(made, tmp_path / "roads")


@pytest.fixture(scope="module")
def train(made):
    return load_split(made, "train")


@pytest.mark.parametrize("layout", ["official", "published"])
def test_made_set_reads_back_in_both_layouts(tmp_path, layout):
    root = make_roads(tmp_path, n_train=2, n_valid=1, n_test=1, size=SIZE, layout=layout)
    sat_dir, mask_dir = ("valid/sat", "valid/map") if layout == "official" else ("val/input", "val/output")
    assert sorted(p.name for p in (root / sat_dir).iterdir()) == ["valid_0000.tiff"]
    assert sorted(p.name for p in (root / mask_dir).iterdir()) == ["valid_0000.tif"]
    for split, n in (("train", 2), ("valid", 1), ("test", 1)):
        tiles = load_split(root, split)
        assert tiles.names == [f"{split}_{i:04d}" for i in range(n)] and tiles.synthetic
        assert tiles.sat.shape == (n, 3, SIZE, SIZE) and tiles.sat.dtype == torch.uint8
        assert tiles.mask.shape == (n, 1, SIZE, SIZE) and tiles.mask.dtype == torch.bool
    file_mask = np.asarray(Image.open(root / mask_dir / "valid_0000.tif"))
    assert set(np.unique(file_mask)) == {0, 255}
    tiles = load_split(root, "valid")
    assert np.array_equal(tiles.mask[0, 0].numpy(), file_mask > 127)
    file_sat = np.asarray(Image.open(root / sat_dir / "valid_0000.tiff"))
    assert np.array_equal(tiles.sat[0].permute(1, 2, 0).numpy(), file_sat)


def test_made_set_is_marked_synthetic_deterministic_and_learnable(made, train, tmp_path):
    assert json.loads((made / SYNTHETIC_MARKER).read_text())["synthetic"] is True
    readme = (made / "README.txt").read_text()
    assert readme.startswith("SYNTHETIC") and "made by lossnets" in readme
    again = make_roads(tmp_path, n_train=3, n_valid=1, n_test=2, size=SIZE, seed=1)
    assert torch.equal(load_split(again, "train").sat, train.sat)
    assert 0.02 < train.mask.float().mean() < 0.7
    spread = train.sat.float().std(1)  # across the colour channels, per pixel: roads are grey
    road = train.mask[:, 0]
    assert spread[road].mean() < 0.5 * spread[~road].mean()


def test_resized_split(made):
    tiles = load_split(made, "test", size=24)
    assert tiles.sat.shape == (2, 3, 24, 24) and tiles.mask.shape == (2, 1, 24, 24)
    mask = Image.open(made / "test" / "map" / "test_0001.tif").convert("RGB").resize((24, 24), Image.BILINEAR)
    assert np.array_equal(tiles.mask[1, 0].numpy(), np.asarray(mask)[..., 0] > 127)  # area-like average, then 0.5


def test_missing_split(made, copy):
    shutil.rmtree(copy / "test")
    with pytest.raises(RoadsError, match=r"no test split under .*test/\{sat,map\} or .*test/\{input,output\}"):
        load_split(copy, "test")
    with pytest.raises(RoadsError, match="split must be one of"):
        load_split(made, "val")


def test_unpaired_tile_names_the_file(copy):
    (copy / "train" / "map" / "train_0001.tif").unlink()
    with pytest.raises(RoadsError, match=r"train/sat/train_0001\.tiff has no partner train_0001\.\* in .*train/map"):
        load_split(copy, "train")


def test_size_mismatch_names_both_files(copy):
    Image.fromarray(np.zeros((SIZE, SIZE + 2), np.uint8)).save(copy / "train" / "map" / "train_0002.tif")
    with pytest.raises(RoadsError, match=r"size mismatch: tile .*train_0002\.tiff is 40x40, "
                                         r"its mask .*train_0002\.tif is 40x42"):
        load_split(copy, "train")


def test_native_tiles_of_one_split_share_a_size(copy):
    for folder, name in (("sat", "train_0000.tiff"), ("map", "train_0000.tif")):
        Image.fromarray(np.zeros((SIZE + 4, SIZE), np.uint8)).save(copy / "train" / folder / name)
    with pytest.raises(RoadsError, match="share one size"):
        load_split(copy, "train")
    assert load_split(copy, "train", size=16).sat.shape == (3, 3, 16, 16)


def test_empty_mask_folder(copy):
    for p in (copy / "valid" / "map").iterdir():
        p.unlink()
    with pytest.raises(RoadsError, match=r"valid/map holds no images"):
        load_split(copy, "valid")


def test_non_image_file(copy):
    (copy / "test" / "sat" / "notes.txt").write_text("ignored: not an image suffix")
    assert len(load_split(copy, "test")) == 2
    mask = copy / "test" / "map" / "test_0001.tif"
    mask.write_bytes(mask.read_bytes()[:-200])  # a sound header, pixels cut short
    with pytest.raises(RoadsError, match=r"cannot decode image .*test_0001\.tif"):
        load_split(copy, "test")
    (copy / "test" / "sat" / "test_0000.tiff").write_bytes(b"not a tiff")
    with pytest.raises(RoadsError, match=r"cannot read tile .*test_0000\.tiff"):
        load_split(copy, "test")


def test_random_crops_are_reproducible_and_cut_from_the_tiles(train):
    a = random_crops(train, [0, 1, 2, 2], 16, torch.Generator().manual_seed(3))
    b = random_crops(train, [0, 1, 2, 2], 16, torch.Generator().manual_seed(3))
    c = random_crops(train, [0, 1, 2, 2], 16, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    assert a[0].shape == (4, 3, 16, 16) and a[1].shape == (4, 1, 16, 16) and a[1].dtype == torch.bool
    sat, mask = random_crops(train, [0] * 32, 16, torch.Generator().manual_seed(0))
    crops = torch.cat([sat, mask.to(torch.uint8)], 1)  # aerial and mask cut at the same place
    tile = torch.cat([train.sat[0], train.mask[0].to(torch.uint8)])
    windows = tile.unfold(1, 16, 1).unfold(2, 16, 1).permute(1, 2, 0, 3, 4).reshape(1, -1, 4, 16, 16)
    direct = (windows == crops[:, None]).flatten(2).all(2).any(1)
    flipped = (windows == crops.flip(-1)[:, None]).flatten(2).all(2).any(1)
    assert (direct | flipped).all() and direct.any() and flipped.any()
    with pytest.raises(ValueError, match="does not fit"):
        random_crops(train, [0], SIZE + 1, torch.Generator())


def test_fixed_bank_ids_are_stable_and_name_their_crops(made, train):
    bank = fixed_crops(train, 5, 16, seed=2)
    assert len(bank) == 15 and len(set(bank.ids)) == 15
    assert bank.ids == fixed_crops(load_split(made, "train"), 5, 16, seed=2).ids
    assert bank.ids != fixed_crops(train, 5, 16, seed=3).ids
    one = load_split(made, "train")
    one.names, one.sat, one.mask = one.names[1:2], one.sat[1:2], one.mask[1:2]
    assert fixed_crops(one, 5, 16, seed=2).ids == bank.ids[5:10]  # a tile's crops do not depend on the others
    sat, mask = bank.crops(range(len(bank)))
    for i, crop_id in enumerate(bank.ids):
        name, y, x, flip = crop_id.split(":")
        t, y, x = train.names.index(name), int(y), int(x)
        want = train.sat[t, :, y:y + 16, x:x + 16]
        assert torch.equal(sat[i], want.flip(-1) if flip == "1" else want)
        want = train.mask[t, :, y:y + 16, x:x + 16]
        assert torch.equal(mask[i], want.flip(-1) if flip == "1" else want)
    with pytest.raises(ValueError, match="do not fit"):
        fixed_crops(train, 2 * 25 * 25 + 1, 16)


def test_parse_crops():
    assert parse_crops("random") is None and parse_crops("fixed:12") == 12
    for bad in ("fixed", "fixed:0", "fixed:-2", "every"):
        with pytest.raises(ValueError, match="--crops"):
            parse_crops(bad)
