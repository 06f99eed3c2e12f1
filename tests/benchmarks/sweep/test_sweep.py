"""The sweep: plan, grouping by architecture, atomic cells, resume, failures, SIGKILL, merge, CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from lossnets.benchmarks.sweep.cells import RunFolder
from lossnets.benchmarks.sweep.config import SweepConfig
from lossnets.benchmarks.sweep.grid import sweep
from lossnets.benchmarks.sweep.merge import merge
from lossnets.benchmarks.sweep.plan import Cell, groups, plan
from lossnets.benchmarks.sweep.results import key_columns

HERE = Path(__file__).parent
FAKE = "test_sweep_fakebench:FAKE"
ARCHS = ["alexnet", "squeezenet1_1"]


def write_config(path: Path, *, archs=ARCHS, layers=("E", "S", "M", "L"), benches=("fake",), extra="", **fake):
    settings = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fake.items())
    text = (f'[sweep]\narchs = {json.dumps(list(archs))}\nlayers = {json.dumps(list(layers))}\n'
            f'weights = "random"\nseed = 0\ndevice = "cpu"\n{extra}\n')
    for b in benches:
        text += f'[{b}]\nbenchmark = "{FAKE}"\nname = "{b}"\n{settings}\n'
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _fake_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def test_config_resolves_paths_and_checks_keys(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = tmp_path / "sub" / "c.toml"
    cfg.write_text('[sweep]\narchs = "all"\nweights = "w.pt"\ncache = "feat"\ncache_dtype = "fp32"\n'
                   '[similarity]\ndata = "../bapps"\n[superres]\ntrain = "tr"\nval = "va"\n'
                   'test = { set5 = "/abs/set5" }\nscale = [4, 8]\n')
    c = SweepConfig.from_toml(cfg)
    assert len(c.archs) == 14 and c.layers == ("E", "S", "M", "L")
    assert c.engine.weights == str(tmp_path / "sub" / "w.pt") and c.engine.cache == str(tmp_path / "sub" / "feat")
    assert c.engine.cache_dtype == "fp32"
    sim, x4, x8 = c.jobs
    assert sim.settings.data == str(tmp_path / "bapps") and (x4.name, x8.name) == ("superres_x4", "superres_x8")
    assert x4.settings.train == str(tmp_path / "sub" / "tr") and x4.settings.test == {"set5": "/abs/set5"}
    assert (x4.settings.scale, x8.settings.scale) == (4, 8)
    assert len(plan(c)) == 3 * 56  # the cells carry the rows' names: superres_x4/..., superres_x8/...
    assert SweepConfig.from_dict(c.to_dict(), source=c.source) == c  # what sweep.json holds reads back the same
    # a benchmark can narrow the grid; that is not part of the fingerprint
    fp = c.fingerprint()
    cfg.write_text(cfg.read_text() + 'archs = ["alexnet"]\nlayers = "E"\n')
    c = SweepConfig.from_toml(cfg)
    assert len(plan(c)) == 56 + 2 and [x for x in plan(c) if x.benchmark.startswith("superres")] == [
        Cell("superres_x4", "alexnet", "E"), Cell("superres_x8", "alexnet", "E")]
    assert c.fingerprint() == fp
    for weights in ("random:liu", "imagenet:IMAGENET1K_V2", "random", "imagenet"):  # sources, not files
        cfg.write_text(f'[sweep]\narchs = ["alexnet"]\nweights = "{weights}"\n[similarity]\ndata = "x"\n')
        assert SweepConfig.from_toml(cfg).engine.weights == weights
    cfg.write_text('[sweep]\narchs = ["alexnet"]\nlayer = ["E"]\n[similarity]\ndata = "x"\n')
    with pytest.raises(ValueError, match="unknown key"):
        SweepConfig.from_toml(cfg)
    cfg.write_text('[sweep]\narchs = ["alexnet"]\n[nosuch]\ndata = "x"\n')
    with pytest.raises(ValueError, match="not a registered benchmark"):
        SweepConfig.from_toml(cfg)
    cfg.write_text('[sweep]\narchs = ["alexnt"]\n[similarity]\ndata = "x"\n')
    with pytest.raises(ValueError, match="unknown architecture"):
        SweepConfig.from_toml(cfg)
    cfg.write_text('[sweep]\narchs = ["alexnet"]\n[superres]\ntrain = "t"\nval = "v"\ntest = ["set5"]\n')
    with pytest.raises(ValueError, match="NAME=DIR"):  # settings are checked when the config is read
        SweepConfig.from_toml(cfg)


def test_plan_groups_by_architecture(tmp_path):
    c = SweepConfig.from_toml(write_config(tmp_path / "c.toml", benches=("fa", "fb")))
    cells = plan(c)
    assert len(cells) == 2 * 2 * 4 and len(set(cells)) == len(cells)
    gs = groups(c, cells, tmp_path / "run")
    assert [g.arch for g in gs] == ARCHS and all(len(g.cells) == 8 for g in gs)


def test_sweep_writes_cells_builds_once_and_skips_finished(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("LOSSNETS_FAKE_CALLS", str(calls))
    cfg = write_config(tmp_path / "c.toml", benches=("fa", "fb"))
    run = tmp_path / "run"
    built = []
    import lossnets.engine as eng
    orig = eng.LossNetwork

    class Counting(orig):
        def __init__(self, *a, **k):
            built.append((a[0], tuple(a[1])))
            super().__init__(*a, **k)
    monkeypatch.setattr(eng, "LossNetwork", Counting)
    r = sweep(cfg, run, progress=False)
    assert (r.planned, r.skipped, r.finished, r.failed) == (16, 0, 16, [])
    # one network per architecture, with all of its taps, serving both benchmarks
    assert built == [("alexnet", ("E", "S", "M", "L")), ("squeezenet1_1", ("E", "S", "M", "L"))]
    assert len(calls.read_text().splitlines()) == 4
    df = pd.read_csv(run / "results.csv")
    assert len(df) == 16 * 2 and not df.duplicated(["benchmark", "arch", "layer", "dataset", "metric"]).any()
    assert {"lossnets_version", "created", "seed", "sweep", "host"} <= set(df.columns)
    assert (run / "cells" / "fa" / "alexnet" / "M.csv").is_file()
    # the same command again: nothing runs, the table is the same
    r2 = sweep(cfg, run, progress=False)
    assert (r2.skipped, r2.finished) == (16, 0) and len(calls.read_text().splitlines()) == 4
    pd.testing.assert_frame_equal(pd.read_csv(run / "results.csv"), df)
    # a grown grid only runs the new taps, on a network with only those taps
    built.clear()
    cfg2 = write_config(tmp_path / "c2.toml", benches=("fa", "fb"), layers=("E", "S", "M", "L", "features.0"),
                        archs=["alexnet"])
    r3 = sweep(cfg2, run, progress=False)
    assert (r3.planned, r3.finished) == (10, 2) and built == [("alexnet", ("features.0",))]


def test_failing_cell_is_recorded_and_the_rest_go_on(tmp_path):
    flag = tmp_path / "broken"
    flag.touch()
    cfg = write_config(tmp_path / "c.toml", fail=["squeezenet1_1/M"], fail_while=str(flag))
    run = tmp_path / "run"
    r = sweep(cfg, run, progress=False)
    assert r.finished == 7
    assert [f.cell for f in r.failed] == [Cell("fake", "squeezenet1_1", "M")]
    rec = json.loads((run / "cells/fake/squeezenet1_1/M.error.json").read_text())
    assert "fake failure" in rec["error"] and "Traceback" in rec["traceback"]
    df = pd.read_csv(run / "results.csv")
    assert set(zip(df.arch, df.layer)) == {(a, lay) for a in ARCHS for lay in "ESML"} - {("squeezenet1_1", "M")}
    assert [f["layer"] for f in RunFolder(run).failures()] == ["M"]
    # fixed: the rerun runs only the failed cell and clears its error record
    flag.unlink()
    r2 = sweep(cfg, run, progress=False)
    assert (r2.skipped, r2.finished, r2.failed) == (7, 1, [])
    assert not (run / "cells/fake/squeezenet1_1/M.error.json").exists() and RunFolder(run).failures() == []
    assert len(pd.read_csv(run / "results.csv")) == 16


def test_other_settings_are_refused_and_resume_reuses_the_config(tmp_path):
    run = tmp_path / "run"
    sweep(write_config(tmp_path / "a.toml", archs=["squeezenet1_1"], layers=["E"]), run, progress=False)
    other = write_config(tmp_path / "b.toml", archs=["squeezenet1_1"], layers=["E"], datasets=["x"])
    with pytest.raises(ValueError, match="other settings"):
        sweep(other, run, progress=False)
    r = sweep(None, run, resume=True, progress=False)
    assert (r.planned, r.skipped) == (1, 1)


def _cell_counts(df):
    return df.groupby(["benchmark", "arch", "layer", "dataset", "metric"]).size()


def test_sigkill_mid_run_then_rerun_gives_every_cell_once(tmp_path):
    cfg = write_config(tmp_path / "c.toml", benches=("fa", "fb"), sleep=1.0)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lossnets", "sweep", "--config", str(cfg), "--out", str(run), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not list((run / "cells").glob("*/*/*.csv")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list((run / "cells").glob("*/*/*.csv"))
    assert 0 < len(done) < 16, "the kill should land mid-run"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{len(done)} already done" in again.stdout
    df = pd.read_csv(run / "results.csv")
    counts = _cell_counts(df)
    assert len(counts) == 16 * 2 and (counts == 1).all()


def test_cli_exit_code_and_merge(tmp_path):
    flag = tmp_path / "broken"
    flag.touch()
    cfg = write_config(tmp_path / "c.toml", archs=["squeezenet1_1"], layers=["E", "S"], fail=["squeezenet1_1/S"],
                       fail_while=str(flag))
    from lossnets.cli import main
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--config", str(cfg), "--out", str(tmp_path / "a"), "--quiet"])
    assert e.value.code == 1
    flag.unlink()
    # machine B runs the other cell and (later) the same one again
    assert main(["sweep", "--config", str(cfg), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a = pd.read_csv(tmp_path / "a" / "results.csv")
    b = pd.read_csv(tmp_path / "b" / "results.csv")
    assert len(a) == 2 and len(b) == 4
    assert main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "a")]) == 0
    m = pd.read_csv(tmp_path / "a" / "results.csv")
    assert len(m) == 4 and (_cell_counts(m) == 1).all()
    # the later run wins the shared cell whole
    pd.testing.assert_frame_equal(m.sort_values(["layer", "dataset"]).reset_index(drop=True),
                                  b.sort_values(["layer", "dataset"]).reset_index(drop=True))
    assert RunFolder(tmp_path / "a").failures() == []
    # a run folder holding only results.csv merges too
    only = tmp_path / "c"
    only.mkdir()
    b.to_csv(only / "results.csv", index=False)
    assert len(merge([only], tmp_path / "d")) == 4


def test_made_data_is_labelled_synthetic(tmp_path):
    made = tmp_path / "made" / "train"
    made.mkdir(parents=True)
    (tmp_path / "made" / "README.txt").write_text("Super-resolution demo data made by lossnets (...)\n")
    real = tmp_path / "real"
    real.mkdir()
    cfg = tmp_path / "c.toml"
    base = f'benchmark = "{FAKE}"\n'
    cfg.write_text('[sweep]\narchs = ["squeezenet1_1"]\nlayers = ["E"]\nweights = "random"\ndevice = "cpu"\n'
                   f'[a]\n{base}name = "a"\nroot = "made/train"\n[b]\n{base}name = "b"\nroot = "real"\n')
    c = SweepConfig.from_toml(cfg)
    # the fake then writes no data column, like a benchmark that does not know
    c = replace(c, jobs=tuple(replace(j, settings=replace(j.settings, data=None)) for j in c.jobs))
    assert [j.synthetic for j in c.jobs] == [True, False]
    df = sweep(c, tmp_path / "run", progress=False).table
    assert set(df[df.benchmark == "a"]["data"]) == {"synthetic"} and df[df.benchmark == "b"]["data"].isna().all()


def test_similarity_sweep_on_made_bapps_then_report(tmp_path):
    pytest.importorskip("lossnets.benchmarks.similarity.benchmark")
    from lossnets.benchmarks.similarity.made import make_bapps
    from lossnets.benchmarks.sweep.report import write_report
    make_bapps(tmp_path / "bapps", size=2)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sweep]\narchs = ["squeezenet1_1"]\nlayers = ["E", "L"]\nweights = "random"\ndevice = "cpu"\n'
                   '[similarity]\ndata = "bapps"\n')
    r = sweep(cfg, tmp_path / "run", progress=False)
    assert (r.finished, r.failed) == (2, [])
    df = r.table
    assert {"2afc/val", "jnd/val"} <= set(df.dataset) and set(df.data) == {"synthetic"}
    assert not df.duplicated(key_columns(df)).any()
    out = write_report(tmp_path / "run")
    md = (out / "report.md").read_text()
    assert "SYNTHETIC" in md and "| squeezenet1_1 | 1.00 | 1.00 |" in md


def test_the_training_benchmarks_sweep_and_report_beside_tables_x_and_xi(tmp_path):
    from lossnets.benchmarks.autoencoder.made import make_svhn
    from lossnets.benchmarks.segmentation.made import make_roads
    from lossnets.benchmarks.sweep.report import write_report
    make_roads(tmp_path / "roads", n_train=4, n_valid=1, n_test=1, size=48)
    make_svhn(tmp_path / "svhn", n_train=30, n_test=10, n_extra=20)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sweep]\narchs = ["squeezenet1_1"]\nlayers = ["E", "L"]\nweights = "random"\ndevice = "cpu"\n'
                   '[segmentation]\ndata = "roads"\nepochs = 1\nbatch = 4\nsize = 32\n'
                   '[autoencoder]\ndata = "svhn"\nepochs = 1\nbatch = 8\nmlp_epochs = 1\n')
    r = sweep(cfg, tmp_path / "run", progress=False)
    assert (r.finished, r.failed) == (4, [])
    df = r.table
    assert set(df.benchmark) == {"segmentation", "autoencoder"} and set(df.data) == {"synthetic"}
    assert not df.duplicated(key_columns(df)).any()  # the per-MLP rows differ by their mlp column
    md = (write_report(tmp_path / "run", plots=False) / "report.md").read_text()
    assert "### Table X: segmentation mrd quality" in md and "### Table XI: autoencoder svhn accuracy" in md


def test_missing_weights_fail_every_cell_with_the_message(tmp_path, monkeypatch):
    import lossnets.engine as eng
    built = []
    orig = eng.LossNetwork

    class Counting(orig):
        def __init__(self, *a, **k):
            built.append(a[1])
            super().__init__(*a, **k)
    monkeypatch.setattr(eng, "LossNetwork", Counting)
    cfg = write_config(tmp_path / "c.toml", archs=["squeezenet1_1"], layers=["E", "L"])
    cfg.write_text(cfg.read_text().replace('weights = "random"', 'weights = "nope.pt"'))
    r = sweep(cfg, tmp_path / "run", progress=False)
    assert r.finished == 0 and len(r.failed) == 2 and "nope.pt does not exist" in r.failed[0].error
    assert built == [("E", "L")]  # not retried tap by tap: no tap causes a missing file
    assert len(pd.read_csv(tmp_path / "run" / "results.csv")) == 0


def test_a_cache_that_cannot_be_opened_is_one_warning_and_the_run_goes_on(tmp_path):
    from lossnets.cache import CacheWarning
    cfg = write_config(tmp_path / "c.toml", archs=["squeezenet1_1"], layers=["E", "L"], extra='cache = "nosuch://x"')
    with pytest.warns(CacheWarning, match=r"cannot open the feature cache nosuch://x \(.*\); running without it"):
        r = sweep(cfg, tmp_path / "run", progress=False)
    assert (r.finished, r.failed) == (2, []) and set(r.table["cache"].fillna("")) == {""}
