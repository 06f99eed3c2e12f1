"""Benchmark 4: autoencoders trained with each loss network, scored by downstream MLPs on SVHN and STL-10.

``settings.py``: its contract (settings and registration record); ``benchmark.py``: its entry points."""
