"""Every GPU figure of the project from one run of under 8 minutes: kernels, loss networks, the BAPPS val
grid, training steps, lin training.

    python -m benchmarks.speed.gpu_suite [--smoke] [--out DIR] [--parts kernels networks ...] [--budget 430]

GPU time comes in short windows, so one process measures everything on one H100/H200, compilation
included. Each part gets a share of ``--budget`` (seconds, counted from the start of ``main``; time a part
leaves goes to the next) and stops adding work when its share is spent (an item already started
finishes). Each part's tables are written as soon as it finishes; a part that raises is recorded with its
error and the others go on, and so is a failing item (a network, an architecture) inside a part. A second
try at what a run lost or cut short: ``--parts training --budget 300`` (the shares of the parts chosen fill it).

1. ``kernels``: perceptual distance and feature MSE, forward and forward+backward, fp32 and bf16, at the
   tap shapes of a 64x64 batch of 256 (BAPPS) and a 288x288 batch of 4 (SR): achieved GB/s against a
   measured device copy; the fused Triton kernels against eager PyTorch and ``torch.compile`` (dynamic
   shapes: one compilation for every tap) of the reference, with each one's largest difference to the
   eager reference (``kernel_bandwidth.py``).
2. ``networks``: images/s of every (arch, tap) network at 64x64 (batch 256) and 224x224 (batch 64), eager
   fp32 (NCHW) and bf16 + channels_last; MACs by the profiler's counter, achieved TFLOP/s beside the
   device's bf16 dense peak. Then the same under ``torch.compile``, the first call (compilation) timed apart:
   112 compilations do not fit the budget, so the smallest graphs go first and each starts only when its
   compilation, predicted from the ones before, fits the part's time.
3. ``bapps``: a made set of BAPPS val's size (36k triplets, 9.6k JND pairs at 64x64; SYNTHETIC: making
   45k items takes ~14 ms each, so a small made set's files are hard-linked over and over and every
   (item, image) slot gets its own copy after decoding, as val's images are all distinct), decoded by the
   loader, then the 14 four-tap networks (bf16 + channels_last, no feature cache): wall time, images/s.
4. ``training``: per training benchmark of TRAINING, its anchor network eager fp32 against bf16 +
   channels_last, with and without compile; per architecture four taps in lockstep against four separate
   runs (bf16 + channels_last) and four eager fp32 runs (the published way: a run per cell); from them the
   GPU-hours of the benchmark's full grid (every architecture x 4 taps x its variants x the published
   schedule), the engine's against the published way's.
5. ``lin``: one epoch of lpips's lin training for alex, vgg and squeeze, the lpips package's Trainer through the
   images against the same procedure on per-pair statistics (``lin_training.py``), and the statistics pass.

``--smoke`` runs the same code at tiny sizes on the CPU (two architectures; ``torch.compile`` with the
``aot_eager`` backend, since inductor's C++ builds take minutes on a small CPU) and writes ``smoke_*``
files, so the script is known to work before a GPU is lent. Writes ``<out>/gpu_<table>.csv`` and
``<out>/gpu_suite.md`` (default out: ``benchmarks/speed/results``).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lossnets import LossNetwork
from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.data.photos import SYNTHETIC_MARKER
from lossnets.benchmarks.similarity.bapps import BAPPS, load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.engine import resolve_archs
from lossnets.engine.atomic import atomic_write_text
from lossnets.engine.profiler import count_macs, measure

from . import kernel_bandwidth
from .lin_training import epoch_row
from .training_benchmarks import TRAINING, sync, time_steps

RESULTS = Path(__file__).parent / "results"
TAPS = ("E", "S", "M", "L")
SHARES = {"kernels": 0.13, "networks": 0.32, "bapps": 0.16, "training": 0.31, "lin": 0.08}  # of --budget, in order
BF16_DENSE_TFLOPS = (("H200", 989), ("H100 80GB HBM3", 989), ("H100 SXM", 989), ("H100 PCIe", 756), ("A100", 312))
CONFIGS = {  # engine options: the published way, the engine's best without and with compile
    "eager fp32": dict(channels_last=False),
    "bf16+CL": dict(amp="bf16", channels_last=True),
    "bf16+CL+compile": dict(amp="bf16", channels_last=True, compile=True),
}


@dataclass(frozen=True)
class Sizes:
    """Every size of the suite: the GPU run's, or ``--smoke``'s tiny ones."""
    archs: tuple[str, ...] | None  # None: all 14
    kernel_settings: dict  # setting -> (image size, batch), as kernel_bandwidth.SETTINGS
    copy_mib: int
    repeats: int  # kernel timer: least calls, least seconds
    min_time: float
    network_sizes: tuple  # ((image size, batch), ...)
    network_min_time: float
    bapps_made: int  # items per subset of the made set whose files are tiled
    bapps_size: int  # triplets per 2AFC subset (BAPPS val: 6 x 6000)
    bapps_jnd_size: int  # pairs per JND subset (BAPPS val: 2 x 4800)
    bapps_batch: int
    train_size: int | None  # None: each benchmark's published size and batch
    train_batch: int | None
    train_warmup: int  # steps timed apart (the first compiles)
    train_steps: int
    lin_train_size: int  # triplets per 2afc/train subset of the made set (BAPPS: ~50k)


FULL = Sizes(archs=None, kernel_settings=kernel_bandwidth.SETTINGS, copy_mib=1024, repeats=10, min_time=0.01,
             network_sizes=((64, 256), (224, 64)), network_min_time=0.05, bapps_made=16, bapps_size=6000,
             bapps_jnd_size=4800, bapps_batch=1024, train_size=None, train_batch=None, train_warmup=2, train_steps=6,
             lin_train_size=1000)
SMOKE = Sizes(archs=("alexnet", "squeezenet1_1"), kernel_settings={"bapps": (64, 2), "superres": (96, 2)},
              copy_mib=16, repeats=2, min_time=0.0, network_sizes=((32, 2), (64, 2)), network_min_time=0.0,
              bapps_made=2, bapps_size=5, bapps_jnd_size=3, bapps_batch=8, train_size=32, train_batch=1,
              train_warmup=1, train_steps=1, lin_train_size=2)


class Result(NamedTuple):
    """What a part hands back: its tables (written as ``<prefix>_<name>.csv``) and its markdown section."""
    tables: dict[str, pd.DataFrame]
    md: str


@dataclass
class Run:
    """What every part gets: the sizes, the device, the time it stops adding work, a progress note."""
    sizes: Sizes
    device: torch.device
    deadline: float  # time.perf_counter() value
    note: Callable[[str], None]

    @property
    def archs(self) -> list[str]:
        return resolve_archs(self.sizes.archs)

    def out_of_time(self) -> bool:
        return time.perf_counter() > self.deadline


def loss_net(arch: str, layers, config: str, device) -> LossNetwork:
    """A random-weight loss network under one of CONFIGS."""
    return LossNetwork(arch, layers, "random", device=device, **CONFIGS[config])


def guarded(label: dict, fn: Callable[..., list[dict]], *args) -> list[dict]:
    """``fn(*args)``'s rows, or one row of ``label`` with the error: a failing item never stops its part."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 (recorded in the table; the part goes on)
        return [{**label, "error": f"{type(e).__name__}: {e}"}]


