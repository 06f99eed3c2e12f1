"""The GPU suite's smoke run: the whole script at tiny sizes on the CPU, so it is known to work before a GPU is lent."""
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).parents[2]  # the speed scripts are a package run from the repository root, not installed
TABLES = {"kernels": ["kernels", "kernels_compile"], "networks": ["networks"], "bapps": ["bapps"],
          "training": ["training", "training_estimate"], "lin": ["lin"]}


def test_smoke_run_writes_every_part_without_errors(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.speed.gpu_suite", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    parts = pd.read_csv(tmp_path / "smoke_parts.csv")
    assert list(parts.part) == list(TABLES) and (parts.status == "ok").all(), parts.to_string()
    for tables in TABLES.values():
        for name in tables:
            df = pd.read_csv(tmp_path / f"smoke_{name}.csv")
            assert len(df), name
            assert "error" not in df or df["error"].isna().all(), df["error"].dropna().tolist()
    networks = pd.read_csv(tmp_path / "smoke_networks.csv")
    assert set(networks.config) == {"eager fp32", "bf16+CL", "bf16+CL+compile"}
    assert set(pd.read_csv(tmp_path / "smoke_training.csv").benchmark) == {"superres", "segmentation", "autoencoder"}
    totals = pd.read_csv(tmp_path / "smoke_training_estimate.csv").query("arch == 'TOTAL'")
    assert len(totals) == 3 and totals.engine_gpu_hours.map(math.isfinite).all()
    assert totals.published_gpu_hours.map(math.isfinite).all()
    assert set(pd.read_csv(tmp_path / "smoke_lin.csv").arch) == {"alexnet", "squeezenet1_1"}
    assert "SMOKE RUN" in (tmp_path / "smoke_suite.md").read_text()
    assert not list(tmp_path.glob("gpu_*"))
