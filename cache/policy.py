"""Which taps are worth caching: recomputing must cost more than reading the features back.

The measure is FLOPs of the network prefix up to the tap per byte of stored features (counted with
``torch.utils.flop_counter`` on the meta device, so no weights or memory are needed; the four taps of
an architecture from one trace). It is nearly independent of the input size (both grow with H*W). A
tap is cached under ``auto`` when it exceeds ``FLOPS_PER_BYTE_THRESHOLD`` = (compute FLOP/s) / (read
bytes/s) measured on this machine by ``benchmarks/speed/cache_bench.py`` (see
``benchmarks/speed/results/cache_policy.csv``).
"""
from __future__ import annotations

from functools import cache

import torch
import torchvision
from torch import fx
from torch.utils.flop_counter import FlopCounterMode

from lossnets.engine.memo import memo_get, memo_put
from lossnets.engine.registry import get_architecture, meta_model
from lossnets.engine.truncate import truncate

POLICIES = ("auto", "always", "never")
# Measured by cache_bench.py on the shared 2-core CPU CI machine (1 torch thread, 256 64x64 patches,
# alexnet/squeezenet1_1/vgg16/resnet18, zstd1 fp16): median compute 17 GFLOP/s over median warm
# read-back 79 MB/s (the whole get_or_compute path) = 216 FLOPs/byte; rounded down. On a GPU compute
# is far faster than reading back: re-measure there and pass ``threshold=``.
FLOPS_PER_BYTE_THRESHOLD = 200.0


def prefix_flops(gm: fx.GraphModule, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Per output of a truncated graph: (FLOPs of the ops it depends on, values per image), one pass.

    Each node's FLOPs are counted as it runs; a tap's prefix is the set of its ancestors in the graph,
    so a branch that runs before a tap without feeding it is not charged to it."""
    own: dict[fx.Node, int] = {}
    with FlopCounterMode(display=False) as counter:
        class PerNode(fx.Interpreter):
            def run_node(self, n):
                before = counter.get_total_flops()
                out = super().run_node(n)
                own[n] = counter.get_total_flops() - before
                return out
        outputs = PerNode(gm).run(x)
    output = next(n for n in gm.graph.nodes if n.op == "output")
    result = {}
    for name, node in output.args[0].items():
        seen, stack = set(), [node]
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(n.all_input_nodes)
        result[name] = (sum(own.get(n, 0) for n in seen), outputs[name][0].numel())
    return result


@cache
def _registered_taps(arch: str, size: int) -> dict[tuple[str, str], tuple[int, int]]:
    """prefix_flops of every registered tap of ``arch`` from one trace, keyed by (module, layer); kept in
    ``$LOSSNETS_HOME/prefix_flops.json`` (per torch and torchvision version) for the next process."""
    spec = get_architecture(arch)
    memo_key = f"{arch}|{size}|torch{torch.__version__}|torchvision{torchvision.__version__}"
    counts = memo_get("prefix_flops", memo_key)
    if counts is None:
        gm = truncate(meta_model(spec), {t.module: t.layer for t in spec.taps})
        counts = prefix_flops(gm, torch.empty(1, 3, size, size, device="meta"))
        memo_put("prefix_flops", memo_key, counts)
    return {(t.module, t.layer): tuple(counts[t.layer]) for t in spec.taps}


@cache
def prefix_flops_per_byte(arch: str, module: str, layer: str, size: int = 224, bytes_per_value: int = 2) -> float:
    """FLOPs of the prefix up to ``module`` per byte of its output (at ``size`` x ``size``, one image)."""
    flops, values = _registered_taps(arch, size).get((module, layer), (None, None))
    if flops is None:  # an ad-hoc tap
        prefix = truncate(meta_model(get_architecture(arch)), {module: layer})
        flops, values = prefix_flops(prefix, torch.empty(1, 3, size, size, device="meta"))[layer]
    return flops / (values * bytes_per_value)


def should_cache(policy: str, arch: str, module: str, layer: str, size: int = 224,
                 threshold: float = FLOPS_PER_BYTE_THRESHOLD, bytes_per_value: int = 2) -> bool:
    """Whether a tap is stored under ``policy`` (auto: FLOPs per stored byte above ``threshold``)."""
    if policy not in POLICIES:
        raise ValueError(f"cache_policy must be one of {POLICIES}, got {policy!r}")
    if policy != "auto":
        return policy == "always"
    return prefix_flops_per_byte(arch, module, layer, size, bytes_per_value) > threshold
