"""lossnets list over the zoo: every tap, or every recipe, from the data files, also as a CSV file."""
import csv

from lossnets.engine.registry import zoo


def test_list_zoo_and_recipes_to_csv(tmp_path, capsys):
    from lossnets.cli import main
    main(["list", "--zoo", "--out", str(tmp_path / "taps.csv")])
    with open(tmp_path / "taps.csv", newline="") as f:
        taps = list(csv.DictReader(f))
    assert len(taps) == sum(len(a.taps) for a in zoo().values()) and {r["arch"] for r in taps} == set(zoo())
    assert {"module", "channels", "form", "stride", "rel_depth"} <= set(taps[0])
    main(["list", "--recipes", "--archs", "resnet50", "--out", str(tmp_path / "recipes.csv")])
    with open(tmp_path / "recipes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["weights"], r["default"]) for r in rows] == [("imagenet:IMAGENET1K_V1", "True"),
                                                            ("imagenet:IMAGENET1K_V2", "False")]
    assert "imagenet:IMAGENET1K_V2" in capsys.readouterr().out

