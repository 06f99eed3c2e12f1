"""Benchmark 1's contract: similarity settings and its registration record; beside it the learned metric's
(``lossnets lin train``: lin weights per loss network and tap set, rows of its training history)."""
from __future__ import annotations

from dataclasses import dataclass

from lossnets.errors import ConfigError

from ..contract import Benchmark, Settings, option


@dataclass(frozen=True)
class LinTraining:
    """Settings of lpips' training procedure (its defaults); ``epochs`` counts all of them, the last
    ``decay_epochs`` with the lr decayed linearly."""
    epochs: int = 10
    decay_epochs: int = 5
    lr: float = 1e-4
    beta1: float = 0.5
    batch: int = 50
    dropout: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or not 0 <= self.decay_epochs <= self.epochs:
            raise ConfigError(f"need epochs >= 1 and 0 <= decay_epochs <= epochs, got {self.epochs}, {self.decay_epochs}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def lr_at(self, epoch: int) -> float:
        """The lr of (1-based) ``epoch``: lpips keeps it for epochs - decay_epochs + 1 epochs, then lowers it
        by lr / decay_epochs after each."""
        if self.decay_epochs == 0:
            return self.lr
        return self.lr * min(1.0, (self.epochs - epoch + 1) / self.decay_epochs)


def lin_training(value) -> LinTraining:
    """A LinTraining from a dict of its fields (a config's ``training = {...}``), or the value itself (None: the
    defaults)."""
    return LinTraining(**value) if isinstance(value, dict) else value or LinTraining()


@dataclass(frozen=True)
class SimilaritySettings(Settings):
    data: str = option(help="BAPPS folder (2afc/val/..., jnd/val/...; 2afc/train/... for --lin train)", path=True)
    subsets: tuple[str, ...] | None = option(None, help="subsets to use: 2afc/val/cnn, jnd, cnn, ... (default: all)")
    lin: str | None = option(None, metavar="lpips|train|FILE|DIR",
                             help="also score with LPIPS lin weights: lpips (v0.1, --layers lpips), a file in "
                                  "lpips's format, a folder from `lossnets lin train`, or train (learn them on "
                                  "2afc/train first)")
    batch_size: int = option(64, help="image pairs per network pass")
    training: LinTraining | None = option(None, help="lpips's lin training procedure (lin=train): a LinTraining or "
                                                          "its fields")

    def check(self) -> None:
        object.__setattr__(self, "training", lin_training(self.training))
        if self.subsets is not None:
            object.__setattr__(self, "subsets", tuple(self.subsets))


@dataclass(frozen=True)
class LinTrainSettings(Settings):
    data: str = option(help="BAPPS folder with 2afc/train/... (and 2afc/val/..., jnd/val/... scored per epoch)",
                       path=True)
    batch_size: int = option(64, help="image pairs per network pass")
    training: LinTraining | None = option(None, help="lpips's lin training procedure: a LinTraining or its fields")

    def check(self) -> None:
        object.__setattr__(self, "training", lin_training(self.training))


SIMILARITY = Benchmark("similarity", SimilaritySettings, "lossnets.benchmarks.similarity.benchmark:run_cells",
                       trains=False)
# its rows are training histories (one per epoch), not results: `lossnets lin train` runs it, a sweep does not
LIN_TRAIN = Benchmark("lin_train", LinTrainSettings, "lossnets.benchmarks.similarity.lin_training:run_cells",
                      trains=True, columns=("benchmark", "arch", "layer", "weights", "epoch"))
