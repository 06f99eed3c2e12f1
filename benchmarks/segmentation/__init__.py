"""Benchmark 3: road delineation on Massachusetts Roads (Mosinska et al. 2018) trained with each loss network."""
from .benchmark import run

__all__ = ["run"]
