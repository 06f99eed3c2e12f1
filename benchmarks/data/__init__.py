"""Shared data plumbing of the benchmarks: image files, photo patches for made sets, verified resumable downloads."""
