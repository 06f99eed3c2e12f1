"""Resumable, verified downloads of the official data archives, and their safe extraction.

``download(url, dest)`` streams to ``dest.part``, resumes an interrupted transfer with an HTTP Range
request (a server that ignores Range restarts it from zero), checks the size against what is known
(the archive spec, else the server's Content-Length/Content-Range) and the sha256 when known, and only
then renames the file to ``dest``. What was fetched (URL, size, sha256, ETag, Last-Modified) is recorded
in ``DIR/downloads.json``; a later run verifies the file against that record.

``fetch(name, dir)`` downloads the archives of a registered data set (``DATASETS``) and extracts each
(tar members may not leave ``dir``); a marker per archive makes a rerun skip finished work.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lossnets.engine.atomic import atomic_write_text
from lossnets.errors import LossnetsError

MANIFEST = "downloads.json"
CHUNK = 1 << 20


class DownloadError(LossnetsError, ValueError):
    """A download or extraction that failed; the message names the URL or file and what to do."""


@dataclass(frozen=True)
class Archive:
    name: str
    filename: str
    size: int | None = None  # bytes, when known
    sha256: str | None = None  # hex digest, when known
    default: bool = True  # fetched unless parts are chosen


@dataclass(frozen=True)
class Dataset:
    name: str
    base_url: str
    archives: tuple[Archive, ...]
    note: str = ""

    def archive(self, name: str) -> Archive:
        for a in self.archives:
            if name in (a.name, a.filename):
                return a
        raise DownloadError(f"{self.name} has no archive {name!r}; archives: {', '.join(a.name for a in self.archives)}")


# The official sources. Sizes and digests are not published; the first download records what it
# got in DIR/downloads.json (fill them in here once confirmed to pin them for everyone).
DATASETS: dict[str, Dataset] = {
    "bapps": Dataset(
        "bapps", "https://people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset/",
        (Archive("twoafc_val", "twoafc_val.tar.gz"), Archive("jnd", "jnd.tar.gz"),
         Archive("twoafc_train", "twoafc_train.tar.gz", default=False)),
        note="BAPPS (Zhang et al. 2018), https://github.com/richzhang/PerceptualSimilarity"),
}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _total_from(resp, offset: int) -> int | None:
    cr = resp.headers.get("Content-Range")
    if cr:
        m = re.match(r"bytes\s+(?:\d+-\d+|\*)/(\d+)", cr)  # "bytes a-b/total" or (416) "bytes */total"
        if m:
            return int(m.group(1))
    cl = resp.headers.get("Content-Length")
    return offset + int(cl) if cl is not None else None


def download(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
             progress: bool = True, retries: int = 5, timeout: float = 60, backoff: float = 1.0) -> dict:
    """Fetch url to dest (resuming dest.part); returns the record {url, file, size, sha256, etag, ...}.

    Raises DownloadError on HTTP errors, after ``retries`` failed attempts, and when the size or the
    sha256 differ from the known values (the partial file is removed then: it cannot be resumed).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    headers: dict = {}
    total = size
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if total is not None and have == total:
            break
        if total is not None and have > total:
            part.unlink()
            have = 0
        req = urllib.request.Request(url, headers={"User-Agent": "lossnets", **({"Range": f"bytes={have}-"} if have else {})})
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # the range starts at or past the end: complete, or a different file
                remote = _total_from(e, 0)
                if remote is not None and remote == have:
                    total = have
                    break
                part.unlink()
                continue
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            failures += 1
            if failures > retries:
                raise DownloadError(f"{url}: {getattr(e, 'reason', e)} (gave up after {retries} retries; "
                                    f"run again to resume from {part})") from None
            time.sleep(backoff * failures)
            continue
        with resp:
            resumed = have and resp.status == 206
            if have and not resumed:  # the server ignored Range: start over
                have = 0
            remote = _total_from(resp, have)
            if size is not None and remote is not None and remote != size:
                raise DownloadError(f"{url}: the server offers {remote} bytes, expected {size}; not downloading")
            total = total if total is not None else remote
            headers = {"etag": resp.headers.get("ETag"), "last_modified": resp.headers.get("Last-Modified")}
            bar = None
            if progress:
                from tqdm.auto import tqdm
                bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, leave=False)
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    while True:
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        f.write(block)
                        if bar is not None:
                            bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:  # connection dropped mid-stream: resume
                failures += 1
                if failures > retries:
                    raise DownloadError(f"{url}: {e} (gave up after {retries} retries; run again to resume)") from None
                time.sleep(backoff * failures)
                continue
            finally:
                if bar is not None:
                    bar.close()
        got = part.stat().st_size
        if total is None or got == total:
            total = got
            break
        failures += 1  # a short read without an error: resume
        if failures > retries:
            raise DownloadError(f"{url}: got {got} of {total} bytes after {retries} retries; run again to resume")
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise DownloadError(f"{url}: downloaded {got} bytes, expected {size}; removed {part}, run again")
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise DownloadError(f"{url}: sha256 {digest} differs from the expected {sha256}; removed {part}, run again")
    os.replace(part, dest)
    return {"url": url, "file": dest.name, "size": got, "sha256": digest, **headers,
            "downloaded": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def verify(path: str | Path, *, size: int | None = None, sha256: str | None = None) -> str | None:
    """None if the file matches what is known, else why not."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist"
    if size is not None and path.stat().st_size != size:
        return f"{path} has {path.stat().st_size} bytes, expected {size}"
    if sha256 is not None and sha256_file(path) != sha256.lower():
        return f"{path} has a sha256 other than the expected {sha256}"
    return None


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Extract a tar archive (any compression) into dest; members may not leave dest (tarfile 'data' filter)."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DownloadError(f"cannot extract {archive}: {e}") from e
    return dest


def _manifest(root: Path) -> dict:
    p = root / MANIFEST
    return json.loads(p.read_text()) if p.is_file() else {}


def _write_manifest(root: Path, manifest: dict) -> None:
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def fetch(name: str, root: str | Path, *, parts=None, base_url: str | None = None, progress: bool = True,
          keep_archives: bool = True) -> list[Path]:
    """Download and extract the archives of a registered data set into root; returns root per archive.

    ``parts``: archive names (default: those marked default, for BAPPS twoafc_val and jnd; add
    twoafc_train on request). ``base_url`` replaces the official address (a mirror, or a test server).
    """
    if name not in DATASETS:
        raise DownloadError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    ds = DATASETS[name]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archives = [a for a in ds.archives if a.default] if not parts else [ds.archive(p) for p in parts]
    base = (base_url or ds.base_url).rstrip("/") + "/"
    out = []
    for a in archives:
        manifest = _manifest(root)
        rec = manifest.get(a.filename, {})
        path = root / a.filename
        marker = root / f".{a.name}.extracted"
        size, sha = a.size or rec.get("size"), a.sha256 or rec.get("sha256")
        if marker.is_file() and marker.read_text().strip() == (sha or "") and sha:
            out.append(root)  # downloaded, verified and extracted before
            continue
        if path.is_file() and verify(path, size=size, sha256=sha) is None and sha:
            pass  # downloaded before; extraction was not finished
        else:
            if path.is_file():
                path.unlink()  # fails verification: fetch again
            rec = download(base + a.filename, path, size=a.size, sha256=a.sha256, progress=progress)
            manifest = _manifest(root)
            manifest[a.filename] = rec
            _write_manifest(root, manifest)
            sha = rec["sha256"]
        extract(path, root)
        marker.write_text(sha + "\n")
        if not keep_archives:
            path.unlink()
        out.append(root)
    return out
