"""Two `lossnets sweep` processes on one run folder and one cache, on made data (SYNTHETIC BAPPS, random weights):
every cell runs once, the figures are a single process's, the cache verifies clean; one of them killed with SIGKILL
mid-run, the other completes the run."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.sweep.grid import sweep
from lossnets.benchmarks.sweep.results import key_columns
from lossnets.cache import admin

CELLS = 2 * 2  # two architectures x two taps


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A config on a made BAPPS set and the single-process run's table."""
    d = tmp_path_factory.mktemp("made")
    make_bapps(d / "bapps", size=2, train_size=0)
    cfg = d / "c.toml"
    cfg.write_text('[sweep]\narchs = ["squeezenet1_1", "alexnet"]\nlayers = ["E", "L"]\nweights = "random"\n'
                   'device = "cpu"\ncache = "cache"\ncache_dtype = "fp32"\n[similarity]\ndata = "bapps"\n')
    single = sweep(cfg, d / "single", progress=False)
    assert single.finished == CELLS
    for f in (d / "cache").glob("*"):  # the two processes start from an empty cache
        subprocess.run(["rm", "-rf", str(f)], check=True)
    return cfg, single.table


def start(cfg: Path, run: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lossnets", "sweep", "--config", str(cfg), "--out", str(run), "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def claim_owners(run: Path) -> set[int]:
    """The process ids holding claims in ``run`` now."""
    pids = set()
    for f in run.glob("cells/*/*/*.claim"):
        try:
            pids.add(int(json.loads(f.read_text())["owner"].rsplit(":", 1)[1]))
        except (FileNotFoundError, ValueError):  # released meanwhile
            pass
    return pids


def same_figures(table: pd.DataFrame, single: pd.DataFrame) -> None:
    key = [c for c in key_columns(single) if c in table.columns]
    m = table.merge(single, on=key, how="outer", suffixes=("", "_single"), indicator=True)
    assert (m["_merge"] == "both").all() and len(table) == len(single) and not table.duplicated(key).any()
    np.testing.assert_array_equal(m["value"], m["value_single"])


def test_two_sweeps_on_one_run_folder_run_every_cell_once(made, tmp_path):
    cfg, single = made
    procs = [start(cfg, tmp_path / "run") for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ran = [int(re.search(r"(\d+) finished now", out).group(1)) for out, _ in outs]
    assert sum(ran) == CELLS, outs  # each cell run by one of them, once
    for out, _ in outs:
        assert f"{CELLS} cells planned" in out
    same_figures(pd.read_csv(tmp_path / "run" / "results.csv"), single)
    assert admin.verify(cfg.parent / "cache") == []
    again = sweep(cfg, tmp_path / "run", resume=True, progress=False)
    assert (again.skipped, again.finished) == (CELLS, 0)  # --resume after both: nothing to do


def test_one_of_two_sweeps_killed_mid_run_the_other_completes(made, tmp_path):
    cfg, single = made
    run = tmp_path / "run"
    procs = {p.pid: p for p in (start(cfg, run), start(cfg, run))}
    victim, deadline = None, time.time() + 120
    while victim is None and time.time() < deadline:  # the first to hold a claim is killed: mid-cell
        victim = next((procs[pid] for pid in claim_owners(run) if pid in procs), None)
        assert all(p.poll() is None for p in procs.values()), "the kill should land mid-run"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    (other,) = [p for p in procs.values() if p is not victim]
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    same_figures(pd.read_csv(run / "results.csv"), single)
    assert admin.verify(cfg.parent / "cache") == []
    assert sweep(cfg, run, resume=True, progress=False).finished == 0  # nothing left for a rerun
