"""Executors: Ray (a local cluster, started once for this module), submitit's local executor and a
local process pool give the same table as the plain local run."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from lossnets.benchmarks.sweep.cells import RunFolder
from lossnets.benchmarks.sweep.config import SweepConfig
from lossnets.benchmarks.sweep.grid import sweep
from lossnets.benchmarks.sweep.plan import groups, plan
from lossnets.benchmarks.sweep.worker import run_group
from lossnets.benchmarks.sweep.executors import LocalExecutor, RayExecutor, SlurmExecutor, gpu_share, make_executor

ARCHS = ["alexnet", "squeezenet1_1"]


@pytest.fixture(scope="module")
def config(tmp_path_factory, on_path):
    d = tmp_path_factory.mktemp("cfg")
    cfg = d / "c.toml"
    cfg.write_text(f'[sweep]\narchs = {ARCHS!r}\nlayers = ["E", "L"]\nweights = "random"\ndevice = "cpu"\n'
                   f'cache = "feat"\n[fake]\nbenchmark = "test_sweep_fakebench:FAKE"\n'
                   '[slurm]\ncluster = "local"\ntimeout_min = 10\npoll_s = 0.2\n')
    return SweepConfig.from_toml(cfg)


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory):
    r = sweep(config, tmp_path_factory.mktemp("local"), progress=False)
    assert r.finished == 4 and not r.failed
    return r.table


def same_values(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["benchmark", "arch", "layer", "weights", "dataset", "metric"]
    m = a[key + ["value"]].merge(b[key + ["value"]], on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(a) == len(b)
    np.testing.assert_allclose(m["value_a"], m["value_b"], rtol=1e-6)


def test_reference_rows_share_the_cache_url(reference, config):
    # every benchmark gets one FeatureCache opened on the config's URL
    assert len(reference) == 2 * 2 * 2 and set(reference["cache"]) == {f"FeatureCache:{config.engine.cache}"}


def test_ray_gives_the_same_table(ray_cluster, config, reference, tmp_path):
    r = sweep(config, tmp_path / "ray", executor="ray", progress=False)
    assert (r.finished, r.failed) == (4, [])
    same_values(reference, r.table)
    # a rerun on Ray skips everything
    assert sweep(config, tmp_path / "ray", executor="ray", progress=False).skipped == 4


def test_ray_records_a_dead_task_and_the_rest_go_on(ray_cluster, config, tmp_path):
    run = tmp_path / "ray"
    work = groups(config, plan(config), run)
    outcomes = {}
    RayExecutor(config, run, max_retries=0).run(
        _die_for_alexnet, work, on_group=lambda g, o, e: outcomes.__setitem__(g.arch, (o, e)))
    assert isinstance(outcomes["alexnet"][1], Exception) and outcomes["alexnet"][0] is None
    assert outcomes["squeezenet1_1"][1] is None and len(outcomes["squeezenet1_1"][0]) == 2


def _die_for_alexnet(group, device=None, on_cell=None):
    if group.arch == "alexnet":
        os._exit(3)  # the worker process dies
    return run_group(group, device=device)


def test_submitit_local_gives_the_same_table(config, reference, tmp_path):
    pytest.importorskip("submitit")
    r = sweep(config, tmp_path / "slurm", executor="slurm", progress=False)
    assert (r.finished, r.failed) == (4, [])
    same_values(reference, r.table)
    assert list((tmp_path / "slurm" / "submitit").glob("*_0_log.out"))  # one array task per arch group


def test_a_group_that_raises_is_recorded_for_each_cell(config, tmp_path):
    def boom(group, on_cell=None, device=None):
        raise MemoryError("out of memory")
    r = sweep(config, tmp_path / "boom", executor=_Fixed(boom), progress=False)
    assert r.finished == 0 and len(r.failed) == 4 and "MemoryError" in r.failed[0].error
    assert len(RunFolder(tmp_path / "boom").failures()) == 4


class _Fixed(LocalExecutor):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def run(self, fn, groups, on_group, on_cell=None):
        super().run(self.fn, groups, on_group, on_cell)


def test_executor_options():
    assert gpu_share("squeezenet1_1") == 0.25 and gpu_share("vgg16") == 1.0
    assert LocalExecutor(workers=None).workers == 1
    ex = SlurmExecutor(None, "/tmp/run", slurm_partition="gpu")
    assert ex.parameters["slurm_partition"] == "gpu" and ex.parameters["gpus_per_node"] == 1
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("dask")
    with pytest.raises(ValueError, match="bad options"):
        make_executor("local", workerz=2)