def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """The rows of a part with at least ``columns`` and ``error`` (empty where an item did not fail), even when
    every item failed."""
    df = pd.DataFrame(rows)
    return df.reindex(columns=list(dict.fromkeys([*df.columns, *columns, "error"])))


def errors_md(df: pd.DataFrame) -> str:
    """A line naming each failed item of a table and its error (nothing when none failed)."""
    names = [c for c in ("benchmark", "setting", "arch", "layer", "op", "dtype", "mode", "config", "variant")
             if c in df]
    return "".join(f"\n**Failed:** {' '.join(str(r[c]) for c in names if pd.notna(r[c]))}: {r['error']}\n"
                   for r in df[df["error"].notna()].to_dict("records"))


def bf16_peak_tflops(device: torch.device) -> float:
    """The device's bf16 dense peak (TFLOP/s) from BF16_DENSE_TFLOPS, NaN when unknown."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return next((float(v) for k, v in BF16_DENSE_TFLOPS if k in name), float("nan"))


# ---------------------------------------------------------------------------------------------
# part 1: kernels

def compile_warmup(op: str, fn, shape, dtype: str, device) -> dict:
    """Seconds of the first forward and the first forward+backward call of a compiled op (compilation)."""
    x, y = (torch.randn(shape, device=device, dtype=kernel_bandwidth.DTYPES[dtype])
            .to(memory_format=torch.channels_last) for _ in range(2))
    t0 = time.perf_counter()
    fn(x, y)
    sync(device)
    t1 = time.perf_counter()
    xg, yg = x.requires_grad_(), y.requires_grad_()
    torch.autograd.grad(fn(xg, yg), (xg, yg), torch.ones(shape[0], device=device))
    sync(device)
    return {"op": op, "dtype": dtype, "forward_s": t1 - t0, "forward+backward_s": time.perf_counter() - t1}


def kernel_rows(tap: dict, op: str, dtype: str, impls: dict, run: Run, timer) -> list[dict]:
    """Every implementation's times, bytes and difference to the reference at one tap's shape."""
    shape = tuple(tap[k] for k in "NCHW")
    return [{**tap, "op": op, "dtype": dtype, "layout": "channels_last", **r} for r in kernel_bandwidth.measure(
        shape, kernel_bandwidth.DTYPES[dtype], "channels_last", impls, run.device, timer)]


def part_kernels(run: Run) -> Result:
    """GB/s of the fused kernels, eager and compiled reference at every tap shape, fp32 and bf16."""
    cuda = run.device.type == "cuda"
    timer = kernel_bandwidth.timer(run.device, run.sizes.repeats, run.sizes.min_time)
    copy_bw = kernel_bandwidth.copy_bandwidth(run.device, timer, run.sizes.copy_mib)
    taps = kernel_bandwidth.tap_shapes(run.archs, run.sizes.kernel_settings)
    first = tuple(taps[0][k] for k in "NCHW")
    impls, warmups = {}, []
    for op, (fused, ref) in kernel_bandwidth.OPS.items():
        compiled = torch.compile(ref, dynamic=True)
        impls[op] = {"fused": fused, "eager": ref, "compile": compiled} if cuda else {"eager": ref, "compile": compiled}
        warmups += [compile_warmup(op, compiled, first, dtype, run.device) for dtype in ("float32", "bfloat16")]
    rows, done = [], 0
    for tap in taps:
        if rows and run.out_of_time():
            break
        run.note(f"{tap['setting']} {tap['arch']} {tap['layer']}")
        for op in kernel_bandwidth.OPS:
            for dtype in ("float32", "bfloat16"):
                rows += guarded({**tap, "op": op, "dtype": dtype}, kernel_rows, tap, op, dtype, impls[op], run, timer)
        done += 1
    df = frame(rows, ["impl", "pass_", "seconds", "bytes", "max_rel_diff"])
    df["gb_per_s"] = df.bytes / df.seconds / 1e9
    df["share"] = df.bytes / df.seconds / copy_bw
    df["copy_gb_per_s"] = copy_bw / 1e9
    warm = pd.DataFrame(warmups)
    ratios = [("eager", "fused"), ("compile", "fused")] if cuda else [("eager", "compile")]
    md = (f"Device copy: {copy_bw / 1e9:.1f} GB/s ({run.sizes.copy_mib} MiB). {done} of {len(taps)} tap shapes "
          f"measured (settings {run.sizes.kernel_settings}: image size, batch), layout channels_last. Share = "
          "minimal bytes (forward: both maps read; forward+backward: 6 map-sized transfers) / best time, as a "
          "share of the copy (median over taps). a/b = time of a / time of b per tap: median (min-max). "
          "compile = torch.compile(dynamic=True) of the PyTorch reference; its first calls (compilation, at "
          "the first tap's shape; later recompiles are not counted):\n\n"
          + warm.to_markdown(index=False, floatfmt=".2f")
          + "\n\n" + ("" if cuda else "No GPU: the fused Triton kernels did not run.\n\n")
          + kernel_bandwidth.bandwidth_table(df.dropna(subset=["seconds"]), ratios) + errors_md(df))
    return Result({"kernels": df.rename(columns={"pass_": "pass"}), "kernels_compile": warm}, md)


# ---------------------------------------------------------------------------------------------
# part 2: loss networks

def first_call_seconds(net: LossNetwork, size: int, batch: int) -> float:
    """Seconds of a network's first call on a batch of this shape (compilation for a compiled one)."""
    x = torch.rand(batch, 3, size, size, device=net.device)
    sync(net.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        net(x)
    sync(net.device)
    return time.perf_counter() - t0


def network_rows(arch: str, tap: str, configs: tuple[str, ...], run: Run, peak: float) -> list[dict]:
    """Images/s, TFLOP/s and first-call seconds of one (arch, tap) network under each config at every size."""
    nets = {config: loss_net(arch, (tap,), config, run.device) for config in configs}
    body = next(iter(nets.values())).body
    rows = []
    for size, batch in run.sizes.network_sizes:
        with torch.inference_mode():
            macs = count_macs(body, torch.zeros(1, 3, size, size, device=run.device))
        for config, net in nets.items():
            first = first_call_seconds(net, size, batch)
            m = measure(net, size, batch, min_time=run.sizes.network_min_time)
            tflops = 2 * macs * m["images_per_s"] / 1e12
            rows.append({"arch": arch, "layer": tap, "size": size, "batch": batch, "config": config,
                         "modules": sum(1 for _ in body.modules()), "macs": macs, "first_call_s": first,
                         "images_per_s": m["images_per_s"], "tflops": tflops, "share_of_bf16_peak": tflops / peak,
                         "peak_memory_mib": m["peak_memory_mib"]})
    return rows


def part_networks(run: Run) -> Result:
    """Every (arch, tap) network's images/s and TFLOP/s: eager fp32 and bf16 + channels_last for all of them,
    then compiled while the part's time lasts, smallest graphs first, each started only when its compilation
    (predicted from the seconds per module of the ones before) fits."""
    peak = bf16_peak_tflops(run.device)
    cells = [(arch, tap) for arch in run.archs for tap in TAPS]
    rows = []
    for arch, tap in cells:
        if rows and run.out_of_time():
            break
        run.note(f"{arch} {tap}")
        rows += guarded({"arch": arch, "layer": tap}, network_rows, arch, tap, ("eager fp32", "bf16+CL"), run, peak)
    measured = frame(rows, ["images_per_s", "modules"]).dropna(subset=["images_per_s"])
    spent, modules_done = 0.0, 0
    for (arch, tap), modules in measured.groupby(["arch", "layer"]).modules.first().sort_values().items():
        if time.perf_counter() + (modules * spent / modules_done if modules_done else 0.0) > run.deadline:
            break
        run.note(f"compiling {arch} {tap}")
        t0 = time.perf_counter()
        rows += guarded({"arch": arch, "layer": tap}, network_rows, arch, tap, ("bf16+CL+compile",), run, peak)
        torch.compiler.reset()
        spent, modules_done = spent + time.perf_counter() - t0, modules_done + modules
    df = frame(rows, ["size", "config", "images_per_s", "tflops", "share_of_bf16_peak", "first_call_s"])
    if measured.empty:
        return Result({"networks": df}, "No network measured." + errors_md(df))
    rank = {name: i for i, name in enumerate([*run.archs, *TAPS])}
    by = (df.dropna(subset=["images_per_s"])
          .pivot_table(index=["arch", "layer", "size"], columns="config",
                       values=["images_per_s", "tflops", "first_call_s"])
          .sort_index(key=lambda level: level.map(rank) if level.name != "size" else level))
    best = by["images_per_s"].idxmax(axis=1)
    best_tflops = pd.Series([by["tflops"].loc[i, c] for i, c in best.items()], index=by.index)
    table = pd.DataFrame({**{f"{c} img/s": by["images_per_s"].get(c) for c in CONFIGS},
                          "best / fp32": by["images_per_s"].max(axis=1) / by["images_per_s"]["eager fp32"],
                          "best TFLOP/s": best_tflops, "% of bf16 peak": 100 * best_tflops / peak,
                          "compile first call s": by["first_call_s"].get("bf16+CL+compile")})
    compiled = df[df.config == "bf16+CL+compile"].dropna(subset=["images_per_s"])[["arch", "layer"]].drop_duplicates()
    md = (f"{measured.groupby(['arch', 'layer']).ngroups} of {len(cells)} networks measured at (image size, batch) "
          f"{run.sizes.network_sizes}, random weights: eager fp32 (NCHW; convolutions may use TF32: "
          f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}) and bf16 autocast + channels_last (CL), eager; "
          f"{len(compiled)} of them also compiled (torch.compile, smallest graphs first, while the part's time "
          "lasted; the first call, compilation, is timed apart from the steady images/s). TFLOP/s = 2 x MACs (the "
          "profiler's counter) x images/s of the fastest config; bf16 dense peak of this device: "
          + (f"{peak:.0f} TFLOP/s" if peak == peak else "unknown") + ".\n\n"
          + table.reset_index().to_markdown(index=False, floatfmt=".3g") + "\n" + errors_md(df))
    return Result({"networks": df}, md)


