"""Shared test settings: deterministic, quiet, single-threaded enough for a 2-core CI machine."""
import os
import shutil
import tempfile

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
# the store of random-weight prefixes starts empty for every test session (subprocesses inherit it)
LOSSNETS_HOME = os.environ["LOSSNETS_HOME"] = tempfile.mkdtemp(prefix="lossnets-home-")
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_sessionfinish(session, exitstatus):
    """The session's store of random-weight prefixes goes with it (a full run leaves ~2 GB there)."""
    shutil.rmtree(LOSSNETS_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Every test runs in its own empty folder, so a command's default outputs (``similarity.csv`` and its
    ``similarity.run/``) never land in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torchvision download cache, so no test sees real weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny ops: faster than two, above all on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
