"""Runs triton_cases.py in a subprocess with TRITON_INTERPRET=1 (it must be set before triton is
imported), so the Triton kernels are tested on CPU tensors without touching this process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_triton_kernels_under_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    cases = Path(__file__).with_name("triton_cases.py")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(cases)],
                       env=env, capture_output=True, text=True, timeout=300, cwd=cases.parent)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "passed" in r.stdout, out[-6000:]
