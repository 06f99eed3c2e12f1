"""Benchmark 2: single-image super-resolution (Johnson et al. 2016) trained with each loss network.

One transform network per (loss network, tap) is trained with the feature MSE at the tap between the
loss network's features of its output and of the HR image. The taps of a loss network (and several
loss networks) train in *lockstep*: one process, one data pipeline, one target forward pass per loss
network and batch that gives every tap's targets. Each model has its own transform network and Adam
optimiser, initialised from the same seed, and sees the same batches, so it ends where it would have
trained alone. The generated side (loss network on each model's output) is a pass per model through a
copy of the loss network truncated at that model's tap.

Validation PSNR is measured at a fixed interval; the best checkpoint is tested on each test folder
(PSNR and SSIM, see :func:`evaluate`). A model whose loss becomes NaN/inf or whose output becomes
constant is recorded as collapsed (rows with value NaN and the reason in ``status``); the others go on.

Public entry point: :func:`run`.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lossnets.engine import LossNetwork
from ..image_metrics import psnr, rgb_to_y, shave, ssim, to_uint8
from ..sweep.results import run_metadata, tidy, with_paper_values
from .data import SRImage, SRSet, check_protocol, load_sr_folder, load_test_folder
from .model import build_transform_net

LR_ADAM = 1e-3
CONSTANT_STD = 1e-4  # an output whose per-image standard deviation stays below this is "constant"
EVAL_BATCH = 16


def feature_loss(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Mean squared feature difference (``lossnets.kernels.feature_mse``; autograd-capable)."""
    from lossnets.kernels import feature_mse
    return feature_mse(f, g, reduction="mean")


@dataclass
class Model:
    """One transform network being trained against one tap of one loss network."""
    net: LossNetwork  # the (multi-tap) loss network whose target pass this model shares
    layer: str
    gen: LossNetwork  # the loss network truncated at ``layer``: the generated side
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    step_fn: torch.nn.Module  # the model, or its compiled forward
    scaler: torch.amp.GradScaler | None = None
    status: str = "ok"
    best_psnr: float = -math.inf
    best_iteration: int = 0
    best_state: dict | None = None
    history: list = field(default_factory=list)  # (iteration, loss, val_psnr)
    last_loss: float = math.nan

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def collapse(self, reason: str) -> None:
        self.status = f"collapsed: {reason}"
        self.best_state = None


def _autocast(net: LossNetwork):
    return net.autocast() if net.amp else contextlib.nullcontext()


def _single_tap(net: LossNetwork, layer: str) -> LossNetwork:
    """The loss network truncated at one tap (``net`` itself if that is all it has)."""
    if net.layers == (layer,):
        return net
    return LossNetwork(net.arch.name, layers=(layer,), weights=net.weights_spec, seed=net.seed,
                       normalize=net.normalize, device=net.device, compile=net.compiled,
                       channels_last=net.channels_last, amp=net.amp)


def build_models(nets: list[LossNetwork], scale: int, protocol: str, seed: int = 0) -> list[Model]:
    """One seeded transform network + Adam per tap of each loss network (all initialised identically)."""
    models = []
    for net in nets:
        for layer in net.layers:
            model = build_transform_net(scale, protocol, seed=seed, device=net.device)
            if net.channels_last and net.device.type == "cuda":
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(model.parameters(), lr=LR_ADAM)
            step_fn = torch.compile(model, dynamic=False) if net.compiled else model
            scaler = torch.amp.GradScaler(net.device.type) if net.amp == "fp16" else None
            models.append(Model(net, layer, _single_tap(net, layer), model, opt, step_fn, scaler))
    return models


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


