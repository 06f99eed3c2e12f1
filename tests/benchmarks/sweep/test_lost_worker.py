"""A lost worker: a Ray worker or a submitit job killed mid-cell (SIGKILL to its pid) is retried a bounded number of
times and the table holds every cell once; a cell whose worker dies on every try is recorded as failed and the
sweep goes on."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from lossnets.benchmarks.sweep.cells import RunFolder
from lossnets.benchmarks.sweep.grid import LOST_TRIES, sweep

ARCHS = ["squeezenet1_1", "alexnet"]


def config(tmp_path: Path, kills: int, archs=ARCHS) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[sweep]\narchs = {archs!r}\nlayers = ["E", "L"]\nweights = "random"\ndevice = "cpu"\n'
                   f'[lost]\nbenchmark = "lost_worker_bench:LOST"\nname = "lost"\npids = "{tmp_path / "pids"}"\n'
                   f'victims = ["alexnet"]\nkills = {kills}\n'
                   '[slurm]\ncluster = "local"\ntimeout_min = 10\npoll_s = 0.2\n')
    return cfg


class Killer(threading.Thread):
    """SIGKILLs every process that writes a pid file under ``folder``, as it appears."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.killed, self.stop = folder, [], threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            for f in self.folder.glob("*.pid") if self.folder.is_dir() else []:
                if f.name not in self.killed:
                    try:
                        pid = int(f.read_text())
                    except ValueError:  # being written
                        continue
                    self.killed.append(f.name)
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(10)


def _cells_once(run: Path, expected: int) -> None:
    assert len(RunFolder(run).cells()) == expected and len(RunFolder(run).read_cells()) == expected * 2


def test_a_killed_ray_worker_is_retried_and_a_cell_killed_every_time_fails(ray_cluster, tmp_path):
    with Killer(tmp_path / "pids") as k:  # the first try of alexnet's cells killed mid-cell
        r = sweep(config(tmp_path, kills=1), tmp_path / "run", executor="ray", progress=False,
                  executor_options={"max_retries": 0})
    assert (r.finished, r.failed, len(k.killed)) == (4, [], 1)
    _cells_once(tmp_path / "run", 4)
    with Killer(tmp_path / "pids2") as k:  # alexnet's worker killed on every try: failed, squeezenet done
        cfg = config(tmp_path, kills=99)
        cfg.write_text(cfg.read_text().replace(str(tmp_path / "pids"), str(tmp_path / "pids2")))
        r = sweep(cfg, tmp_path / "run2", executor="ray", progress=False, executor_options={"max_retries": 0})
    assert r.finished == 2 and sorted(str(f.cell) for f in r.failed) == ["lost/alexnet/E", "lost/alexnet/L"]
    assert len(k.killed) == LOST_TRIES and all(f"lost {LOST_TRIES} times" in f.error for f in r.failed), k.killed
    _cells_once(tmp_path / "run2", 2)
    assert len(RunFolder(tmp_path / "run2").failures()) == 2


def test_a_killed_submitit_job_is_retried(on_path, tmp_path):
    pytest.importorskip("submitit")
    with Killer(tmp_path / "pids") as k:  # one array task (alexnet's), killed on its first try
        r = sweep(config(tmp_path, kills=1, archs=["alexnet"]), tmp_path / "run", executor="slurm", progress=False)
    assert (r.finished, r.failed, len(k.killed)) == (2, [], 1)
    _cells_once(tmp_path / "run", 2)
