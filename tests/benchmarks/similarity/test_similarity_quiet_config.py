"""The similarity benchmark: progress=False silences the caller's statistics store too; rows carry the config."""
import pytest
import torch

from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.cache import StatisticsStore
from lossnets.engine import LossNetwork
from lossnets.engine.lin_weights import save_lin_weights


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_bapps(make_bapps(tmp_path_factory.mktemp("sim"), size=2, seed=5), progress=False)


def test_no_bar_from_the_cache_and_a_config_column(data, tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    net = LossNetwork("squeezenet1_1", ("E",), "random", seed=1, device="cpu")
    store = StatisticsStore(str(tmp_path / "cache"), statistic="lpips-channel-m", chunk_items=2)
    table = similarity.run(net, data, cache=store, batch_size=4, progress=False)
    assert capfd.readouterr().err == "" and store.progress and store.counts["computed"] > 4
    config = f"{net.config} distance=lpips range=uint8 resize=64x64(PIL bilinear)"
    assert set(table["config"]) == {config}
    save_lin_weights(tmp_path / "w.pth", [torch.rand(64)])
    weighted = similarity.run(net, data, lin=str(tmp_path / "w.pth"), progress=False)
    assert set(weighted[weighted["lin"] == "none"]["config"]) == {config}
    assert weighted[weighted["lin"] != "none"]["config"].str.contains(" lin=w.pth@").all()
