"""The command line as a new user meets it (issue 24): defaults in every --help, errors that name the problem
with exit 2, a quick start without torch, and outputs where --out says."""
import argparse
import subprocess
import sys
import time
import urllib.error
import warnings

import pandas as pd
import pytest
import torch

from lossnets.cli import build_parser, main


def _parsers(parser, name="lossnets"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from _parsers(p, f"{name} {sub}")


def test_every_help_shows_the_defaults(capsys):
    """Every option that takes a value says its default (or that it is required), the settings' fields too."""
    missing = []
    for name, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for a in parser._actions:
            if a.option_strings and a.nargs != 0:
                text = formatter._get_help_string(a) or ""
                if "default" not in text and "required" not in text and not a.required:
                    missing.append(f"{name} {a.option_strings[0]}")
    assert not missing, missing
    with pytest.raises(SystemExit):
        main(["similarity", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 64)" in out and "(default: E S M L)" in out and "(default: imagenet)" in out


STARTUP = """
import sys, time
from lossnets.cli import main
start = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("SECONDS", time.perf_counter() - start, "torch" in sys.modules, "pandas" in sys.modules)
"""


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--archs", "zoo"]])
def test_help_and_list_start_without_torch(argv):
    """`lossnets --help` and `lossnets list` import neither torch nor pandas (what made them take 3-4 s); the
    bound on the time is generous (a shared CPU), the imports are the check."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", STARTUP, *argv], capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    seconds, torch_loaded, pandas_loaded = out.splitlines()[-1].split()[1:]
    assert (torch_loaded, pandas_loaded) == ("False", "False")
    assert wall < 10, f"lossnets {' '.join(argv)} took {wall:.1f} s"


def test_list_prints_the_catalog_of_the_registry():
    """The torch-free table has the registry's taps: the same architectures, taps, modules and channels."""
    from lossnets.engine import architectures, get_architecture
    from lossnets.engine.catalog import arch_names, list_rows
    rows = list_rows(["alex", "vit_b_16"])
    taps = [t for a in ("alexnet", "vit_b_16") for t in get_architecture(a).taps]
    assert [(r["arch"], r["layer"], r["module"], r["channels"]) for r in rows] == \
        [(t.arch, t.layer, t.module, t.channels) for t in taps]
    assert arch_names(None) == list(architectures())
    with pytest.raises(ValueError, match="unknown architecture 'vgg61'.*aliases: alex=alexnet"):
        arch_names(["vgg61"])


def test_missing_imagenet_weights_print_no_download_line(torch_home, monkeypatch, capfd):
    """Offline and without the file: the WeightsNotFoundError names file and URL, and nothing (torchvision's
    "Downloading: ..." line) is printed before it."""
    from lossnets.engine import LossNetwork, WeightsNotFoundError

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError, match="squeezenet1_1-b8a52dc0.pth"):
        LossNetwork("squeezenet1_1", layers=("E",), weights="imagenet", device="cpu")
    out, err = capfd.readouterr()
    assert "Downloading" not in out + err


@pytest.fixture(scope="module")
def bapps(tmp_path_factory):
    from lossnets.benchmarks.similarity.made import make_bapps
    return make_bapps(tmp_path_factory.mktemp("bapps") / "d", size=2, train_size=0)


def test_lin_lpips_weighs_the_lpips_set_and_scores_the_baseline_elsewhere(bapps, tmp_path, capsys):
    """--layers E lpips --lin lpips: both tap sets get baseline rows, only lpips gets lin rows; one warning line."""
    pytest.importorskip("lpips")
    out = tmp_path / "s.csv"
    assert main(["similarity", "--data", str(bapps), "--archs", "alexnet", "--layers", "E", "lpips", "--lin",
                 "lpips", "--weights", "random", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("UserWarning") == 1 and "weighs only the tap set 'lpips'" in err
    df = pd.read_csv(out)
    assert set(df[df["layer"] == "E"]["lin"]) == {"none"}
    assert set(df[df["layer"] == "lpips"]["lin"]) == {"none", *df[df["lin"] != "none"]["lin"]} and \
        (df["lin"] != "none").any()


def test_lin_lpips_warns_in_python(bapps):
    from lossnets.benchmarks.similarity.benchmark import run
    from lossnets.engine import LossNetwork
    net = LossNetwork("resnet18", layers=("E",), weights="random", device="cpu")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        df = run(net, bapps, lin="lpips", progress=False)
    assert set(df["lin"]) == {"none"} and any("weighs only the tap set 'lpips'" in str(w.message) for w in seen)


def test_cache_commands_on_a_path_without_a_cache(tmp_path, capsys):
    assert main(["cache", "ls", str(tmp_path / "typo")]) == 2
    assert "holds no feature cache: no such path" in capsys.readouterr().err
    assert main(["cache", "verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "no entry (DATASET/ARCH/TAP-HASH/meta.json)" in err


def test_data_make_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    argv = ["data", "make-bapps", str(folder), "--size", "1", "--train-size", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder} is not empty" in err and "--force" in err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert main(argv + ["--force"]) == 0 and (folder / "notes.txt").read_text() == "keep me"
    assert main(["data", "make-bapps", str(tmp_path / "new"), "--size", "1", "--train-size", "0"]) == 0


def test_profile_writes_into_the_out_folder_with_units(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "--archs", "squeezenet1_1", "--layers", "E", "--size", "32", "--batch", "1",
                 "--device", "cpu", "--out", "prof"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prof"]
    df = pd.read_csv(tmp_path / "prof" / "profile.csv")
    assert {"images_per_s", "peak_memory_mib"} <= set(df.columns) and (df["images_per_s"] > 0).all()
    assert (tmp_path / "prof" / "profile.png").stat().st_size > 1000
