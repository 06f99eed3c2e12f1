"""The Massachusetts Roads Dataset from its official pages, fetched resumably and verified.

Each of ``BASE_URL/{train,valid,test}/{sat,map}/index.html`` links to the files of that folder (aerial
``NAME.tiff`` in sat, mask ``NAME.tif`` in map). :func:`fetch_mrd` reads the pages, checks how many files
each lists against the official 1108/14/49 tiles before fetching anything, and downloads every listed file
with the project's resumable download into ``DIR/{split}/{sat,map}/``. Each file's record (URL, size,
sha256, ...) goes to ``DIR/downloads.json`` under its path relative to DIR; a rerun skips the files that
match their record. The dataset publishes no checksums: the first download's records pin them.
"""
from __future__ import annotations

import posixpath
import re
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from ..data.download import DownloadError, _manifest, _write_manifest, download, verify
from ..data.images import IMAGE_SUFFIXES
from .data import SPLITS

BASE_URL = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/"
OFFICIAL_COUNTS = {"train": 1108, "valid": 14, "test": 49}  # tiles per split
FOLDERS = ("sat", "map")
_OFFICIAL_PREFIX = re.compile(r"^https?://www\.cs\.toronto\.edu/~vmnih/data/mass_roads/")


class _Links(HTMLParser):
    """The href of every <a> tag of a page."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def list_files(index_url: str, base_url: str = BASE_URL) -> dict[str, str]:
    """{file name: URL} of the image files an index page links to; links into the official site are moved
    under ``base_url`` (a mirror, or a test server)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(index_url, headers={"User-Agent": "lossnets"}),
                                    timeout=60) as resp:
            page = resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{index_url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{index_url}: {getattr(e, 'reason', e)}") from None
    links = _Links()
    links.feed(page)
    files = {}
    for href in links.hrefs:
        url = _OFFICIAL_PREFIX.sub(lambda _: base_url, urllib.parse.urljoin(index_url, href))
        name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
        if Path(name).suffix.lower() in IMAGE_SUFFIXES:
            files[name] = url
    return files


def fetch_mrd(root: str | Path, *, base_url: str | None = None, splits=SPLITS, expected: dict[str, int] | None = None,
              progress: bool = True) -> Path:
    """Download the aerial tiles and masks of ``splits`` into ``root/{split}/{sat,map}/``; returns root.

    ``expected`` replaces the official tile counts of some splits (a mirror's subset, or a test server);
    a page that lists another number of files is an error before anything is fetched. ``base_url``
    replaces the official address.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = (base_url or BASE_URL).rstrip("/") + "/"
    counts = {**OFFICIAL_COUNTS, **(expected or {})}
    plan = []  # (path relative to root, URL)
    for split in splits:
        if split not in SPLITS:
            raise DownloadError(f"MRD has no split {split!r}; splits: {', '.join(SPLITS)}")
        for folder in FOLDERS:
            index = f"{base}{split}/{folder}/index.html"
            files = list_files(index, base)
            if len(files) != counts[split]:
                raise DownloadError(f"{index} lists {len(files)} files, expected {counts[split]} "
                                    f"({'official count' if split not in (expected or {}) else 'expected='}); "
                                    "nothing was downloaded")
            plan += [(f"{split}/{folder}/{name}", url) for name, url in sorted(files.items())]
    manifest = _manifest(root)
    if progress:
        from tqdm.auto import tqdm
        plan = tqdm(plan, desc="MRD", unit="file")
    for rel, url in plan:
        record = manifest.get(rel)
        if record and verify(root / rel, size=record["size"], sha256=record["sha256"]) is None:
            continue
        manifest[rel] = download(url, root / rel, progress=False)
        _write_manifest(root, manifest)
    return root
