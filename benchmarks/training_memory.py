"""Memory of a lockstep run, estimated before it starts, and the rounds of taps that fit (``training.train_lockstep``).

Per tap (one model per tap, all alive together): the model's parameters, gradients and Adam's two moments
(4 x its parameter bytes), its best checkpoint (parameters and buffers, a host copy) and its target features of one
batch (fp32). Shared: the loss network's weights (the generated side of every tap shares them, ``LossNetwork.sub``;
already allocated when the run is planned) and the activations of one training step (the models step one after
another), measured by a dry run of the task's loss and its backward pass on the meta device, through the loss
network cut at all of its taps (the deepest tap's step, the largest). Validation batches are not counted.

When every tap does not fit in the memory available now (with HEADROOM; on a CPU divided by CPU_OVERHEAD, what the
process's peak RSS was measured to take beyond its tensors), the taps run in rounds, in order: a
round's models train together, then drop their gradients and optimiser state (their parameters and best
checkpoints stay for the scoring). A tap that does not fit even alone is a :class:`DoesNotFit` error.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from lossnets.engine import LossNetwork
from lossnets.engine.forms import cut
from lossnets.engine.profiler import PeakTensorMemory
from lossnets.errors import ConfigError

HEADROOM = 0.9  # plan within this share of the memory available (allocator slack, validation, the data)
# a CPU process's peak RSS rose this much over the tensors a run allocates (glibc's arenas keep freed activations,
# oneDNN's buffers): measured 1.7x-2.7x on superres with resnet18's block taps at 96 and 192 px (T_memory notes)
CPU_OVERHEAD = 2.5
GIB = 2**30


class DoesNotFit(ConfigError, MemoryError):
    """A lockstep run's estimated memory exceeds what the device has available."""


def available_bytes(device: torch.device) -> int:
    """Free memory now: the CUDA device's (``torch.cuda.mem_get_info``), else the host's MemAvailable (Linux; free
    pages elsewhere), capped by the cgroup v2 limit of this process where one is set."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        free = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError):
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return free


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB // 10 else f"{n / 2**20:.1f} MiB"


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _meta(x):
    return type(x)(_meta(v) for v in x) if isinstance(x, (tuple, list)) else x.to("meta")


@dataclass(frozen=True)
class TapCost:
    """Bytes of one tap's model in a lockstep run (see the module docstring)."""
    net: LossNetwork
    layer: str
    params: int  # the model's parameters
    checkpoint: int  # its best state (parameters and buffers), kept on the host
    targets: int  # its target features of one batch

    def during(self, device: torch.device) -> int:
        """While its round trains: parameters, gradients, two Adam moments, targets (+ the checkpoint on a CPU)."""
        return 4 * self.params + self.targets + (self.checkpoint if device.type == "cpu" else 0)

    def after(self, device: torch.device) -> int:
        """After its round: the parameters (+ the checkpoint on a CPU)."""
        return self.params + (self.checkpoint if device.type == "cpu" else 0)


def _dry_run(net: LossNetwork, task, batch, seed: int) -> tuple[int, dict[str, int]]:
    """Peak bytes of one step's loss and backward pass through ``net`` cut at all its taps, and each tap's target
    bytes, on the meta device (nothing allocated, no weights loaded); 0 for the step, with a warning, where the
    task's loss cannot run there."""
    body = cut(net.arch.build(net.fixed_size, meta=True), net.taps)
    model = task.build_model(seed, torch.device("meta"))
    inputs, images = _meta(batch.inputs), batch.target.to("meta").float()
    with torch.no_grad():
        targets = body(net.resize(images))
    first, sizes = net.layers[0], {k: v.numel() * 4 for k, v in targets.items()}
    try:
        with PeakTensorMemory(device="meta") as mode:
            task.loss(model, inputs, lambda x: body(net.resize(x))[first], targets[first]).backward()
    except (RuntimeError, NotImplementedError) as e:  # a loss that reads values (.item(), data-dependent branches)
        warnings.warn(f"{task.name}: its loss does not run on the meta device ({str(e).splitlines()[0]}); the "
                      "memory estimate leaves out one training step's activations", stacklevel=4)
        return 0, sizes
    return mode.peak, sizes


