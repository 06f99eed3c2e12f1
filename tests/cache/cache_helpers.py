"""Shared by the cache tests and their writer subprocesses: a small random-weight net and seeded images."""
from __future__ import annotations

from functools import cache

import torch

ARCH, SIZE = "squeezenet1_1", 64
PREP = {"size": SIZE}


def ids(start: int, stop: int) -> list[str]:
    return [f"img{i:05d}.png" for i in range(start, stop)]


def load_images(names: list[str]) -> torch.Tensor:
    """uint8 (n,3,SIZE,SIZE) images, each a function of its id only."""
    out = []
    for n in names:
        g = torch.Generator().manual_seed(int(n[3:8]))
        out.append(torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=g))
    return torch.stack(out)


@cache
def make_net(seed: int = 0, layers=("E", "S", "M", "L")):
    from lossnets import LossNetwork
    return LossNetwork(ARCH, layers=layers, weights="random", seed=seed, device="cpu")



BACKENDS = ("local", "memory")


def store_url(backend: str, tmp_path, protocol: str = "memory") -> str:
    """A fresh cache root: a folder, or an fsspec URL unique to the test."""
    return str(tmp_path / "cache") if backend == "local" else f"{protocol}://{tmp_path.name}/cache"


def chunk_file(url: str, name: str, array: str = "data", chunk: int = 1) -> tuple:
    """(fs, path) of chunk ``chunk`` of ``array`` of entry ``name``, on any backend."""
    import fsspec
    fs, root = fsspec.core.url_to_fs(url)
    return fs, fs.find(f"{root.rstrip('/')}/{name}/{array}/c/{chunk}")[0]
