"""Which taps are worth caching: recomputing must cost more than reading the features back.

The measure is FLOPs of the network prefix up to the tap per byte of stored features (counted by the
engine's profiler, ``lossnets.engine.profiler.count_macs``, on the meta device, so no weights or
memory are needed). It is nearly independent of the input size (both grow with H*W). A tap is
cached under ``auto`` when it exceeds ``FLOPS_PER_BYTE_THRESHOLD`` = (compute FLOP/s) / (read
bytes/s) measured on this machine by
``benchmarks/speed/cache_bench.py`` (see ``benchmarks/speed/results/cache_policy.csv``).
"""
from __future__ import annotations

from functools import cache

import torch

from lossnets.engine.profiler import count_macs
from lossnets.engine.registry import get_architecture, meta_model
from lossnets.engine.truncate import truncate

POLICIES = ("auto", "always", "never")
# Measured by cache_bench.py on the shared 2-core CPU CI machine (1 torch thread, 256 64x64 patches,
# alexnet/squeezenet1_1/vgg16/resnet18, zstd1 fp16): median compute 17 GFLOP/s over median warm
# read-back 79 MB/s (the whole get_or_compute path) = 216 FLOPs/byte; rounded down. On a GPU compute
# is far faster than reading back: re-measure there and pass ``threshold=``.
FLOPS_PER_BYTE_THRESHOLD = 200.0


@cache
def prefix_flops_per_byte(arch: str, module: str, layer: str, size: int = 224, bytes_per_value: int = 2) -> float:
    """FLOPs of the prefix up to ``module`` per byte of its output (at ``size`` x ``size``, one image)."""
    prefix = truncate(meta_model(get_architecture(arch)), {module: layer})
    x = torch.empty(1, 3, size, size, device="meta")
    flops = 2 * count_macs(prefix, x)
    return flops / (prefix(x)[layer].numel() * bytes_per_value)


def should_cache(policy: str, arch: str, module: str, layer: str, size: int = 224,
                 threshold: float = FLOPS_PER_BYTE_THRESHOLD) -> bool:
    """Whether a tap is stored under ``policy`` (auto: FLOPs per byte above ``threshold``)."""
    if policy not in POLICIES:
        raise ValueError(f"cache_policy must be one of {POLICIES}, got {policy!r}")
    if policy != "auto":
        return policy == "always"
    return prefix_flops_per_byte(arch, module, layer, size) > threshold