# ---------------------------------------------------------------------------------------------
# part 3: the BAPPS val grid

def tile_bapps(made: Path, root: Path, size: int, jnd_size: int) -> Path:
    """A BAPPS-layout folder of ``size`` triplets per 2AFC subset and ``jnd_size`` pairs per JND subset: hard
    links to a made set's files, cycled (its SYNTHETIC marker comes along)."""
    for kind, n in (("2afc", size), ("jnd", jnd_size)):
        for subset in sorted((made / kind / "val").iterdir()):
            for folder in sorted(subset.iterdir()):
                files = sorted(folder.iterdir())
                dest = root / kind / "val" / subset.name / folder.name
                dest.mkdir(parents=True)
                for i in range(n):
                    os.link(files[i % len(files)], dest / f"{i:06d}{files[i % len(files)].suffix}")
    os.link(made / SYNTHETIC_MARKER, root / SYNTHETIC_MARKER)
    return root


def one_image_per_slot(data: BAPPS) -> BAPPS:
    """The set with every (item, image) slot its own image, as in BAPPS val (a tiled set decodes to few distinct
    images, and each distinct image's features are computed once)."""
    picks, subsets, at = [], {}, 0
    for name, sub in data.subsets.items():
        index = {}
        for role, idx in sub.index.items():
            index[role] = np.arange(at, at + len(idx))
            picks.append(idx)
            at += len(idx)
        subsets[name] = replace(sub, index=index)
    flat = torch.from_numpy(np.concatenate(picks))
    return replace(data, subsets=subsets, images=data.images[flat], keys=[f"slot{i}" for i in range(at)])


