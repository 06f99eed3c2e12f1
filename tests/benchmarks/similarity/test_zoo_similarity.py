"""BAPPS similarity over the zoo: one network per family (its cheapest by torchvision's GFLOPS) gives finite 2AFC
and JND rows at every stage tap on the made set (SYNTHETIC judgments, seeded random weights)."""
import math

import pytest

from lossnets import LossNetwork
from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.engine.registry import zoo


def cheapest_per_family() -> list[str]:
    best: dict[str, tuple[float, str]] = {}
    for name, arch in zoo().items():
        cost = (arch.recipe().gflops, name)
        best[arch.family] = min(best.get(arch.family, cost), cost)
    return sorted(name for _, name in best.values())


@pytest.fixture(scope="module")
def bapps(tmp_path_factory):
    return make_bapps(tmp_path_factory.mktemp("bapps"), size=1, jnd_size=1, seed=3)


def test_one_network_per_family():
    assert len(cheapest_per_family()) == len({a.family for a in zoo().values()}) == 21


@pytest.mark.parametrize("arch", cheapest_per_family())
def test_every_stage_tap_gives_finite_rows(arch, bapps, one_thread):
    net = LossNetwork(arch, layers=["E", "S", "M", "L"], weights="random", seed=0, device="cpu")
    rows = similarity.run(net, str(bapps), progress=False)
    assert set(rows["layer"]) == {"E", "S", "M", "L"}
    assert set(rows["metric"]) == {"2afc", "jnd_map"}
    assert rows["value"].map(math.isfinite).all() and rows["data"].eq("synthetic").all()
