"""The `lossnets data make-sr` and `lossnets superres` commands."""
import pandas as pd
import pytest

from lossnets.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_make_sr_then_superres(tmp_path, capsys):
    root = tmp_path / "sr"
    assert main(["data", "make-sr", str(root), "--n-train", "8", "--n-val", "2", "--size", "32"]) == 0
    assert "scikit-image" in (root / "README.txt").read_text()
    out = tmp_path / "sr.csv"
    argv = ["superres", "--train", str(root / "train"), "--val", str(root / "val"),
            "--test", f"Set5={root / 'test' / 'set5'}", f"bsd100={root / 'test' / 'bsd100'}",
            "--archs", "squeezenet1_1", "--layers", "E", "--weights", "random", "--device", "cpu",
            "--iterations", "2", "--size", "32", "--scale", "4", "8", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    df = pd.read_csv(out)
    assert set(df["benchmark"]) == {"superres_x4", "superres_x8"} and set(df["dataset"]) == {"set5", "bsd100"}
    assert len(df) == 2 * 2 * 2 and (df["status"] == "ok").all()
    assert f"wrote {out}" in capsys.readouterr().out
    assert main([*argv, "--resume"]) == 0 and "2 already done, 0 finished now" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out), df)


def test_superres_errors_are_clear(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["superres", "--train", str(tmp_path / "empty"), "--val", str(tmp_path / "empty"),
            "--test", f"set5={tmp_path}", "--archs", "squeezenet1_1", "--weights", "random", "--device", "cpu",
            "--size", "32", "--quiet", "--out", str(tmp_path / "x.csv")]
    assert main(argv) == 2
    assert "holds no images" in capsys.readouterr().err
    assert main(argv[:5] + ["--test", "set5"] + argv[7:]) == 2
    assert "NAME=DIR" in capsys.readouterr().err