def bapps_rows(arch: str, data: BAPPS, run: Run) -> list[dict]:
    """Build time and the seconds of the similarity benchmark of one architecture's four taps."""
    t0 = time.perf_counter()
    net = loss_net(arch, TAPS, "bf16+CL", run.device)
    t1 = time.perf_counter()
    scores = similarity.run(net, data, batch_size=run.sizes.bapps_batch, progress=False)
    sync(run.device)
    seconds = time.perf_counter() - t1
    return [{"arch": arch, "networks": len(TAPS), "build_s": t1 - t0, "seconds": seconds,
             "images_per_s": len(data.images) / seconds,
             "mean_2afc": scores[scores.dataset == "2afc/val"].value.mean()}]


def part_bapps(run: Run) -> Result:
    """The similarity benchmark of all 56 networks on a made set of BAPPS val's size: decode, then the grid."""
    s = run.sizes
    with tempfile.TemporaryDirectory(prefix="gpu-suite-bapps-") as work:
        run.note("making the set")
        t0 = time.perf_counter()
        made = make_bapps(Path(work) / "made", size=s.bapps_made, train_size=0)
        t1 = time.perf_counter()
        root = tile_bapps(made, Path(work) / "val", s.bapps_size, s.bapps_jnd_size)
        t2 = time.perf_counter()
        run.note("decoding")
        data = load_bapps(root)
        decode_s = time.perf_counter() - t2
    data = one_image_per_slot(data)
    rows = []
    for arch in run.archs:
        if rows and run.out_of_time():
            break
        run.note(arch)
        rows += guarded({"arch": arch}, bapps_rows, arch, data, run)
    triplets, pairs = (sum(len(x) for x in data.of_kind(kind)) for kind in ("2afc", "jnd"))
    df = frame(rows, ["build_s", "seconds"]).assign(images=len(data.images), triplets=triplets, jnd_pairs=pairs,
                                                    decode_s=decode_s)
    total = decode_s + df.build_s.sum() + df.seconds.sum()
    md = (f"SYNTHETIC made set of BAPPS val's size: {triplets} triplets and {pairs} JND "
          f"pairs, {len(data.images)} images of 64x64 (a made set of {s.bapps_made} items per subset, made in "
          f"{t1 - t0:.1f}s, its files hard-linked over and over in {t2 - t1:.1f}s; each slot its own image after "
          f"decoding). Decoding (the loader: {len(data.images)} PNGs read, resized, hashed): {decode_s:.1f}s. Then "
          f"per architecture one four-tap network (bf16 autocast + channels_last, eager, random weights, no "
          f"feature cache, batches of {s.bapps_batch} items). Wall time of decode + {len(df)} architectures: "
          f"{total:.1f}s.\n\n" + df.drop(columns=["images", "triplets", "jnd_pairs", "decode_s"])
          .to_markdown(index=False, floatfmt=".3g") + "\n" + errors_md(df))
    return Result({"bapps": df}, md)


