"""Super-resolution training speed (a script, not a test): lockstep against separate runs.

1. Lockstep vs separate (every device): the four taps of one loss network trained in lockstep (one data
   pipeline, one target forward pass per batch giving all four taps' targets, then a step per model)
   against four separate runs (each its own batches and target pass). Reported as model-iterations/s
   (one Adam step of one transform network) side by side, from the same process.
2. On a GPU only (``torch.cuda.is_available()``): eager fp32 against bf16 autocast + channels_last +
   torch.compile for vgg16 relu2_2 (tap S) at 288x288, batch 4; and an estimate of the GPU-hours of
   the full SR grid (14 architectures x 4 taps x scales 4 and 8 x 200k iterations) from measured
   lockstep iterations/s of each architecture under the fast options.

Synthetic input (random uint8 batches of the right shapes): only the speed matters here.

    python benchmarks/speed/superres_lockstep.py [--configs squeezenet1_1:96 vgg16:64] [--iterations 8]

Writes ``benchmarks/speed/results/superres_lockstep_<device>.csv`` and ``.md`` (and on a GPU
``superres_amp_cuda.csv`` and ``superres_grid_estimate_cuda.csv``).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from lossnets import LossNetwork
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.benchmarks.superres.data import SRSet
from lossnets.benchmarks.superres.benchmark import SuperResolution
from lossnets.benchmarks.training import Lockstep
from lossnets.engine import resolve_archs

OUT = Path(__file__).parent / "results"
TAPS = ("E", "S", "M", "L")
GRID_ITERATIONS = 200_000
GRID_SCALES = (4, 8)


def synthetic_set(n: int, size: int, scale: int, seed: int = 0) -> SRSet:
    g = torch.Generator().manual_seed(seed)
    hr = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    lr = torch.randint(0, 256, (n, 3, size // scale, size // scale), dtype=torch.uint8, generator=g)
    return SRSet(hr, lr, [f"{i:05d}" for i in range(n)], "")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_lockstep(nets: list[LossNetwork], train: SRSet, scale: int, iterations: int, warmup: int, batch: int,
                  protocol: str = "paper") -> tuple[float, int]:
    """Seconds for ``iterations`` lockstep iterations (after ``warmup``) and the number of models."""
    device = nets[0].device
    run = Lockstep(nets, SuperResolution(train, train, scale, protocol, batch))
    for _ in range(warmup):
        run.step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iterations):
        run.step()
    _sync(device)
    return time.perf_counter() - t0, len(run.trainees)


def net_for(arch: str, layers, device, fast: bool = False, channels_last: bool | None = None) -> LossNetwork:
    cl = fast if channels_last is None else channels_last
    return LossNetwork(arch, layers=layers, weights="random", device=device, channels_last=cl,
                       amp="bf16" if fast else None, compile=fast)


def lockstep_vs_separate(arch: str, size: int, args, device) -> list[dict]:
    """Four taps in lockstep against four separate runs of the same configuration; each timing is the
    best of ``args.repeats`` (lockstep and separate runs alternate, so load from other processes hits both)."""
    train = synthetic_set(max(16, 2 * args.batch), size, args.scale)
    fast = device.type == "cuda"  # on a GPU compare under the fast options; on a CPU plain eager
    lock_net = net_for(arch, TAPS, device, fast)
    tap_nets = {tap: net_for(arch, (tap,), device, fast) for tap in TAPS}
    best = {"lockstep": float("inf"), **{tap: float("inf") for tap in TAPS}}
    for _ in range(args.repeats):
        best["lockstep"] = min(best["lockstep"], time_lockstep([lock_net], train, args.scale, args.iterations,
                                                                args.warmup, args.batch)[0])
        for tap in TAPS:
            best[tap] = min(best[tap], time_lockstep([tap_nets[tap]], train, args.scale, args.iterations,
                                                     args.warmup, args.batch)[0])
    secs, total = best["lockstep"], sum(best[t] for t in TAPS)
    rows = [{"arch": arch, "size": size, "mode": "lockstep (4 taps, 1 process)", "models": 4, "seconds": secs,
             "model_it_per_s": 4 * args.iterations / secs, "speedup_vs_separate": total / secs}]
    rows += [{"arch": arch, "size": size, "mode": f"separate: {t} alone", "models": 1, "seconds": best[t],
              "model_it_per_s": args.iterations / best[t]} for t in TAPS]
    rows.append({"arch": arch, "size": size, "mode": "separate (4 runs, sum)", "models": 4, "seconds": total,
                 "model_it_per_s": 4 * args.iterations / total})
    for r in rows:
        r.update(device=str(device), batch=args.batch, scale=args.scale, iterations=args.iterations,
                 repeats=args.repeats, amp="bf16" if fast else "none", compiled=fast, channels_last=fast)
    print(f"{arch} @ {size}: lockstep {rows[0]['model_it_per_s']:.2f} model-it/s, separate "
          f"{rows[-1]['model_it_per_s']:.2f} model-it/s, speedup x{total / secs:.2f}", flush=True)
    return rows


def gpu_amp_comparison(args, device) -> pd.DataFrame:
    """vgg16 relu2_2 at 288, batch 4: eager fp32 against bf16 + channels_last + compile."""
    train = synthetic_set(64, 288, 4)
    rows = []
    for name, fast, cl in (("eager fp32", False, False), ("bf16 + channels_last + compile", True, True)):
        secs, _ = time_lockstep([net_for("vgg16", ("S",), device, fast, cl)], train, 4, args.gpu_iterations,
                                args.gpu_warmup, 4)
        rows.append({"config": name, "arch": "vgg16", "layer": "S (relu2_2)", "size": 288, "batch": 4,
                     "iterations": args.gpu_iterations, "seconds": secs, "it_per_s": args.gpu_iterations / secs,
                     "device": torch.cuda.get_device_name(device)})
    df = pd.DataFrame(rows)
    df["speedup"] = df["it_per_s"] / df["it_per_s"].iloc[0]
    return df


def gpu_grid_estimate(args, device) -> pd.DataFrame:
    """GPU-hours of the full SR grid from measured lockstep iterations/s per architecture and scale."""
    rows = []
    for arch in resolve_archs(args.grid_archs):
        for scale in GRID_SCALES:
            train = synthetic_set(32, 288, scale)
            secs, n = time_lockstep([net_for(arch, TAPS, device, True)], train, scale, args.gpu_iterations,
                                    args.gpu_warmup, 4)
            it_s = args.gpu_iterations / secs
            rows.append({"arch": arch, "scale": scale, "taps_in_lockstep": n, "lockstep_it_per_s": it_s,
                         "gpu_hours_200k": GRID_ITERATIONS / it_s / 3600})
            print(f"grid estimate {arch} x{scale}: {it_s:.2f} lockstep it/s -> {rows[-1]['gpu_hours_200k']:.1f} h",
                  flush=True)
            torch.cuda.empty_cache()
    df = pd.DataFrame(rows)
    total = df["gpu_hours_200k"].sum()
    df = pd.concat([df, pd.DataFrame([{"arch": "TOTAL", "gpu_hours_200k": total}])], ignore_index=True)
    return df


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["squeezenet1_1:96", "vgg16:64"],
                   help="ARCH:SIZE pairs for lockstep vs separate")
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="best of this many timings per mode")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--device", default=None)
    p.add_argument("--gpu-iterations", type=int, default=50)
    p.add_argument("--gpu-warmup", type=int, default=10, help="includes torch.compile's first calls")
    p.add_argument("--grid-archs", nargs="+", default=None, help="architectures for the GPU-hours estimate (all)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    meta = run_metadata(threads=torch.get_num_threads(), cpus=os.cpu_count(),
                        load_avg_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    rows = []
    for cfg in args.configs:
        arch, _, size = cfg.partition(":")
        rows += lockstep_vs_separate(arch, int(size or 288), args, device)
    df = pd.DataFrame(rows).assign(**meta)
    tag = device.type
    write_csv_atomic(df, out / f"superres_lockstep_{tag}.csv")
    cols = ["arch", "size", "mode", "models", "seconds", "model_it_per_s", "speedup_vs_separate"]
    lines = [f"# Super-resolution: lockstep vs separate training ({device}, {torch.get_num_threads()} threads, "
             f"batch {args.batch}, x{args.scale}, best of {args.repeats} x {args.iterations} timed iterations after "
             f"{args.warmup} warm-up; per-iteration cost only: decoding and start-up, also shared in lockstep, "
             "are not counted)", "",
             df[cols].to_markdown(index=False, floatfmt=".3f"), ""]
    if device.type == "cuda":
        amp = gpu_amp_comparison(args, device)
        write_csv_atomic(amp, out / "superres_amp_cuda.csv")
        grid = gpu_grid_estimate(args, device)
        write_csv_atomic(grid, out / "superres_grid_estimate_cuda.csv")
        lines += ["## vgg16 relu2_2 at 288, batch 4", "", amp.to_string(index=False), "",
                  "## GPU-hours of the full SR grid (lockstep per architecture, 200k iterations)", "",
                  grid.to_string(index=False), ""]
    else:
        lines += ["No GPU was available: the eager fp32 vs bf16 + channels_last + compile comparison (vgg16 relu2_2 "
                  "at 288, batch 4) and the GPU-hours estimate of the full SR grid were not run. Run this script "
                  "on a CUDA machine to get them.", ""]
    lines.append(f"load average (1 min) at the start: {meta['load_avg_1min']}; other processes may share the CPUs.")
    (out / f"superres_lockstep_{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
