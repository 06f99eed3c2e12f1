"""lossnets.benchmarks: datasets, the four benchmarks, the sweep and the report."""
