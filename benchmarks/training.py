"""The training engine of the benchmarks that train a model through a loss network (super-resolution, road
delineation, autoencoding).

One model per (loss network, tap) trains in *lockstep*: one process, one batch source, one target pass
per loss network and batch that gives every tap's target features (or the feature cache, where the
targets are fixed and its policy pays). Every model is built from the same seed, has its own optimiser
and sees the same batches, so it ends where it would have trained alone. The generated side is a pass
per model through the loss network cut at that model's tap (sharing the loss network's weights).
The run's memory is estimated before it starts (``training_memory``): taps that do not fit together train in
rounds of lockstep on the same batches, and a tap that does not fit alone is a clear error.

A benchmark says what is its own by subclassing :class:`Task`: its model, its batches, its loss terms
and its validation score. The engine owns the rest: engine options (AMP, channels_last, compile,
GradScaler for fp16), collapse (a NaN/inf loss or a task's :class:`Collapse`: recorded, the other models
go on), the history, and the best checkpoint by the validation score in the task's direction.

Public entry point: :func:`train_lockstep`.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from lossnets.cache import open_cache
from lossnets.engine import LossNetwork
from lossnets.errors import ConfigError

from . import training_memory

CONSTANT_STD = 1e-4  # an output whose per-image standard deviation stays below this is "constant"
# every training benchmark: ``paper`` reproduces the published code, ``standard`` follows the literature
PROTOCOLS = ("paper", "standard")


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of PROTOCOLS, else a ConfigError naming them."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol


class Collapse(Exception):
    """Raised by a task's ``validate`` when a model has collapsed (e.g. a constant output)."""


@dataclass(frozen=True)
class CacheKey:
    """What names a fixed target image in the feature cache besides its id: the dataset and how the pixels were made."""
    dataset: str
    preprocessing: dict


@dataclass
class Batch:
    """One training batch: ``inputs`` for the models (tensors, or a tuple of them, moved to the device by the
    engine) and ``target``, the images (N,3,H,W) the loss network sees on the target side (uint8, or float in
    [0,1]). ``ids`` name the target images when they are fixed (the same pixels every time an id comes back):
    then, with ``key``, the feature cache may serve their features (it stores uint8 targets only)."""
    inputs: Any
    target: torch.Tensor
    ids: list[str] | None = None
    key: CacheKey | None = None


class BatchSampler:
    """Seeded batches of indices: a fresh permutation each epoch, batches may straddle epochs."""

    def __init__(self, n: int, batch: int, seed: int = 0):
        if n == 0:
            raise ValueError("no training images")
        self.n, self.batch = n, batch
        self.gen = torch.Generator().manual_seed(seed)
        self.buffer = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        while len(self.buffer) < self.batch:
            self.buffer = torch.cat([self.buffer, torch.randperm(self.n, generator=self.gen)])
        idx, self.buffer = self.buffer[:self.batch], self.buffer[self.batch:]
        return idx


def check_output(out: torch.Tensor) -> None:
    """Raise :class:`Collapse` for a non-finite output or one constant over every image."""
    if not torch.isfinite(out).all():
        raise Collapse("non-finite output")
    if out.flatten(1).float().std(1).max().item() < CONSTANT_STD:
        raise Collapse("constant output")


class Task:
    """What a training benchmark supplies. Subclasses set ``name`` and ``higher_is_better`` and define
    ``build_model``, ``batches``, ``loss`` and ``validate``; ``build_optimizer`` defaults to Adam 1e-3."""
    name = "task"
    higher_is_better = True
    lr = 1e-3

    def build_model(self, seed: int, device: torch.device) -> nn.Module:
        raise NotImplementedError

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.lr)

    def batches(self, seed: int) -> Iterator[Batch]:
        """The training batches, seeded (every model of a lockstep run sees these)."""
        raise NotImplementedError

    def loss(self, model: Callable, inputs: Any, features: Callable[[torch.Tensor], torch.Tensor],
             target: torch.Tensor) -> torch.Tensor:
        """The training loss of one model on one batch. ``model`` calls the (possibly compiled) model under the
        loss network's autocast (compute the loss terms in fp32: cast its outputs); ``features(images)`` gives
        the loss network's features at this model's tap (with gradients); ``target`` the target features at
        that tap (fp32, no gradients)."""
        raise NotImplementedError

    def validate(self, model: nn.Module, trainee: "Trainee") -> float:
        """The validation score of a model (in eval mode; raise :class:`Collapse` for a collapsed one);
        ``trainee`` gives its loss network's features and targets where the score needs them."""
        raise NotImplementedError