@dataclass(frozen=True)
class MemoryPlan:
    """The estimate of a lockstep run and its rounds (lists of taps, in order) within ``available`` bytes."""
    benchmark: str
    device: torch.device
    available: int  # bytes of tensors planned within
    free: int | None  # the device's free memory that ``available`` came from (None: given by the caller)
    step: int  # activations of one training step (the largest)
    taps: tuple[TapCost, ...]
    rounds: tuple[tuple[TapCost, ...], ...]

    @property
    def need(self) -> int:
        """Bytes for every tap in one round."""
        return self.step + sum(t.during(self.device) for t in self.taps)

    def summary(self) -> str:
        per = max(t.during(self.device) for t in self.taps)
        archs = ", ".join(dict.fromkeys(t.net.arch.name for t in self.taps))
        source = ""
        if self.free is not None:
            cpu = f", /{CPU_OVERHEAD} for a CPU process's allocator overhead" if self.device.type == "cpu" else ""
            source = f" (of {_gib(self.free)} free: x{HEADROOM}{cpu})"
        return (f"{len(self.taps)} tap(s) of {archs} need an estimated {_gib(self.need)} on {self.device} (per tap up "
                f"to {_gib(per)}: model, gradients, Adam state, targets of one batch"
                f"{', best checkpoint' if self.device.type == 'cpu' else ''}; one step's activations "
                f"{_gib(self.step)}), {_gib(self.available)} available for tensors{source}")


def _rounds(taps: list[TapCost], budget: int, step: int, device: torch.device) -> list[tuple[TapCost, ...]]:
    rounds, current, kept = [], [], 0
    for t in taps:
        if current and kept + step + sum(c.during(device) for c in current + [t]) > budget:
            rounds.append(tuple(current))
            kept += sum(c.after(device) for c in current)
            current = []
        current.append(t)
    return rounds + [tuple(current)] if current else rounds


def plan(nets: list[LossNetwork], task, *, seed: int = 0, available: int | None = None) -> MemoryPlan:
    """Estimate the memory of training ``task`` in lockstep on every tap of ``nets`` and split the taps into
    rounds that fit ``available`` bytes of tensors (default: what the device has free now, times HEADROOM, divided
    by CPU_OVERHEAD on a CPU); DoesNotFit when a round of one tap does not."""
    device = nets[0].device
    free = available_bytes(device) if available is None else None
    if free is not None:
        available = int(HEADROOM * free / (CPU_OVERHEAD if device.type == "cpu" else 1))
    model = task.build_model(seed, torch.device("meta"))
    params = _nbytes(model.parameters())
    checkpoint = params + _nbytes(model.buffers())
    batch = next(task.batches(seed))
    step, taps = 0, []
    for net in nets:
        peak, targets = _dry_run(net, task, batch, seed)
        step = max(step, peak)
        taps += [TapCost(net, layer, params, checkpoint, targets[layer]) for layer in net.layers]
    rounds = _rounds(taps, available, step, device)
    result = MemoryPlan(task.name, device, available, free, step, tuple(taps), tuple(rounds))
    kept = 0
    for r in rounds:
        if len(r) == 1 and kept + step + r[0].during(device) > available:
            t, earlier = r[0], taps.index(r[0])
            raise DoesNotFit(
                f"{task.name}: {result.summary()}; one tap alone ({t.net.arch.name} {t.layer}) needs "
                f"{_gib(step + t.during(device))}" + (f" beside the {earlier} models of earlier rounds "
                                                      f"({_gib(kept)})" if earlier else "") +
                ": use a smaller --batch or --size, fewer taps per run (--layers; run the others as another "
                "group), or a device with more memory")
        kept += sum(t.after(device) for t in r)
    return result


__all__ = ["DoesNotFit", "MemoryPlan", "TapCost", "HEADROOM", "available_bytes", "plan"]