# ---------------------------------------------------------------------------------------------
# part 4: training steps

def step_rows(bench: str, arch: str, layers: tuple, config: str, variant, mode: str, run: Run,
              net: LossNetwork | None = None) -> list[dict]:
    """Seconds of the first steps (compilation) and per steady step of one lockstep run with one loss network
    (``net``, or one built under ``config``)."""
    spec = TRAINING[bench]
    size, batch = run.sizes.train_size or spec.size, run.sizes.train_batch or spec.batch
    net = net or loss_net(arch, layers, config, run.device)
    first, steady = time_steps(spec.lockstep([net], size, batch, variant), run.sizes.train_steps,
                               run.sizes.train_warmup)
    return [{"benchmark": bench, "arch": arch, "layer": ",".join(layers), "variant": variant, "mode": mode,
             "config": config, "models": len(layers), "size": size, "batch": batch, "first_steps_s": first,
             "s_per_step": steady / run.sizes.train_steps}]


def arch_steps(bench: str, arch: str, run: Run) -> list[dict]:
    """At a benchmark's first variant: four taps in lockstep and each tap alone (bf16 + channels_last, the
    separate runs cut from the lockstep network), and each tap alone in eager fp32."""
    variant = TRAINING[bench].variants[0]
    lock = loss_net(arch, TAPS, "bf16+CL", run.device)
    label = {"benchmark": bench, "arch": arch, "variant": variant}
    rows = guarded({**label, "mode": "lockstep"}, step_rows, bench, arch, TAPS, "bf16+CL", variant, "lockstep", run,
                   lock)
    for t in TAPS:
        rows += guarded({**label, "layer": t, "mode": "separate", "config": "bf16+CL"}, step_rows, bench, arch, (t,),
                        "bf16+CL", variant, "separate", run, lock.sub((t,)))
        rows += guarded({**label, "layer": t, "mode": "separate", "config": "eager fp32"}, step_rows, bench, arch,
                        (t,), "eager fp32", variant, "separate", run)
    return rows


