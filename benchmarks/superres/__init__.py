"""Benchmark 2: super-resolution (Johnson et al. 2016) trained with each loss network."""
from .benchmark import run

__all__ = ["run"]
