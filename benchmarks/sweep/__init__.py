"""Running the grid of (benchmark, architecture, tap) cells: its config, plan, worker, run folder, executors and
merge; the results schema and the report."""
