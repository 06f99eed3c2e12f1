"""Benchmark 4: autoencoders trained with each loss network, scored by downstream MLPs on SVHN and STL-10."""
from .benchmark import run

__all__ = ["run"]
