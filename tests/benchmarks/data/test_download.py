"""Resumable verified downloads and extraction, against a local HTTP server on 127.0.0.1 only."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lossnets.benchmarks.data import download as dl
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps


class Server:
    """Serves ``files`` {name: bytes} with HTTP Range support; logs every request's Range header.

    ``cut`` {name: n}: the next response for that file stops after n bytes (a dropped connection).
    ``ignore_range``: answer 200 with the whole file even when a Range is asked.
    """

    def __init__(self):
        self.files, self.log, self.cut, self.ignore_range, self.sent = {}, [], {}, False, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                outer.log.append((name, rng))
                if name not in outer.files:
                    self.send_error(404)
                    return
                data = outer.files[name]
                start = 0
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
                self.end_headers()
                n = outer.cut.pop(name, None)
                if n is not None:
                    body = body[:n]
                outer.sent += len(body)  # before the write: the client may assert as soon as it has read
                self.wfile.write(body)
                if n is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _tar_gz(root, top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root / top, arcname=top)
    return buf.getvalue()


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    root = make_bapps(tmp_path_factory.mktemp("src"), size=2, seed=0)
    return {"twoafc_val.tar.gz": _tar_gz(root, "2afc"), "jnd.tar.gz": _tar_gz(root, "jnd"),
            "twoafc_train.tar.gz": _tar_gz(root, "2afc")}


@pytest.fixture
def server(archives):
    with Server() as s:
        s.files.update(archives)
        yield s


def test_fetch_bapps_extracts_records_and_skips_on_rerun(server, tmp_path, archives):
    out = tmp_path / "bapps"
    dl.fetch("bapps", out, base_url=server.url, progress=False)
    assert sorted(n for n, _ in server.log) == ["jnd.tar.gz", "twoafc_val.tar.gz"]  # train only on request
    data = load_bapps(out)
    assert len(data.subsets) == 8 and not data.synthetic  # the marker file was not in the archives
    manifest = json.loads((out / dl.MANIFEST).read_text())
    assert manifest["jnd.tar.gz"]["sha256"] == hashlib.sha256(archives["jnd.tar.gz"]).hexdigest()
    assert manifest["jnd.tar.gz"]["size"] == len(archives["jnd.tar.gz"])
    assert manifest["jnd.tar.gz"]["url"] == server.url + "jnd.tar.gz"
    server.log.clear()
    dl.fetch("bapps", out, base_url=server.url, progress=False)
    assert server.log == []  # verified against the record, nothing fetched again
    dl.fetch("bapps", out, parts=["twoafc_train"], base_url=server.url, progress=False)
    assert server.log == [("twoafc_train.tar.gz", None)]


def test_resume_from_partial_file(server, tmp_path, archives):
    data = archives["twoafc_val.tar.gz"]
    half = len(data) // 2
    dest = tmp_path / "twoafc_val.tar.gz"
    (tmp_path / "twoafc_val.tar.gz.part").write_bytes(data[:half])
    rec = dl.download(server.url + "twoafc_val.tar.gz", dest, size=len(data),
                      sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert server.log == [("twoafc_val.tar.gz", f"bytes={half}-")]
    assert server.sent == len(data) - half
    assert dest.read_bytes() == data and rec["size"] == len(data)
    assert not (tmp_path / "twoafc_val.tar.gz.part").exists()


def test_resume_after_dropped_connection(server, tmp_path, archives):
    data = archives["jnd.tar.gz"]
    server.cut["jnd.tar.gz"] = 1000
    dl.download(server.url + "jnd.tar.gz", tmp_path / "jnd.tar.gz", progress=False, backoff=0)
    assert server.log == [("jnd.tar.gz", None), ("jnd.tar.gz", "bytes=1000-")]
    assert (tmp_path / "jnd.tar.gz").read_bytes() == data


def test_server_ignoring_range_restarts(server, tmp_path, archives):
    data = archives["jnd.tar.gz"]
    (tmp_path / "jnd.tar.gz.part").write_bytes(data[:500])
    server.ignore_range = True
    dl.download(server.url + "jnd.tar.gz", tmp_path / "jnd.tar.gz", progress=False)
    assert (tmp_path / "jnd.tar.gz").read_bytes() == data


def test_complete_partial_file_and_bad_digest(server, tmp_path, archives):
    data = archives["jnd.tar.gz"]
    (tmp_path / "jnd.tar.gz.part").write_bytes(data)  # complete, but not yet renamed
    dl.download(server.url + "jnd.tar.gz", tmp_path / "jnd.tar.gz", progress=False)
    assert server.log == [("jnd.tar.gz", f"bytes={len(data)}-")]  # 416: nothing left to fetch
    assert (tmp_path / "jnd.tar.gz").read_bytes() == data
    with pytest.raises(dl.DownloadError, match="sha256"):
        dl.download(server.url + "jnd.tar.gz", tmp_path / "again.tar.gz", sha256="0" * 64, progress=False)
    assert not (tmp_path / "again.tar.gz.part").exists() and not (tmp_path / "again.tar.gz").exists()
    with pytest.raises(dl.DownloadError, match="expected 12"):
        dl.download(server.url + "jnd.tar.gz", tmp_path / "size.tar.gz", size=12, progress=False)
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download(server.url + "absent.tar.gz", tmp_path / "absent.tar.gz", progress=False)


def test_extract_refuses_paths_outside(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    (tmp_path / "evil.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(dl.DownloadError, match="evil.tar.gz"):
        dl.extract(tmp_path / "evil.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_cli_download(server, tmp_path, capsys):
    from lossnets.cli import main
    assert main(["data", "download", "bapps", str(tmp_path / "b"), "--base-url", server.url, "--quiet",
                 "--parts", "jnd"]) == 0
    assert "ready" in capsys.readouterr().out
    assert list(load_bapps(tmp_path / "b").subsets) == ["jnd/val/traditional", "jnd/val/cnn"]
    assert main(["data", "download", "bapps", str(tmp_path / "b"), "--base-url", server.url,
                 "--parts", "nope"]) == 2
