"""The Massachusetts Roads download against a local HTTP server on 127.0.0.1 that serves a tiny made tree with
index pages like the official ones."""
import functools
import hashlib
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lossnets.benchmarks.data.download import MANIFEST, DownloadError
from lossnets.benchmarks.segmentation.data import load_split
from lossnets.benchmarks.segmentation.made import make_roads
from lossnets.benchmarks.segmentation.download import BASE_URL, fetch_mrd

pytestmark = pytest.mark.usefixtures("one_thread")

COUNTS = {"train": 2, "valid": 1, "test": 1}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A made set with an index.html per split and folder: absolute links into the official site (as its pages
    have) in sat, relative links in map, and a link to the parent folder that is not a file."""
    root = make_roads(tmp_path_factory.mktemp("mrd"), n_train=2, n_valid=1, n_test=1, size=24)
    for split in COUNTS:
        for folder in ("sat", "map"):
            names = sorted(p.name for p in (root / split / folder).iterdir())
            prefix = f"{BASE_URL}{split}/{folder}/" if folder == "sat" else ""
            links = [f'<a href="{prefix}{n}">{n}</a><br />' for n in names]
            (root / split / folder / "index.html").write_text("\n".join(['<a href="../">up</a>', *links]) + "\n")
    return root


@pytest.fixture
def server(tree):
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tree)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()


def _files(requests):
    return sorted(r for r in requests if not r.endswith("index.html"))


def test_fetch_records_and_skips_verified_files_on_rerun(server, tree, tmp_path):
    url, requests = server
    out = fetch_mrd(tmp_path / "mrd", base_url=url, expected=COUNTS, progress=False)
    assert len(_files(requests)) == 8 and not any("up" in r for r in requests)
    tiles = load_split(out, "train")
    assert tiles.names == ["train_0000", "train_0001"] and not tiles.synthetic  # the marker was not listed
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest) == 8
    data = (tree / "valid" / "map" / "valid_0000.tif").read_bytes()
    assert manifest["valid/map/valid_0000.tif"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["valid/map/valid_0000.tif"]["size"] == len(data)
    assert manifest["train/sat/train_0001.tiff"]["url"] == url + "train/sat/train_0001.tiff"  # off the official site

    requests.clear()
    fetch_mrd(out, base_url=url, expected=COUNTS, progress=False)
    assert len(requests) == 6 and _files(requests) == []  # the six index pages only

    (out / "test" / "sat" / "test_0000.tiff").write_bytes(b"damaged")
    requests.clear()
    fetch_mrd(out, base_url=url, expected=COUNTS, progress=False)
    assert _files(requests) == ["/test/sat/test_0000.tiff"]
    repaired = (out / "test" / "sat" / "test_0000.tiff").read_bytes()
    assert repaired == (tree / "test" / "sat" / "test_0000.tiff").read_bytes()


def test_counts_differing_from_the_official_ones_stop_before_fetching(server, tmp_path):
    url, requests = server
    with pytest.raises(DownloadError, match=r"train/sat/index\.html lists 2 files, expected 1108 \(official count\)"):
        fetch_mrd(tmp_path / "mrd", base_url=url, progress=False)
    with pytest.raises(DownloadError, match=r"valid/sat/index\.html lists 1 files, expected 3 \(expected=\)"):
        fetch_mrd(tmp_path / "mrd", base_url=url, expected={**COUNTS, "valid": 3}, progress=False)
    assert _files(requests) == [] and not list((tmp_path / "mrd").rglob("*.tif*"))


def test_missing_index_page_and_unknown_split(server, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match=r"absent/train/sat/index\.html: HTTP 404"):
        fetch_mrd(tmp_path / "mrd", base_url=url + "absent/", expected=COUNTS, progress=False)
    with pytest.raises(DownloadError, match="no split 'val'"):
        fetch_mrd(tmp_path / "mrd", base_url=url, splits=("val",), progress=False)
