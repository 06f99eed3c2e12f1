"""Benchmark 1: BAPPS perceptual similarity (2AFC and JND) of each loss network."""
from .benchmark import evaluate, run

__all__ = ["run", "evaluate"]
