"""A fake benchmark whose worker the test kills (no tests here): for the cells of ``victims``, on its first
``kills`` tries, it writes its process id to ``pids/<arch>.<pid>.pid`` and waits to be killed; then it gives the
fake benchmark's rows. Found by Ray workers and submitit jobs through PYTHONPATH (this folder)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from test_sweep_fakebench import FakeSettings
from test_sweep_fakebench import run as fake_run

from lossnets.benchmarks.contract import Benchmark, option


@dataclass(frozen=True)
class LostSettings(FakeSettings):
    pids: str = option("", help="where a victim writes its process id")
    victims: tuple[str, ...] = option((), help="architectures whose worker is killed")
    kills: int = option(0, help="how many tries are killed")


def run(net, s: LostSettings, ctx):
    if net.arch.name in s.victims:
        d = Path(s.pids)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"{net.arch.name}.tries", "a") as f:
            f.write(f"{os.getpid()}\n")
        if len((d / f"{net.arch.name}.tries").read_text().split()) <= s.kills:
            (d / f"{net.arch.name}.{os.getpid()}.pid").write_text(str(os.getpid()))
            time.sleep(300)  # killed before this ends
    return fake_run(net, s, ctx)


LOST = Benchmark("lost", LostSettings, "lost_worker_bench:run", trains=False, rows="{name}")
