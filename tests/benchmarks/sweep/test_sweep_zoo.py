"""Zoo architectures in a sweep: archs = "zoo", weights = "imagenet:all" (one loss network per recipe of each
architecture), and a run over zoo architectures of several families with its report."""
import pytest

from lossnets.benchmarks.sweep.config import SweepConfig
from lossnets.benchmarks.sweep.grid import sweep
from lossnets.benchmarks.sweep.plan import groups, plan
from lossnets.benchmarks.sweep.report import write_report
from lossnets.engine import get_architecture

pytestmark = pytest.mark.usefixtures("one_thread")


def test_zoo_archs_and_every_recipe_plan_one_network_per_recipe(tmp_path):
    assert len(SweepConfig.from_dict({"sweep": {"archs": "zoo"}, "similarity": {"data": str(tmp_path)}}).archs) == 80
    c = SweepConfig.from_dict({"sweep": {"archs": ["resnet50", "vit_b_16", "alexnet"], "layers": ["E", "L"],
                                         "weights": "imagenet:all"}, "similarity": {"data": str(tmp_path)}})
    networks = [(g.arch, g.weights) for g in groups(c, plan(c), tmp_path)]
    assert networks == [(a, r.spec) for a in ("resnet50", "vit_b_16", "alexnet") for r in get_architecture(a).recipes]
    assert len(plan(c)) == 2 * len(networks) == 2 * 6


def test_a_sweep_over_zoo_architectures_and_its_report(tmp_path):
    archs = ["mobilenet_v3_small", "squeezenet1_0", "regnet_x_400mf", "shufflenet_v2_x0_5"]
    c = SweepConfig.from_dict({"sweep": {"archs": archs, "weights": "random"},
                               "fake": {"benchmark": "test_sweep_run_dir_full:FAKE"}})
    table = sweep(c, tmp_path / "run", progress=False).table
    assert sorted(set(table["arch"])) == sorted(archs) and len(table) == 4 * len(archs)
    assert table["value"].notna().all() and (table["weights"] == "random").all()
    report = (write_report(tmp_path / "run") / "report.md").read_text()
    assert all(a in report for a in archs)
