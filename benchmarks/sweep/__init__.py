"""The sweep over (benchmark, architecture, tap) cells: runner, executors, results table, report, demo."""
