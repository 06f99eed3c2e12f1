"""Benchmark 2: super-resolution (Johnson et al. 2016) trained with each loss network.

``settings.py``: its contract (settings and registration record); ``benchmark.py``: its entry points."""
