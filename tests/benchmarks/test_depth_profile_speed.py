"""The depth-profile speed script's smoke run: one small network, one item per subset, into a temporary folder."""
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).parents[2]  # the speed scripts are a package run from the repository root, not installed


def test_smoke_run_times_every_phase_and_rescores_without_a_network(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.speed.depth_profile", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    row = pd.read_csv(tmp_path / "depth_profile_cpu_size1.csv").iloc[0]
    assert row.arch == "squeezenet1_1" and row.blocks > 1
    for col in ("plain_s", "deepest_s", "blocks_s", "fill_s", "rescore_s", "blocks_vs_deepest", "plain_vs_blocks"):
        assert row[col] > 0, col
    assert row.max_abs_score_diff_plain < 1e-6  # plain's hooked blocks and lossnets' block taps agree
    assert not row.rescore_built and row.rescore_computed == 0
    md = (tmp_path / "depth_profile_cpu_size1.md").read_text()
    assert "SYNTHETIC" in md and "plain" in md