class TargetSource:
    """Target features of HR training images for one loss network.

    From the feature cache where its policy says caching pays for every tap of the net (recomputing
    costs more than reading back: ``lossnets.cache.should_cache``), otherwise from one forward pass
    under no_grad (a tap that does not pay needs that pass anyway, and it gives the deeper taps too)."""

    def __init__(self, net: LossNetwork, train: SRSet, cache=None):
        self.net, self.train = net, train
        self.size = int(train.hr.shape[-1])
        self.cache = cache if cache is not None and cache_pays(cache, net, self.size) else None
        self.dataset = f"superres-train:{Path(train.folder).resolve()}" if train.folder else "superres-train"
        # how the HR pixels were made (independent of scale and protocol: entries are shared by all runs)
        self.preprocessing = {"benchmark": "superres", "size": self.size,
                              "hr": "resize shorter side (bicubic, antialiased) + centre crop"}
        self.index = {name: i for i, name in enumerate(train.names)}

    def __call__(self, idx: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cache is None:
            with torch.no_grad():
                return {k: v.float() for k, v in self.net(hr).items()}
        names = [self.train.names[i] for i in idx.tolist()]
        unique = list(dict.fromkeys(names))  # a batch straddling two epochs may repeat an image
        load = lambda ids: self.train.hr[[self.index[i] for i in ids]]  # noqa: E731
        feats = self.cache.get_or_compute(self.net, self.dataset, unique, load, preprocessing=self.preprocessing)
        pos = torch.tensor([unique.index(n) for n in names])
        # cached tensors may be inference tensors or fp16: copy to fp32 so autograd can save them
        return {k: v[pos].to(self.net.device).float().clone() for k, v in feats.items()}


def _open_cache(cache):
    if cache is None or not isinstance(cache, (str, Path)):
        return cache
    from lossnets.cache import FeatureCache
    return FeatureCache(str(cache), progress=False)


def cache_pays(cache, net: LossNetwork, size: int) -> bool:
    """Whether the cache's policy stores every tap of ``net`` at ``size`` (then targets are read back)."""
    return cache.stored_layers(net, size) == list(net.layers)


def _to_float(x: torch.Tensor, device) -> torch.Tensor:
    return x.to(device, non_blocking=True).float().div_(255)


@torch.no_grad()
def predict(model: torch.nn.Module, lr: torch.Tensor, device, batch: int = EVAL_BATCH) -> torch.Tensor:
    """SR outputs in [0,1] (float32, on CPU) of uint8 LR images (N,3,h,w), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(_to_float(lr[i:i + batch], device)).float().cpu() for i in range(0, len(lr), batch)])
    finally:
        model.train(was_training)


def validate(m: Model, val: SRSet) -> float:
    """Mean RGB PSNR (data range 1) on the validation set; marks the model collapsed on a constant or
    non-finite output."""
    out = predict(m.model, val.lr, m.net.device)
    if not torch.isfinite(out).all():
        m.collapse("non-finite output")
        return math.nan
    if out.flatten(1).std(1).max().item() < CONSTANT_STD:
        m.collapse("constant output")
        return math.nan
    return float(psnr(out, _to_float(val.hr, "cpu"), 1.0).mean())


def train_step(m: Model, lr: torch.Tensor, target: torch.Tensor) -> float:
    """One Adam step of one model; returns the loss (NaN/inf returned without stepping)."""
    m.model.train()
    with _autocast(m.net):
        out = m.step_fn(lr)
    feats = m.gen(out)[m.layer]
    loss = feature_loss(feats, target.to(feats.dtype))  # one dtype for the kernel (it accumulates in fp32)
    value = loss.item()
    if not math.isfinite(value):
        return value
    m.opt.zero_grad(set_to_none=True)
    if m.scaler is not None:
        m.scaler.scale(loss).backward()
        m.scaler.step(m.opt)
        m.scaler.update()
    else:
        loss.backward()
        m.opt.step()
    return value


def _checkpoint(m: Model, value: float, iteration: int) -> None:
    if m.ok and value > m.best_psnr:
        m.best_psnr, m.best_iteration = value, iteration
        m.best_state = {k: v.detach().to("cpu", copy=True) for k, v in m.model.state_dict().items()}


def train_lockstep(nets: LossNetwork | list[LossNetwork], train: SRSet, val: SRSet, *, scale: int,
                   iterations: int, batch: int = 4, protocol: str = "paper", val_every: int | None = None,
                   cache=None, seed: int = 0, progress: bool = False) -> list[Model]:
    """Train one transform network per tap of each loss network in lockstep (see the module docstring).

    Returns the models with their best checkpoint (by validation PSNR, checked every ``val_every``
    iterations and at the end) and status."""
    nets = [nets] if isinstance(nets, LossNetwork) else list(nets)
    if not nets:
        raise ValueError("no loss networks to train with")
    if len({n.device for n in nets}) != 1:
        raise ValueError("the loss networks of one lockstep run must share a device")
    device = nets[0].device
    val_every = val_every or default_val_every(iterations)
    cache = _open_cache(cache)
    models = build_models(nets, scale, protocol, seed)
    targets = {id(net): TargetSource(net, train, cache) for net in nets}
    sampler = BatchSampler(len(train), batch, seed)
    for m in models:
        m.history.append((0, math.nan, validate(m, val)))

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=iterations, desc=f"superres x{scale} " + ",".join(n.arch.name for n in nets), unit="it")
    for it in range(1, iterations + 1):
        active = [m for m in models if m.ok]
        if not active:
            break
        idx = sampler.next()
        lr = _to_float(train.lr[idx], device)
        hr = train.hr[idx].to(device, non_blocking=True)
        if device.type == "cuda" and nets[0].channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        feats = {id(net): targets[id(net)](idx, hr) for net in {id(m.net): m.net for m in active}.values()}
        for m in active:
            loss = train_step(m, lr, feats[id(m.net)][m.layer])
            m.last_loss = loss
            if not math.isfinite(loss):
                m.collapse(f"{'NaN' if math.isnan(loss) else 'infinite'} loss at iteration {it}")
        if it % val_every == 0 or it == iterations:
            for m in active:
                if m.ok:
                    v = validate(m, val)
                    m.history.append((it, m.last_loss, v))
                    _checkpoint(m, v, it)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=" ".join(f"{m.last_loss:.3g}" for m in active))
    if bar is not None:
        bar.close()
    return models


def default_val_every(iterations: int) -> int:
    """Validate ~20 times over a run, at most every 1000 iterations (every 1000 for the paper's 200k)."""
    return max(1, min(1000, iterations // 20))


def evaluate(model: torch.nn.Module, images: list[SRImage], scale: int, protocol: str, device) -> dict[str, float]:
    """Mean PSNR and SSIM of a model over one test set.

    ``paper``: RGB of the float output on the ``size`` crops, data range 1 (SSIM averaged over channels).
    ``standard``: output rounded to uint8, Y channel (BT.601), ``scale`` pixels shaved, data range 255;
    SSIM with the 11x11 Gaussian window (sigma 1.5), equal to scikit-image on the same arrays.
    """
    check_protocol(protocol)
    p, s = [], []
    by_shape: dict[tuple, list[SRImage]] = {}
    for im in images:
        by_shape.setdefault(tuple(im.lr.shape), []).append(im)
    for group in by_shape.values():
        out = predict(model, torch.stack([im.lr for im in group]), device)
        hr = torch.stack([im.hr for im in group])
        if protocol == "paper":
            x, y, dr = out.clamp(0, 1), hr.float() / 255, 1.0
        else:
            x, y, dr = shave(rgb_to_y(to_uint8(out)), scale), shave(rgb_to_y(hr), scale), 255.0
        p.append(psnr(x, y, dr))
        s.append(ssim(x, y, dr))
    return {"psnr": float(torch.cat(p).mean()), "ssim": float(torch.cat(s).mean())}


def result_rows(models: list[Model], tests: dict[str, list[SRImage]], scale: int, protocol: str) -> list[dict]:
    """Tidy rows: per model and test set, psnr and ssim (NaN with the reason in ``status`` if collapsed)."""
    rows = []
    for m in models:
        if m.ok and m.best_state is None:
            m.collapse("no finite validation PSNR")
        scores = {}
        if m.ok:
            m.model.load_state_dict(m.best_state)
            for name, images in tests.items():
                scores[name] = evaluate(m.model, images, scale, protocol, m.net.device)
                if not all(math.isfinite(v) or v == math.inf for v in scores[name].values()):
                    m.collapse(f"non-finite test metric on {name}")
        initial = m.history[0][2] if m.history else math.nan
        for name in tests:
            for metric in ("psnr", "ssim"):
                rows.append({"benchmark": f"superres_x{scale}", "arch": m.net.arch.name, "layer": m.layer,
                             "weights": m.net.weights_spec, "dataset": name, "metric": metric,
                             "value": scores[name][metric] if m.ok else math.nan, "status": m.status,
                             "best_iteration": m.best_iteration if m.ok else np.nan,
                             "val_psnr": m.best_psnr if m.ok else np.nan, "val_psnr_initial": initial,
                             "n_images": len(tests[name])})
    return rows


def save_checkpoints(models: list[Model], folder: str | Path, scale: int) -> list[Path]:
    """Save the best state_dict of every model that did not collapse."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in models:
        if m.ok and m.best_state is not None:
            weights = Path(m.net.weights_spec).stem if m.net.weights_spec not in ("imagenet", "random") else m.net.weights_spec
            path = folder / f"superres_x{scale}_{m.net.arch.name}_{m.layer}_{weights}.pt"
            torch.save({"state_dict": m.best_state, "scale": scale, "protocol": m.model.protocol,
                        "best_iteration": m.best_iteration, "val_psnr": m.best_psnr}, path)
            paths.append(path)
    return paths


def parse_tests(specs: list[str] | dict[str, str]) -> dict[str, str]:
    """``["set5=DIR", ...]`` -> ``{"set5": "DIR", ...}`` (names lower-cased, as the paper table's)."""
    if isinstance(specs, dict):
        return dict(specs)
    out = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--test takes NAME=DIR (e.g. set5=data/Set5), got {spec!r}")
        if name.lower() in out:
            raise ValueError(f"test set {name!r} given twice")
        out[name.lower()] = folder
    return out


def run(net: LossNetwork | list[LossNetwork], train: str, val: str, test: dict[str, str], *,
        scale: int | list[int] = 4, iterations: int = 200000, batch: int = 4, size: int = 288,
        protocol: str = "paper", val_every: int | None = None, cache=None, seed: int = 0,
        progress: bool = True, n_train: int | None = 10000, n_val: int | None = 100,
        checkpoint_dir: str | None = None) -> pd.DataFrame:
    """Train and test one SR model per tap of ``net`` (or of each of several loss networks) in lockstep.

    ``train``/``val``: image folders (``n_train``/``n_val`` files sampled with ``seed`` from the sorted
    list; None takes all). ``test``: dataset name -> folder. ``scale``: 4, 8 or a list (one lockstep
    run per scale). ``cache``: a ``lossnets.cache.FeatureCache`` or its URL for the target features.
    ``checkpoint_dir``: where to save each model's best state_dict as
    ``superres_x{scale}_{arch}_{layer}_{weights}.pt`` (default: kept in memory only).
    Returns the tidy table (``benchmark`` ``superres_x4``/``superres_x8``, ``dataset`` the test names,
    ``metric`` psnr/ssim, ``status``, and ``paper_value`` for imagenet weights)."""
    check_protocol(protocol)
    nets = [net] if isinstance(net, LossNetwork) else list(net)
    n_train, n_val = n_train or None, n_val or None  # 0 or None: every file
    scales = [scale] if isinstance(scale, int) else list(scale)
    if not test:
        raise ValueError("no test folders given")
    rows = []
    t0 = time.perf_counter()
    for sc in scales:
        if sc not in (2, 4, 8):
            raise ValueError(f"scale must be 4 or 8, got {sc}")
        train_set = load_sr_folder(train, size, sc, protocol, n=n_train, seed=seed)
        val_set = load_sr_folder(val, size, sc, protocol, n=n_val, seed=seed)
        tests = {name: load_test_folder(folder, size, sc, protocol) for name, folder in test.items()}
        models = train_lockstep(nets, train_set, val_set, scale=sc, iterations=iterations, batch=batch,
                                protocol=protocol, val_every=val_every, cache=cache, seed=seed, progress=progress)
        rows += result_rows(models, tests, sc, protocol)
        if checkpoint_dir is not None:
            save_checkpoints(models, checkpoint_dir, sc)
    meta = run_metadata(protocol=protocol, iterations=iterations, batch=batch, size=size, seed=seed,
                        n_train=n_train, device=str(nets[0].device), amp=str(nets[0].amp),
                        compiled=nets[0].compiled, seconds=round(time.perf_counter() - t0, 1))
    return with_paper_values(tidy(rows, **meta))


__all__ = ["run", "parse_tests", "train_lockstep", "evaluate", "validate", "build_models", "BatchSampler", "Model",
           "feature_loss", "default_val_every"]
