"""The main job on the embedded default data: make the data, sweep the grid, report, profile."""
from __future__ import annotations

import time
import tomllib
from pathlib import Path

from .autoencoder.made import make_svhn
from .segmentation.made import make_roads
from .similarity.made import make_bapps
from .superres.made import make_sr
from .sweep.report import write_report
from .sweep.results import write_csv_atomic
from .sweep.config import SweepConfig
from .sweep.grid import sweep

DEMO_CONFIG = Path(__file__).parent / "demo_sweep.toml"


def run_demo(out: str | Path, *, device: str = "cpu", progress: bool = True) -> tuple[dict[str, Path], int]:
    """Everything under ``out``: data/ (SYNTHETIC, made from scikit-image photos), run/ (the sweep's
    results.csv and report/), profile.csv and profile.png. Returns the paths and the number of failed
    cells. A rerun skips what is done."""
    from lossnets.engine.profiler import plot_macs, profile

    out = Path(out).resolve()
    data = out / "data"
    start = time.perf_counter()
    if not (data / "bapps").exists():
        make_bapps(data / "bapps", size=6, train_size=4)
    if not (data / "sr").exists():
        make_sr(data / "sr", n_train=8, n_val=2, size=96)
    if not (data / "roads").exists():
        make_roads(data / "roads", n_train=8, n_valid=2, n_test=2, size=64)
    if not (data / "svhn").exists():
        make_svhn(data / "svhn", n_train=200, n_test=100, n_extra=200)
    raw = tomllib.loads(DEMO_CONFIG.read_text())
    raw["sweep"]["device"] = device
    config = SweepConfig.from_dict(raw, base=data, source=str(DEMO_CONFIG))
    result = sweep(config, out / "run", resume=(out / "run").exists(), progress=progress)
    report = write_report(out / "run")
    prof = profile(size=64, batch=2, device=device, progress=progress)
    write_csv_atomic(prof, out / "profile.csv")
    plot_macs(prof, out / "profile.png")
    print(result.summary())
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    paths = {"data": data, "results": out / "run" / "results.csv", "report": report / "report.md",
             "profile": out / "profile.csv", "macs_plot": out / "profile.png"}
    return paths, len(result.failed)