def benchmark_steps(bench: str, run: Run) -> list[dict]:
    """The anchor under every config and variant (compiled at the first variant only), then every architecture."""
    spec = TRAINING[bench]
    arch, tap = spec.anchor
    rows = []
    for config in CONFIGS:
        for variant in spec.variants[:1] if config.endswith("compile") else spec.variants:
            run.note(f"{bench} {arch} {tap} {config} x{variant}")
            rows += guarded({"benchmark": bench, "arch": arch, "layer": tap, "mode": "anchor", "config": config,
                             "variant": variant}, step_rows, bench, arch, (tap,), config, variant, "anchor", run)
        torch.compiler.reset()
    for arch in run.archs:
        if run.out_of_time() and any(r.get("mode") != "anchor" for r in rows):
            break
        run.note(f"{bench} {arch}")
        rows += guarded({"benchmark": bench, "arch": arch}, arch_steps, bench, arch, run)
    return rows


def grid_estimate(steps: pd.DataFrame) -> pd.DataFrame:
    """GPU-hours of each benchmark's full grid per architecture: the engine (four taps in lockstep, bf16 +
    channels_last) against the published way (eager fp32, a run per cell). A step at a variant but the first is
    the first's step plus, per model, the anchor's difference between the two variants under the same config."""
    rows = []
    for bench, g in steps.dropna(subset=["s_per_step"]).groupby("benchmark"):
        spec = TRAINING[bench]
        anchor = g[g["mode"] == "anchor"].set_index(["config", "variant"]).s_per_step.to_dict()
        first = spec.variants[0]
        # per config and variant: how much longer one model's step takes than at the first variant (the anchor's)
        extra = {c: {v: anchor.get((c, v), np.nan) - anchor.get((c, first), np.nan) for v in spec.variants}
                 for c in ("bf16+CL", "eager fp32")}
        compiled_ratio = anchor.get(("bf16+CL+compile", first), np.nan) / anchor.get(("bf16+CL", first), np.nan)
        for arch, a in g[g["mode"] != "anchor"].groupby("arch"):
            lock = a[a["mode"] == "lockstep"].s_per_step
            cells = a[(a["mode"] == "separate") & (a.config == "eager fp32")].s_per_step
            separate = a[(a["mode"] == "separate") & (a.config == "bf16+CL")].s_per_step
            if len(lock) != 1 or len(cells) != len(TAPS) or len(separate) != len(TAPS):
                continue
            engine = sum(n * (lock.iloc[0] + len(TAPS) * extra["bf16+CL"][v]) for v, n in spec.steps.items()) / 3600
            published = sum(n * (cells.sum() + len(TAPS) * extra["eager fp32"][v])
                            for v, n in spec.steps.items()) / 3600
            rows.append({"benchmark": bench, "arch": arch, "lockstep_vs_separate": separate.sum() / lock.iloc[0],
                         "engine_gpu_hours": engine, "engine_compiled_gpu_hours": engine * compiled_ratio,
                         "published_gpu_hours": published, "published_vs_engine": published / engine})
    df = pd.DataFrame(rows)
    if len(df):
        totals = df.groupby("benchmark")[["engine_gpu_hours", "engine_compiled_gpu_hours", "published_gpu_hours"]].sum()
        totals = totals.assign(arch="TOTAL", published_vs_engine=totals.published_gpu_hours / totals.engine_gpu_hours)
        df = pd.concat([df, totals.reset_index()], ignore_index=True)
    return df


