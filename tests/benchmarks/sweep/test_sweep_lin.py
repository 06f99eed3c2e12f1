"""A sweep asking for tap sets and learned lin weights: cells per tap set, baseline and learned rows, the
weights in the run folder, and the report's side-by-side table (synthetic judgments, random weights)."""
from __future__ import annotations

import pandas as pd

from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.sweep.config import SweepConfig
from lossnets.benchmarks.sweep.grid import sweep
from lossnets.benchmarks.sweep.plan import plan
from lossnets.benchmarks.sweep.results import key_columns
from lossnets.benchmarks.sweep.report import write_report
from lossnets.engine.lin_weights import load_lin_weights


def test_lin_train_in_a_sweep_then_report_side_by_side(tmp_path):
    make_bapps(tmp_path / "bapps", size=2, train_size=3)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sweep]\narchs = ["alexnet", "resnet18"]\nlayers = ["E", "E+L", "lpips"]\nweights = "random"\n'
                   'device = "cpu"\ncache = "cache"\n'
                   '[similarity]\ndata = "bapps"\nlin = "train"\ntraining = { epochs = 2, decay_epochs = 1 }\n')
    cells = plan(SweepConfig.from_toml(cfg))
    assert [str(c) for c in cells] == ["similarity/alexnet/E", "similarity/alexnet/E+L", "similarity/alexnet/lpips",
                                       "similarity/resnet18/E", "similarity/resnet18/E+L"]  # lpips: its 3 nets
    r = sweep(cfg, tmp_path / "run", progress=False)
    assert (r.finished, r.failed) == (5, [])
    df = r.table
    assert not df.duplicated(key_columns(df)).any()
    learned = df[df["lin"] != "none"]
    assert learned["lin"].str.startswith("trained@").all() and len(learned) == len(df) // 2
    lin = load_lin_weights(tmp_path / "run/artifacts/similarity/lin/alexnet/lpips.pth", "alexnet",
                           ("features.1", "features.4", "features.7", "features.9", "features.11"))
    assert len(lin.weights) == 5
    assert len(pd.read_csv(tmp_path / "run/artifacts/similarity/lin/resnet18/history.csv")) == 2 * 2
    out = write_report(tmp_path / "run")
    side = pd.read_csv(out / "learned_metric.csv")
    assert len(side) == 5 and {"2afc/val baseline", "2afc/val weighted", "2afc/val gain"} <= set(side.columns)
    md = (out / "report.md").read_text()
    assert "## Learned metric (LPIPS lin) beside the baseline" in md and "trained@" in md
