"""A full run folder stops a sweep with one error naming the file; finished cells stay, --resume completes."""
import errno

import pandas as pd
import pytest

from dataclasses import dataclass

from lossnets.benchmarks.contract import Benchmark, Settings
from lossnets.benchmarks.sweep import cells
from lossnets.benchmarks.sweep.cells import RunDirWriteError
from lossnets.benchmarks.sweep.config import SweepConfig
from lossnets.benchmarks.sweep.grid import sweep

pytestmark = pytest.mark.usefixtures("one_thread")
VALUES = ["benchmark", "arch", "layer", "dataset", "metric", "value"]


@dataclass(frozen=True)
class NoSettings(Settings):
    pass


def mean_feature(net, settings, ctx):
    """A benchmark of the contract: one row per tap (the mean of its features on a fixed input)."""
    import torch
    feats = net(torch.linspace(0, 1, 3 * 32 * 32).reshape(1, 3, 32, 32))
    return pd.DataFrame([{"benchmark": "fake", "arch": net.arch.name, "layer": k, "weights": net.weights_spec,
                          "dataset": "x", "metric": "mean", "value": float(feats[k].float().mean())}
                         for k in ctx.layers])


FAKE = Benchmark("fake", NoSettings, "test_sweep_run_dir_full:mean_feature", trains=False)


def config() -> SweepConfig:
    return SweepConfig.from_dict({"sweep": {"archs": ["squeezenet1_1"], "layers": ["E", "S"], "weights": "random"},
                                  "fake": {"benchmark": "test_sweep_run_dir_full:FAKE"}})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return sweep(config(), tmp_path_factory.mktemp("ref"), progress=False).table[VALUES]


# the sweep's writes in order: sweep.json, cells E and S, results.csv at the end
@pytest.mark.parametrize("full_from, file", [(0, "sweep.json"), (2, "S.csv"), (3, "results.csv")])
def test_full_run_folder_then_resume(reference, full_from, file, tmp_path, monkeypatch):
    tried = []

    def disk(path):
        tried.append(path)
        if len(tried) > full_from:
            raise OSError(errno.ENOSPC, "No space left on device")

    def write_csv(df, path, real=cells.write_csv_atomic):
        disk(path)
        return real(df, path)

    def write_text(path, text, real=cells.atomic_write_text):
        disk(path)
        return real(path, text)

    monkeypatch.setattr(cells, "write_csv_atomic", write_csv)
    monkeypatch.setattr(cells, "atomic_write_text", write_text)
    with pytest.raises(RunDirWriteError, match=rf"cannot write \S*{file} \(No space left on device\).*--resume"):
        sweep(config(), tmp_path, progress=False)
    written = sorted(p.name for p in tmp_path.rglob("*.csv"))
    assert written == ["E.csv", "S.csv"][:max(0, full_from - 1)] and not list(tmp_path.rglob("*.error.json"))
    monkeypatch.undo()  # space is back
    done = sweep(config(), tmp_path, resume=True, progress=False)
    assert done.finished == 2 - len(written) and not done.failed
    pd.testing.assert_frame_equal(done.table[VALUES], reference)
