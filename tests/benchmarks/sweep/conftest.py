"""Fixtures of the sweep tests whose benchmarks live beside them (test_sweep_fakebench.py, lost_worker_bench.py) and
must import in Ray workers and submitit jobs too."""
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def on_path():
    """This folder on sys.path and on the PYTHONPATH that workers and jobs inherit, for one module."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(HERE), old] if p)
    sys.path.insert(0, str(HERE))
    yield
    sys.path.remove(str(HERE))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def ray_cluster(on_path):
    """A local Ray cluster for one module, its workers seeing this folder."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    yield ray
    ray.shutdown()
