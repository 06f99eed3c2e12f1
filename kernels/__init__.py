"""lossnets.kernels: fused perceptual distance and feature loss (Triton on CUDA, PyTorch elsewhere)."""
from .ops import feature_mse, perceptual_distance

__all__ = ["feature_mse", "perceptual_distance"]
