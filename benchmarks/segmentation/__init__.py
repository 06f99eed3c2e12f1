"""Benchmark 3: road delineation on Massachusetts Roads (Mosinska et al. 2018) trained with each loss network.

``settings.py``: its contract (settings and registration record); ``benchmark.py``: its entry points."""
