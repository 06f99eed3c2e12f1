"""Every benchmark command resumes (they all run through the grid runner): a `lossnets similarity` run killed
mid-run leaves its finished cells and no table; rerun with --resume, it runs only the other cells and the table
ends complete, each cell once."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd

from lossnets.benchmarks.similarity.made import make_bapps

ARCHS = ["squeezenet1_1", "alexnet", "resnet18", "mobilenet_v3_small"]


def test_killed_similarity_run_resumes(tmp_path):
    root = make_bapps(tmp_path / "bapps", size=2, train_size=0)
    out = tmp_path / "sim.csv"
    cells = tmp_path / "sim.run" / "cells"
    cmd = [sys.executable, "-m", "lossnets", "similarity", "--data", str(root), "--archs", ",".join(ARCHS),
           "--layers", "E", "L", "--weights", "random", "--device", "cpu", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not list(cells.glob("*/*/*.csv")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in cells.glob("*/*/*.csv")}
    assert 0 < len(done) < 2 * len(ARCHS), "the kill should land mid-run"
    assert not out.exists()  # no table that reads as complete
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(done)} already done, {2 * len(ARCHS) - len(done)} finished now" in again.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())  # finished cells were not run again
    df = pd.read_csv(out)
    per_cell = df.groupby(["arch", "layer", "dataset", "metric"]).size()
    assert set(df["arch"]) == set(ARCHS) and set(df["layer"]) == {"E", "L"} and (per_cell == 1).all()
