"""lossnets.kernels: fused perceptual distance and feature loss."""