def part_training(run: Run) -> Result:
    """Training steps of every registered training benchmark and the GPU-hours of their full grids."""
    rows = []
    for bench in TRAINING:
        rows += benchmark_steps(bench, run)
    steps = frame(rows, ["mode", "config", "variant", "s_per_step"])
    estimate = grid_estimate(steps)
    anchor = steps[steps["mode"] == "anchor"]
    eager = anchor[anchor.config == "eager fp32"].set_index(["benchmark", "variant"]).s_per_step.to_dict()
    anchor = anchor.assign(vs_eager_fp32=[eager.get((b, v), np.nan) / t
                                          for b, v, t in zip(anchor.benchmark, anchor.variant, anchor.s_per_step)])
    sched = "; ".join(f"{b}: steps per variant {s.steps} at {s.size}x{s.size}, batch {s.batch}, anchor "
                      f"{' '.join(s.anchor)}" for b, s in TRAINING.items())
    md = (f"Published schedules: {sched}. Sizes here: {run.sizes.train_size or 'published'} / batch "
          f"{run.sizes.train_batch or 'published'}. Random weights and random images; seconds per step after "
          f"{run.sizes.train_warmup} warm-up steps (their seconds, compilation included, in first_steps_s), "
          f"{run.sizes.train_steps} steps timed; target features recomputed every step (no feature cache).\n\n"
          "Anchor network, one model (vs_eager_fp32: eager fp32's seconds per step over this config's):\n\n"
          + anchor[["benchmark", "arch", "layer", "variant", "config", "first_steps_s", "s_per_step", "vs_eager_fp32"]]
          .to_markdown(index=False, floatfmt=".4g") + "\n\n"
          "Per architecture (in the CSV): at the first variant, four taps in lockstep (a model each, one target "
          "pass per batch) and each tap alone, bf16 + channels_last, and each tap alone in eager fp32. From them, "
          "lockstep_vs_separate (the four separate bf16 runs' seconds per step over the lockstep run's) and the "
          "estimated GPU-hours of the full grid (every architecture measured, 4 taps, every variant, the "
          "published schedule). engine = lockstep, bf16 + channels_last; engine compiled = that x the anchor's "
          "compiled / uncompiled step time (extrapolated from one network); published = eager fp32, a run per "
          "cell (its other costs, such as data loading or running the whole network, not counted). Variants after the "
          "first add the anchor's difference per model between the variants.\n\n"
          + (estimate.to_markdown(index=False, floatfmt=".3g") if len(estimate) else "(no complete architecture)")
          + "\n" + errors_md(steps))
    return Result({"training": steps, "training_estimate": estimate}, md)


# ---------------------------------------------------------------------------------------------
# part 5: the learned metric

def part_lin(run: Run) -> Result:
    """One epoch of lpips's lin training through the images (its Trainer) against one from statistics."""
    from lossnets.engine.lin_weights import LPIPS_TAPS
    with tempfile.TemporaryDirectory(prefix="gpu-suite-lin-") as work:
        run.note("making the set")
        root = make_bapps(Path(work) / "made", size=1, jnd_size=1, train_size=run.sizes.lin_train_size)
        train = load_bapps(root, split="train")
    rows = []
    for arch in [a for a in LPIPS_TAPS if a in run.archs]:
        if rows and run.out_of_time():
            break
        run.note(arch)
        rows += guarded({"arch": arch}, lambda a: [epoch_row(a, train, run.device)], arch)
    df = frame(rows, ["lpips_epoch_s", "stats_epoch_s"])
    md = (f"One epoch (batch 50) of lpips's lin training on a made 2afc/train set of {3 * run.sizes.lin_train_size} "
          "triplets (SYNTHETIC judgments), random backbones: the lpips package's Trainer through the images "
          "against train_lin on the pair statistics; `statistics_s`: the one backbone pass the latter needs "
          "(fp32, eager).\n\n" + df.to_markdown(index=False, floatfmt=".4g") + "\n" + errors_md(df))
    return Result({"lin": df}, md)


