"""Speed scripts (not installed with the library): each times the engine against the plain approach and writes
its table to ``results/``. Run one from the repository root, e.g. ``python -m benchmarks.speed.similarity_grid``."""
