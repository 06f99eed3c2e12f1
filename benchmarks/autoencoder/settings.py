"""Benchmark 4's contract: autoencoding settings and its registration record."""
from __future__ import annotations

from dataclasses import dataclass

from lossnets.errors import ConfigError

from ..contract import Benchmark, Settings, option

@dataclass(frozen=True)
class AutoencoderSettings(Settings):
    data: str = option(help="folder of the official files ({train,test,extra}_32x32.mat or stl10_binary/)", path=True)
    dataset: tuple[str, ...] = option(("svhn",), help="svhn, stl10 or both (one lockstep run each)")
    epochs: int = option(10, help="autoencoder training epochs")
    batch: int = option(256, help="autoencoder batch size")
    embedding: int = option(64, help="embedding size")
    vae: float | None = option(None, help="the variational variant, KL weight GAMMA", metavar="GAMMA")
    mlp_epochs: int = option(100, help="downstream MLP epochs")
    mlp_batch: int = option(256, help="downstream MLP batch size")
    protocol: str = option("paper", help="paper: as the published code; standard: its known flaws fixed")
    n_autoencoder: int | None = option(None, help="read only the first N autoencoder images")
    n_mlp: int | None = option(None, help="read only the first N MLP training images")
    n_test: int | None = option(None, help="read only the first N test images")

    def check(self) -> None:
        from ..training import check_protocol
        from .data import DATASETS
        check_protocol(self.protocol)
        dataset = (self.dataset,) if isinstance(self.dataset, str) else tuple(self.dataset)
        object.__setattr__(self, "dataset", dataset)
        for d in dataset:
            if d not in DATASETS:
                raise ConfigError(f"dataset must be one of {DATASETS}, got {d!r}")


AUTOENCODER = Benchmark("autoencoder", AutoencoderSettings, "lossnets.benchmarks.autoencoder.benchmark:run_cells",
                        trains=True)
