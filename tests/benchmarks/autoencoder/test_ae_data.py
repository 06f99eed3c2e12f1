"""Benchmark 4 data: SVHN and STL-10 readers on files in the official formats, splits, made sets, downloads."""
import functools
import hashlib
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import scipy.io
import torch
from torchvision.datasets import STL10, SVHN

from lossnets.benchmarks.autoencoder import data, made
from lossnets.benchmarks.data.download import DownloadError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def svhn(tmp_path_factory):
    return made.make_svhn(tmp_path_factory.mktemp("svhn"), n_train=40, n_test=20, n_extra=30)


@pytest.fixture(scope="module")
def stl10(tmp_path_factory):
    return made.make_stl10(tmp_path_factory.mktemp("stl10"), n_train=20, n_test=10, n_unlabeled=15)


def _pattern(n: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Images no transpose or flip leaves unchanged: a bright bar along the top row, a ramp left to right."""
    images = np.zeros((n, 3, side, side), np.uint8)
    images[:, 0] = np.linspace(0, 200, side, dtype=np.uint8)[None, None, :]
    images[:, 1, :3, :] = 255
    images[:, 2] = np.arange(n, dtype=np.uint8)[:, None, None]
    return images, np.arange(n) % 10


def test_svhn_round_trip_maps_label_10_to_digit_0(tmp_path):
    images, labels = _pattern(12, 32)
    made.write_svhn(tmp_path, "train", images, labels)
    mat = scipy.io.loadmat(tmp_path / "train_32x32.mat")
    assert mat["X"].shape == (32, 32, 3, 12) and mat["y"].shape == (12, 1)
    assert mat["y"][0, 0] == 10 and mat["y"][3, 0] == 3  # the file keeps SVHN's 10 for the digit 0
    assert (mat["X"][:3, :, 1, 0] == 255).all()  # H,W,C,N: the bar is on the top rows
    got = data.read_svhn(tmp_path, "train")
    assert torch.equal(got.images, torch.from_numpy(images)) and got.labels.tolist() == labels.tolist()
    assert got.source == "svhn/train" and got.positions.tolist() == list(range(12))
    assert len(data.read_svhn(tmp_path, "train", limit=5)) == 5


def test_stl10_round_trip_keeps_images_upright(tmp_path):
    images, labels = _pattern(4, 96)
    made.write_stl10(tmp_path, "train", images, labels)
    raw = np.fromfile(tmp_path / "stl10_binary" / "train_X.bin", np.uint8)
    assert (raw[:96] == images[0, 0, :, 0]).all()  # the file holds each channel column by column
    assert (np.fromfile(tmp_path / "stl10_binary" / "train_y.bin", np.uint8) == labels + 1).all()
    got = data.read_stl10(tmp_path, "train", limit=3)
    assert torch.equal(got.images, torch.from_numpy(images[:3])) and got.labels.tolist() == labels[:3].tolist()
    assert (got.images[:, 1, :3] == 255).all() and got.images[0, 0, 50, -1] > got.images[0, 0, 50, 0]


def test_readers_agree_with_torchvision(svhn, stl10, monkeypatch):
    monkeypatch.setattr(SVHN, "_check_integrity", lambda self: True)  # made files never match the official md5s
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)
    ours, theirs = data.read_svhn(svhn, "test"), SVHN(str(svhn), split="test")
    assert np.array_equal(ours.images.numpy(), theirs.data) and np.array_equal(ours.labels.numpy(), theirs.labels)
    ours, theirs = data.read_stl10(stl10, "train"), STL10(str(stl10), split="train")
    assert np.array_equal(ours.images.numpy(), theirs.data) and np.array_equal(ours.labels.numpy(), theirs.labels)
    assert data.read_stl10(stl10, "unlabeled").labels is None


def test_splits_are_seeded_80_20_and_disjoint(svhn):
    s = data.load_splits(svhn, "svhn", seed=3)
    assert (len(s.autoencoder_train), len(s.autoencoder_val), len(s.mlp_train), len(s.mlp_val), len(s.mlp_test)) == \
        (24, 6, 32, 8, 20)
    assert s.synthetic and s.autoencoder_train.labels is not None and s.autoencoder_train.source == "svhn/extra"
    assert not set(s.mlp_train.positions) & set(s.mlp_val.positions)
    again = data.load_splits(svhn, "svhn", seed=3)
    assert (again.mlp_val.positions == s.mlp_val.positions).all()
    assert not (data.load_splits(svhn, "svhn", seed=4).mlp_val.positions == s.mlp_val.positions).all()
    small = data.load_splits(svhn, "svhn", autoencoder_limit=10, mlp_limit=10, test_limit=4)
    assert (len(small.autoencoder_train), len(small.mlp_val), len(small.mlp_test)) == (8, 2, 4)


def test_model_input_sizes_and_reflection(svhn, stl10):
    images = data.read_svhn(svhn, "test", limit=2).images
    x = data.model_input(images, "svhn")
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x[..., 16:48, 16:48], images.float() / 255)
    assert torch.equal(x[..., 15, 16:48], x[..., 17, 16:48])  # reflected about the first row, not repeated
    assert data.model_input(data.read_stl10(stl10, "test", limit=2).images, "stl10").shape == (2, 3, 96, 96)


def test_made_sets_are_marked_and_learnable(svhn, stl10):
    for root in (svhn, stl10):
        assert (root / data.SYNTHETIC_MARKER).is_file()
        assert "SYNTHETIC" in (root / "README.txt").read_text() and "made by lossnets" in (root / "README.txt").read_text()
    train, test = data.read_svhn(svhn, "train"), data.read_svhn(svhn, "test")
    mean_colour = lambda s: s.images.float().mean((2, 3))  # noqa: E731
    centroids = torch.stack([mean_colour(train)[train.labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(mean_colour(test), centroids).argmin(1)
    assert (predicted == test.labels).float().mean() > 0.8  # the class is the tint: far above 10% chance


def test_missing_split_names_the_file_and_the_fix(tmp_path, svhn):
    with pytest.raises(data.AutoencoderDataError, match=r"extra_32x32\.mat does not exist.*download svhn.*make-svhn"):
        data.read_svhn(tmp_path, "extra")
    with pytest.raises(data.AutoencoderDataError, match=r"stl10_binary/unlabeled_X\.bin does not exist.*make-stl10"):
        data.read_split(tmp_path, "stl10", "unlabeled")
    with pytest.raises(ValueError, match="no split 'unlabeled'"):
        data.read_svhn(svhn, "unlabeled")
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load_splits(svhn, "cifar10")
    with pytest.raises(ValueError, match="limit must be at least 1"):
        data.read_svhn(svhn, "test", limit=0)


def test_wrong_shapes_and_labels(tmp_path):
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(data.AutoencoderDataError, match=r"train_32x32\.mat: X is uint8 \(28, 28, 3, 2\)"):
        data.read_svhn(tmp_path, "train")
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((3, 1))})
    with pytest.raises(data.AutoencoderDataError, match=r"y has shape \(3, 1\)"):
        data.read_svhn(tmp_path, "test")
    scipy.io.savemat(tmp_path / "extra_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.zeros((2, 1))})
    with pytest.raises(data.AutoencoderDataError, match=r"extra_32x32\.mat: label 0 .* outside 1\.\.10"):
        data.read_svhn(tmp_path, "extra")


def test_truncated_or_mismatched_stl10_files(tmp_path):
    images, labels = _pattern(3, 96)
    folder = made.write_stl10(tmp_path, "test", images, labels)
    (folder / "test_y.bin").write_bytes(bytes([1, 2]))
    with pytest.raises(data.AutoencoderDataError, match=r"test_y\.bin holds 2 labels for the 3 images"):
        data.read_stl10(tmp_path, "test")
    (folder / "test_X.bin").write_bytes((folder / "test_X.bin").read_bytes()[:-100])
    with pytest.raises(data.AutoencoderDataError, match=r"test_X\.bin has 82844 bytes.*truncated"):
        data.read_stl10(tmp_path, "test")


@pytest.fixture
def server(tmp_path):
    """A local HTTP server (127.0.0.1 only) serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_svhn_verifies_the_md5(server, tmp_path, svhn, monkeypatch):
    served, url = server
    (served / "test_32x32.mat").write_bytes((svhn / "test_32x32.mat").read_bytes())
    with pytest.raises(DownloadError, match=r"test_32x32\.mat.*expected md5 eb5a983b"):
        data.download_svhn(tmp_path / "got", ["test"], base_url=url)  # a made file is not the official one
    md5 = hashlib.md5((served / "test_32x32.mat").read_bytes()).hexdigest()
    monkeypatch.setitem(data.SVHN_MD5, "test", md5)
    root = data.download_svhn(tmp_path / "got", ["test"], base_url=url)
    assert len(data.read_svhn(root, "test")) == 20


def test_download_stl10_extracts_once(server, tmp_path, stl10, monkeypatch):
    served, url = server
    with tarfile.open(served / data.STL10_ARCHIVE, "w:gz") as tar:
        tar.add(stl10 / data.STL10_FOLDER, arcname=data.STL10_FOLDER)
    monkeypatch.setattr(data, "STL10_MD5", hashlib.md5((served / data.STL10_ARCHIVE).read_bytes()).hexdigest())
    root = data.download_stl10(tmp_path / "got", base_url=url)
    assert torch.equal(data.read_stl10(root, "test").images, data.read_stl10(stl10, "test").images)
    (served / data.STL10_ARCHIVE).unlink()
    assert data.download_stl10(tmp_path / "got", base_url=url) == root  # extracted before: nothing fetched
