"""Benchmark 2's contract: super-resolution settings and its registration record."""
from __future__ import annotations

from dataclasses import dataclass

from lossnets.errors import ConfigError

from ..contract import Benchmark, Settings, option


def parse_tests(specs) -> dict[str, str]:
    """``["set5=DIR", ...]`` (or a dict) -> ``{"set5": "DIR", ...}`` (names lower-cased, as the paper table's)."""
    if isinstance(specs, dict):
        return dict(specs)
    out = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"--test takes NAME=DIR (e.g. set5=data/Set5), got {spec!r}")
        if name.lower() in out:
            raise ConfigError(f"test set {name!r} given twice")
        out[name.lower()] = folder
    return out


@dataclass(frozen=True)
class SuperresSettings(Settings):
    train: str = option(help="folder of training images (COCO train2014)", path=True)
    val: str = option(help="folder of validation images (COCO val2014)", path=True)
    test: dict = option(help="test folders, e.g. set5=DIR set14=DIR bsd100=DIR", path=True, metavar="NAME=DIR")
    scale: int = option(4, help="upscaling factor 4 or 8 (several: one run each)", variant=True)
    iterations: int = option(200000, help="training iterations")
    batch: int = option(4, help="batch size")
    size: int = option(288, help="HR patch size")
    protocol: str = option("paper", help="paper: as the published code; standard: its known flaws fixed")
    val_every: int | None = option(None, help="iterations between validations (default ~1/20 run, at most 1000)")
    n_train: int | None = option(10000, help="training images sampled with the seed (0: all)")
    n_val: int | None = option(100, help="validation images sampled with the seed (0: all)")

    def check(self) -> None:
        from ..training import check_protocol
        check_protocol(self.protocol)
        object.__setattr__(self, "test", parse_tests(self.test))
        if not self.test:
            raise ConfigError("no test folders given")
        if self.scale not in (2, 4, 8):
            raise ConfigError(f"scale must be 4 or 8, got {self.scale}")


SUPERRES = Benchmark("superres", SuperresSettings, "lossnets.benchmarks.superres.benchmark:run_cells", trains=True,
                     rows="superres_x{scale}")