def feature_loss(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Mean squared feature difference (``lossnets.kernels.feature_mse``, autograd-capable), in ``f``'s dtype."""
    from lossnets.kernels import feature_mse
    return feature_mse(f, g.to(f.dtype), reduction="mean")  # one dtype for the kernel (it accumulates in fp32)


@dataclass
class Trainee:
    """One model being trained against one tap of one loss network, and its record."""
    net: LossNetwork  # the (multi-tap) loss network whose target pass this model shares
    layer: str
    model: nn.Module
    opt: torch.optim.Optimizer
    step_fn: Callable  # the model, or its compiled forward
    scaler: torch.amp.GradScaler | None = None
    targets: "TargetFeatures | None" = None  # the target side of ``net`` (shared by its taps; for validation losses)
    status: str = "ok"
    best_score: float = math.nan
    best_step: int = 0
    best_state: dict | None = None
    history: list = field(default_factory=list)  # (step, loss, validation score)
    last_loss: float = math.nan

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def gen(self) -> LossNetwork:
        """The generated side: the loss network cut at this model's tap (``net`` itself if that is all it has)."""
        return self.net.sub((self.layer,))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features of the generated side at this model's tap (with gradients)."""
        return self.gen(images)[self.layer]

    def collapse(self, reason: str) -> None:
        self.status = f"collapsed: {reason}"
        self.best_state = None

    def record(self, step: int, score: float, higher_is_better: bool) -> None:
        """Append to the history and keep the state if ``score`` is the best so far."""
        self.history.append((step, self.last_loss if step else math.nan, score))
        if step == 0 or not self.ok:
            return
        better = score > self.best_score if higher_is_better else score < self.best_score
        if math.isnan(self.best_score) or better:
            self.best_score, self.best_step = score, step
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    @property
    def initial_score(self) -> float:
        return self.history[0][2] if self.history else math.nan


def build_trainees(nets: list[LossNetwork], task: Task, seed: int = 0) -> list[Trainee]:
    """One seeded model + optimiser per tap of each loss network (all initialised identically)."""
    out = []
    for net in nets:
        for layer in net.layers:
            model = task.build_model(seed, net.device)
            if net.channels_last and net.device.type == "cuda":
                model = model.to(memory_format=torch.channels_last)
            step_fn = torch.compile(model, dynamic=False) if net.compiled else model
            scaler = torch.amp.GradScaler(net.device.type) if net.amp == "fp16" else None
            out.append(Trainee(net, layer, model, task.build_optimizer(model), step_fn, scaler))
    return out


class TargetFeatures:
    """Target-side features of one loss network: from the feature cache when the batch's images are fixed (ids
    given) and the cache's policy stores every tap at their size, otherwise from one pass under no_grad (a tap
    that does not pay needs that pass anyway, and it gives the deeper taps too)."""

    def __init__(self, net: LossNetwork, cache=None):
        self.net, self.cache = net, cache
        self._pays: dict[int, bool] = {}

    def cached(self, size: int) -> bool:
        """Whether the targets of images of this size are read from the cache."""
        if self.cache is None:
            return False
        if size not in self._pays:
            self._pays[size] = self.cache.stored_layers(self.net, size) == list(self.net.layers)
        return self._pays[size]

    def __call__(self, target: torch.Tensor, ids: list[str] | None = None, key: CacheKey | None = None
                 ) -> dict[str, torch.Tensor]:
        if ids is None or key is None or not self.cached(int(target.shape[-1])):
            with torch.no_grad():
                return {k: v.float() for k, v in self.net(target).items()}
        unique = list(dict.fromkeys(ids))  # a batch straddling two epochs may repeat an image
        first = {name: i for i, name in reversed(list(enumerate(ids)))}
        load = lambda wanted: target[[first[i] for i in wanted]]  # noqa: E731
        feats = self.cache.get_or_compute(self.net, key.dataset, unique, load, preprocessing=key.preprocessing)
        where = {name: k for k, name in enumerate(unique)}
        pos = torch.tensor([where[n] for n in ids])
        # cached tensors may be inference tensors or fp16: copy to fp32 so autograd can save them
        return {k: v[pos].to(self.net.device).float().clone() for k, v in feats.items()}


def _to_device(x, device: torch.device, channels_last: bool):
    if isinstance(x, (tuple, list)):
        return type(x)(_to_device(v, device, channels_last) for v in x)
    x = x.to(device, non_blocking=True)
    if channels_last and device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_step(t: Trainee, task: Task, inputs, target: torch.Tensor) -> float:
    """One optimiser step of one model; returns the loss (a NaN/inf loss is returned without stepping)."""
    t.model.train()

    def model(*args):
        with t.net.autocast():
            return t.step_fn(*args)
    loss = task.loss(model, inputs, t.features, target)
    value = loss.item()
    if not math.isfinite(value):
        return value
    t.opt.zero_grad(set_to_none=True)
    if t.scaler is not None:
        t.scaler.scale(loss).backward()
        t.scaler.step(t.opt)
        t.scaler.update()
    else:
        loss.backward()
        t.opt.step()
    return value


@contextmanager
def eval_mode(model: nn.Module):
    """``model`` in eval mode inside the block, back in the mode it had after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def validate(t: Trainee, task: Task) -> float:
    """The task's validation score of one model in eval mode; a collapse or a non-finite score is recorded."""
    try:
        with eval_mode(t.model):
            score = float(task.validate(t.model, t))
    except Collapse as e:
        t.collapse(str(e))
        return math.nan
    if not math.isfinite(score):
        t.collapse("non-finite validation score")
    return score


def default_val_every(steps: int) -> int:
    """Validate ~20 times over a run, at most every 1000 steps."""
    return max(1, min(1000, steps // 20))


class Lockstep:
    """The models of one lockstep run and their shared batches and target passes; ``step()`` trains every model
    that has not collapsed on the next batch, ``validate(step)`` scores them and keeps the best states."""

    def __init__(self, nets: LossNetwork | list[LossNetwork], task: Task, *, cache=None, seed: int = 0):
        nets = [nets] if isinstance(nets, LossNetwork) else list(nets)
        if not nets:
            raise ValueError("no loss networks to train with")
        if len({n.device for n in nets}) != 1:
            raise ValueError("the loss networks of one lockstep run must share a device")
        self.nets, self.task = nets, task
        self.device, self.channels_last = nets[0].device, nets[0].channels_last
        cache = open_cache(cache, progress=False)
        self.trainees = build_trainees(nets, task, seed)
        self.targets = {id(net): TargetFeatures(net, cache) for net in nets}
        for t in self.trainees:
            t.targets = self.targets[id(t.net)]
        self.batches = task.batches(seed)
        self.steps = 0

    @property
    def active(self) -> list[Trainee]:
        return [t for t in self.trainees if t.ok]

    def step(self) -> None:
        """One batch: one target pass per loss network, then one optimiser step per model."""
        active = self.active
        self.steps += 1
        batch = next(self.batches)
        inputs = _to_device(batch.inputs, self.device, self.channels_last)
        target = batch.target.to(self.device, non_blocking=True)
        feats = {id(net): self.targets[id(net)](target, batch.ids, batch.key)
                 for net in {id(t.net): t.net for t in active}.values()}
        for t in active:
            t.last_loss = train_step(t, self.task, inputs, feats[id(t.net)][t.layer])
            if not math.isfinite(t.last_loss):
                t.collapse(f"{'NaN' if math.isnan(t.last_loss) else 'infinite'} loss at step {self.steps}")

    def validate(self) -> None:
        """Score every active model at the current step (step 0: the untrained models, never kept as best)."""
        for t in self.active:
            t.record(self.steps, validate(t, self.task), self.task.higher_is_better)


def save_checkpoints(trainees: list[Trainee], folder: str | os.PathLike, prefix: str, **meta) -> list[Path]:
    """Save the best state_dict of every model that did not collapse as ``PREFIX_ARCH_LAYER_WEIGHTS.pt``, with its
    best step and validation score and ``meta``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in trainees:
        if t.ok and t.best_state is not None:
            spec = t.net.weights_spec
            weights = spec if spec in ("imagenet", "random") else Path(spec).stem
            path = folder / f"{prefix}_{t.net.arch.name}_{t.layer}_{weights}.pt"
            torch.save({"state_dict": t.best_state, "best_step": t.best_step, "val_score": t.best_score, **meta}, path)
            paths.append(path)
    return paths


def _round_nets(taps, nets: list[LossNetwork]) -> list[LossNetwork]:
    """The loss networks of one round: each of ``nets`` cut at its taps in the round (itself when it has them all)."""
    layers = {id(net): [t.layer for t in taps if t.net is net] for net in nets}
    return [net.sub(layers[id(net)]) for net in nets if layers[id(net)]]


def _train_round(run: Lockstep, steps: int, val_every: int, bar) -> None:
    run.validate()
    while run.steps < steps and run.active:
        run.step()
        if run.steps % val_every == 0 or run.steps == steps:
            run.validate()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=" ".join(f"{t.last_loss:.3g}" for t in run.active))
    for t in run.trainees:  # what the scoring does not need: the round's gradients and optimiser state
        t.model.zero_grad(set_to_none=True)
        t.opt.state.clear()


def train_lockstep(nets: LossNetwork | list[LossNetwork], task: Task, *, steps: int, val_every: int | None = None,
                   cache=None, seed: int = 0, progress: bool = False, desc: str | None = None,
                   memory: int | None = None) -> list[Trainee]:
    """Train one ``task`` model per tap of each loss network in lockstep for ``steps`` batches (see the module
    docstring). Validates before training, every ``val_every`` steps and at the end; returns the trainees with
    their best checkpoint (by the task's score and direction), history and status, in the order of the taps.

    The memory of the run is estimated first (``training_memory.plan``; ``memory``: the bytes to plan within,
    default what the device has free); taps that do not fit together train in rounds, one lockstep run each on the
    same seeded batches, so every model ends as it would in one run; DoesNotFit if a single tap does not fit."""
    nets = [nets] if isinstance(nets, LossNetwork) else list(nets)
    if not nets:
        raise ValueError("no loss networks to train with")
    for net in nets:
        if len(net.layers) > 1:
            net.body  # noqa: B018 (built now: every tap's generated side (LossNetwork.sub) shares its weights)
    rounds = training_memory.plan(nets, task, seed=seed, available=memory).rounds
    val_every = val_every or default_val_every(steps)
    trainees = []
    for i, taps in enumerate(rounds):
        run = Lockstep(nets if len(rounds) == 1 else _round_nets(taps, nets), task, cache=cache, seed=seed)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            label = desc or f"{task.name} " + ",".join(n.arch.name for n in nets)
            bar = tqdm(total=steps, unit="step", desc=label + (f" round {i + 1}/{len(rounds)}" if len(rounds) > 1 else ""))
        _train_round(run, steps, val_every, bar)
        if bar is not None:
            bar.close()
        trainees += run.trainees
    for t in trainees:
        if t.ok and t.best_state is None:
            t.collapse("no finite validation score")
    return trainees


__all__ = ["PROTOCOLS", "check_protocol", "Batch", "BatchSampler", "CacheKey", "Collapse", "Task", "Trainee", "TargetFeatures", "Lockstep", "train_lockstep", "train_step",
           "build_trainees", "check_output", "feature_loss", "default_val_every", "eval_mode", "save_checkpoints"]