PARTS = {"kernels": part_kernels, "networks": part_networks, "bapps": part_bapps, "training": part_training,
         "lin": part_lin}


# ---------------------------------------------------------------------------------------------
# the run

def configure_compiler(smoke: bool) -> None:
    """Past dynamo's recompile limit a function silently runs eager: raise the limit, and fail loudly beyond
    it. The smoke run compiles with aot_eager (dynamo and AOT autograd, no inductor code generation)."""
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    if smoke:
        torch.compiler.set_default_backend("aot_eager")


def versions(device: torch.device) -> dict:
    """Device name and the versions the figures depend on."""
    try:
        triton = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton = "not installed"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return {"device": name, "torch": torch.__version__, "triton": triton, "cuda": torch.version.cuda or "none"}


def report(meta: dict, status: list[dict], sections: dict[str, str], smoke: bool, budget: float, wall: float) -> str:
    """The suite's markdown: what ran where, each part's status, then each part's section."""
    lines = [f"# GPU suite on {meta['device']}", "",
             f"{meta['created']}; lossnets {meta['lossnets_version']}, torch {meta['torch']}, triton {meta['triton']}, "
             f"CUDA {meta['cuda']}; `python -m benchmarks.speed.gpu_suite`, budget {budget:.0f}s, {wall:.0f}s from "
             "the start of main to the end of the last part.", ""]
    if smoke:
        lines += ["**SMOKE RUN**: tiny sizes on the CPU, compiled with aot_eager; it shows the script works, its "
                  "figures mean nothing.", ""]
    lines += [pd.DataFrame(status).to_markdown(index=False, floatfmt=".1f"), ""]
    for name, md in sections.items():
        lines += [f"## {list(PARTS).index(name) + 1}. {name}", "", md, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (writes smoke_* files)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    p.add_argument("--budget", type=float, default=None, help="seconds (default 430; smoke 170)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    if not args.smoke and not torch.cuda.is_available():
        p.error("no GPU here: --smoke runs the suite at tiny sizes on the CPU")
    device = torch.device("cpu" if args.smoke else "cuda")
    if args.smoke:
        torch.set_num_threads(1)  # tiny ops: on a small loaded CPU more threads stall at OpenMP barriers
    configure_compiler(args.smoke)
    sizes, prefix = (SMOKE, "smoke") if args.smoke else (FULL, "gpu")
    budget = args.budget or (170.0 if args.smoke else 430.0)
    parts = [name for name in PARTS if name in args.parts]
    share = np.cumsum([SHARES[name] for name in parts]) / sum(SHARES[name] for name in parts)
    meta = run_metadata(**versions(device), smoke=args.smoke)
    args.out.mkdir(parents=True, exist_ok=True)
    status, sections = [], {}
    bar = tqdm(parts, desc="gpu suite", unit="part")
    for name, until in zip(bar, share):
        deadline = start + budget * until
        t0 = time.perf_counter()
        state, error = "ok", ""
        if t0 > deadline:
            state = "skipped: out of time"
        else:
            try:
                result = PARTS[name](Run(sizes, device, deadline, lambda s, n=name: bar.set_postfix_str(f"{n}: {s}")))
                for table, df in result.tables.items():
                    write_csv_atomic(df.assign(**meta), args.out / f"{prefix}_{table}.csv")
                sections[name] = result.md
            except Exception as e:  # noqa: BLE001 (recorded; the other parts go on)
                state, error = "error", f"{type(e).__name__}: {e}"
                sections[name] = f"```\n{traceback.format_exc()}```"
        torch.compiler.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        status.append({"part": name, "status": state, "seconds": time.perf_counter() - t0, "error": error})
        write_csv_atomic(pd.DataFrame(status).assign(**meta), args.out / f"{prefix}_parts.csv")
        atomic_write_text(args.out / f"{prefix}_suite.md",
                          report(meta, status, sections, args.smoke, budget, time.perf_counter() - start))
    bar.close()
    print(f"{time.perf_counter() - start:.0f}s; wrote {args.out / f'{prefix}_suite.md'}")
    return int(any(s["status"] == "error" for s in status))


if __name__ == "__main__":
    sys.exit(main())
