"""Benchmark 3's contract: road delineation settings and its registration record."""
from __future__ import annotations

from dataclasses import dataclass

from lossnets.errors import ConfigError

from ..contract import Benchmark, Settings, option


@dataclass(frozen=True)
class SegmentationSettings(Settings):
    data: str = option(help="Massachusetts Roads folder ({train,valid,test}/{sat,map})", path=True)
    epochs: int = option(100, help="training epochs")
    batch: int = option(8, help="batch size")
    size: int = option(224, help="training crop (and paper-protocol evaluation) size")
    refine: int = option(3, help="refinement iterations K of the U-Net")
    mu: float = option(0.01, help="weight of the perceptual term beside BCE")
    protocol: str = option("paper", help="paper: as the published code; standard: its known flaws fixed")
    crops: str = option("random", help="random (fresh each epoch) | fixed:N (a cached bank per tile)")
    threshold: float | None = option(None, help="road probability threshold (default 0.3 paper, 0.5 standard)")
    tolerance: float = option(3.0, help="relaxed metric's tolerance in pixels")

    def check(self) -> None:
        from ..training import check_protocol
        from .data import parse_crops
        check_protocol(self.protocol)
        try:
            parse_crops(self.crops)
        except ValueError as e:
            raise ConfigError(str(e)) from e


SEGMENTATION = Benchmark("segmentation", SegmentationSettings, "lossnets.benchmarks.segmentation.benchmark:run_cells",
                         trains=True)
