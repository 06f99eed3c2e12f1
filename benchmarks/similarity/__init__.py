"""Benchmark 1: BAPPS perceptual similarity (2AFC and JND) of each loss network.

``settings.py``: its contract (settings and registration record); ``benchmark.py``: its entry points."""
