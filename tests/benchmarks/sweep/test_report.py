"""The report: ranking rule (checked against the paper's Table III), best taps, plots, caveats, and its tables as a
browser shows them (parsed from report.html)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from lossnets.benchmarks.sweep import report as rp
from lossnets.benchmarks.sweep.results import paper_results
from lossnets.cli import main

# paper Table III, average ranking per benchmark (1 similarity, 2 superres, 3 segmentation, 4 autoencoder)
TABLE_III = {"vgg11": [2.5, 2.33, 2.67, 6], "vgg19": [7, 4.25, 1.67, 1.5], "squeezenet1_1": [3.5, 1.17, 8, 8.5],
             "densenet121": [10.5, 10.5, 13.67, 8.5], "inception_v3": [10.5, 11.83, 4.67, 11]}


def test_ranking_rule_reproduces_table_iii_from_the_published_figures():
    r = rp.ranking(paper_results().assign(weights="imagenet")).set_index("arch")
    assert list(r.columns) == ["similarity", "superres", "segmentation", "autoencoder", "all"]
    for arch, want in TABLE_III.items():
        # the published figures are rounded, which makes a few more ties than the paper had
        np.testing.assert_allclose(r.loc[arch].iloc[:4].to_numpy(float), want, atol=0.26)
    assert r.index[0] == "vgg11" and r.index[-1] == "densenet121"


def made_table(weights="random", data="synthetic"):
    rng = np.random.default_rng(0)
    rows = []
    for a in ["alexnet", "squeezenet1_1"]:
        for i, layer in enumerate("ESML"):
            for d, m in [("2afc/val", "2afc"), ("jnd/val", "jnd_map"), ("2afc/val/cnn", "2afc")]:
                rows.append(dict(benchmark="similarity", arch=a, layer=layer, weights=weights, dataset=d, metric=m,
                                 value=0.6 + 0.01 * i + (0.1 if a == "alexnet" else 0) + 0.001 * rng.random(),
                                 data=data))
            for scale in (4, 8):
                rows.append(dict(benchmark=f"superres_x{scale}", arch=a, layer=layer, weights=weights, dataset="set5",
                                 metric="psnr", value=25 - i + (1 if a == "squeezenet1_1" else 0), data=data))
    return pd.DataFrame(rows)


def test_ranking_best_taps_and_comparison_of_a_made_table():
    df = made_table()
    r = rp.ranking(df).set_index("arch")
    assert r.loc["alexnet", "similarity"] == 1 and r.loc["squeezenet1_1", "superres"] == 1
    assert r.loc["alexnet", "all"] == r.loc["squeezenet1_1", "all"] == 1.5
    # only the aggregate (the paper's) scores are ranked, not the per-subset rows
    s = rp.score_rows(df)
    assert set(s[s.benchmark == "similarity"].paper_dataset) == {"bapps/2afc", "bapps/jnd"}
    assert set(s.benchmark) == {"similarity", "superres_x4", "superres_x8"} and set(s.group) == {"similarity", "superres"}
    taps = rp.best_taps(df).set_index("arch")
    assert taps.loc["alexnet", "similarity bapps/2afc 2afc"] == "L (paper M)"
    assert taps.loc["alexnet", "superres_x4 set5 psnr"].startswith("E (paper ")
    c = rp.compare(df)
    hit = c[(c.arch == "alexnet") & (c.layer == "E") & (c.dataset == "2afc/val")].iloc[0]
    assert hit.paper_value == pytest.approx(0.643) and hit.difference == pytest.approx(hit.value - 0.643)
    assert not c.comparable.any()
    assert rp.compare(made_table("imagenet", "bapps")).comparable.all()
    assert len(rp.caveats(df)) == 2 and rp.caveats(made_table("imagenet", "bapps")) == []

    # an architecture that did not run every benchmark gets no overall rank; the paper's ranking uses the same cells
    part = df[~((df.arch == "alexnet") & df.benchmark.str.startswith("superres"))]
    r = rp.ranking(part).set_index("arch")
    assert np.isnan(r.loc["alexnet", "all"]) and r.index[0] == "squeezenet1_1"
    p = rp.paper_ranking(part).set_index("arch")
    assert np.isnan(p.loc["alexnet", "superres"]) and p.loc["squeezenet1_1", "superres"] == 1


def test_report_renders_with_plots_and_warnings(tmp_path):
    made_table().to_csv(tmp_path / "results.csv", index=False)
    assert main(["report", str(tmp_path)]) == 0
    out = tmp_path / "report"
    md = (out / "report.md").read_text()
    assert "WARNING" in md.split("## Architecture ranking")[0] and "random" in md and "SYNTHETIC" in md
    assert "(paper)" in md and "## Best tap per architecture" in md and "difference" in md
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 * 4 and all(p.stat().st_size > 5000 for p in pngs)
    for p in pngs:
        assert f"]({p.name})" in md
    assert "WARNING" in (out / "report.html").read_text()
    ranking = pd.read_csv(out / "ranking.csv")
    assert {"similarity", "similarity (paper)", "all", "all (paper)"} <= set(ranking.columns)
    assert len(pd.read_csv(out / "comparison.csv")) == len(made_table())


def test_per_benchmark_tables_put_the_paper_beside_each_cell():
    rows = [dict(benchmark="segmentation", arch="vgg11", layer="E", weights="imagenet", dataset="mrd", metric=m,
                 value=v) for m, v in [("correctness", 0.3), ("relaxed_quality", 0.5)]]
    tables = rp.benchmark_tables(pd.concat([made_table(), pd.DataFrame(rows)], ignore_index=True))
    seg = tables["Table X: segmentation mrd correctness"].set_index("arch")
    assert seg.loc["vgg11", "E"] == "0.300 (0.310)"  # Table X's 31.0 %, as a fraction, at the table's precision
    assert list(seg.columns) == ["E"]  # the taps this score ran, no column of "-"
    assert not any("relaxed" in t for t in tables)  # the paper has no relaxed metric: the paper's scores are shown
    sim = tables["Table V: similarity bapps/2afc 2afc"].set_index("arch")
    assert list(sim.index) == ["alexnet", "squeezenet1_1"] and list(sim.columns) == list("ESML")
    assert sim.loc["alexnet", "E"].endswith("(0.643)") and sim.loc["alexnet", "E"].startswith("0.70")
    assert paper_results().query("benchmark == 'segmentation'")["value"].between(0, 1).all()


class Tables(HTMLParser):
    """Every <table> of a page as (header cells, rows of cells), the cells' text."""
    def __init__(self, text):
        super().__init__()
        self.tables, self.cell = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr" and self.tables:
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr":
            head, rows = self.tables[-1]
            (rows if head else head).extend([self.row] if head else self.row)


def test_report_tables_as_a_browser_shows_them(tmp_path):
    """No all-empty column or unnamed header, every plain number of a column at one precision, ranks at 2 decimals,
    the same cells in report.md and report.html."""
    made_table().to_csv(tmp_path / "results.csv", index=False)
    out = rp.write_report(tmp_path / "results.csv", tmp_path / "report", plots=False)
    tables = Tables((out / "report.html").read_text()).tables
    assert len(tables) >= 5
    for head, rows in tables:
        assert all(head) and all(len(r) == len(head) for r in rows)
        for j, name in enumerate(head):
            cells = [r[j] for r in rows]
            assert any(cells), f"column {name!r} is empty in every row"
            places = {len(c.partition(".")[2]) for c in cells if re.fullmatch(r"-?\d+\.\d+", c)}
            assert len(places) <= 1, f"column {name!r} mixes precisions {places}"
    ranking_head, ranking = tables[0]
    assert ranking_head[:3] == ["arch", "similarity", "similarity (paper)"]
    assert all(re.fullmatch(r"\d+\.\d\d", c) for r in ranking for c in r[1:] if c)
    md = (out / "report.md").read_text()
    for r in ranking:
        assert "| " + " | ".join(r) + " |" in md
