"""lossnets.benchmarks: one package per benchmark, and the pieces they share (training engine, image metrics,
data, sweep)."""
