"""Training speed of the three training benchmarks on this machine (a script, not a test), side by side:

1. Lockstep against separate runs: the four taps of one loss network trained in lockstep (one batch source,
   one target pass per batch giving all four taps' targets, then a step per model) against four separate
   runs (each its own batches and target pass). Model-steps/s (one optimiser step of one model).
2. Cached targets against recomputed ones: the same lockstep run with its fixed targets read from a warm
   feature cache (every item stored by a first pass) against recomputing them every step. For road
   delineation this is ``--crops fixed:N`` (random crops are never fixed); for the autoencoder and
   super-resolution every target is fixed.

Random images of each benchmark's shapes at CPU-sized resolutions (``training_benchmarks.TRAINING``), eager
fp32, random weights; only the speed matters. The GPU figures (published sizes, bf16, compile, and the grid's
GPU-hours) come from ``gpu_suite.py``.

    python -m benchmarks.speed.training_lockstep [--archs squeezenet1_1 vgg16] [--steps 6] [--threads 2]

Writes ``benchmarks/speed/results/training_lockstep_<device>.csv`` and ``.md``.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd
import torch

from lossnets import LossNetwork
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.cache import FeatureCache

from .training_benchmarks import TRAINING, time_steps

OUT = Path(__file__).parent / "results"
TAPS = ("E", "S", "M", "L")
# per benchmark: image size, batch and variant for a CPU (the variant with fixed targets where there is a choice)
FILL_STEPS = 16  # at least two epochs of every benchmark's random set (16 to 64 items) at its CPU batch
CPU_SETTINGS = {"superres": (96, 4, 4), "segmentation": (64, 4, "fixed:1"), "autoencoder": (64, 32, "svhn")}


def _net(arch: str, layers, device) -> LossNetwork:
    return LossNetwork(arch, layers=layers, weights="random", device=device)


def _model_steps_per_s(bench: str, nets, args, cache=None, fill_steps: int = 0) -> float:
    size, batch, variant = CPU_SETTINGS[bench]
    run = TRAINING[bench].lockstep(nets, size, batch, variant, cache=cache)
    for _ in range(fill_steps):  # a first pass that stores every fixed target
        run.step()
    best = min(time_steps(run, args.steps, args.warmup)[1] for _ in range(args.repeats))
    return len(run.trainees) * args.steps / best


def lockstep_vs_separate(bench: str, arch: str, args, device) -> list[dict]:
    lock = _model_steps_per_s(bench, [_net(arch, TAPS, device)], args)
    alone = {t: _model_steps_per_s(bench, [_net(arch, (t,), device)], args) for t in TAPS}
    separate = len(TAPS) / sum(1 / v for v in alone.values())  # four runs one after the other
    return [{"benchmark": bench, "arch": arch, "comparison": "lockstep vs separate", "mode": "lockstep (4 taps)",
             "model_steps_per_s": lock, "speedup": lock / separate},
            {"benchmark": bench, "arch": arch, "comparison": "lockstep vs separate", "mode": "4 separate runs",
             "model_steps_per_s": separate, "speedup": 1.0}]


def cached_vs_recomputed(bench: str, arch: str, args, device) -> list[dict]:
    none = _model_steps_per_s(bench, [_net(arch, TAPS, device)], args)
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp, cache_policy="always", dtype="fp32", progress=False)
        warm = _model_steps_per_s(bench, [_net(arch, TAPS, device)], args, cache=cache, fill_steps=FILL_STEPS)
    return [{"benchmark": bench, "arch": arch, "comparison": "cached vs recomputed targets",
             "mode": "warm cache (every tap stored)", "model_steps_per_s": warm, "speedup": warm / none},
            {"benchmark": bench, "arch": arch, "comparison": "cached vs recomputed targets",
             "mode": "recomputed each step", "model_steps_per_s": none, "speedup": 1.0}]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=["squeezenet1_1", "vgg16"])
    p.add_argument("--benchmarks", nargs="+", default=list(TRAINING), choices=list(TRAINING))
    p.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    meta = run_metadata(threads=torch.get_num_threads(), cpus=os.cpu_count(), device=str(device),
                        load_avg_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    rows = []
    for bench in args.benchmarks:
        for arch in args.archs:
            size, batch, variant = CPU_SETTINGS[bench]
            for measure in (lockstep_vs_separate, cached_vs_recomputed):
                for r in measure(bench, arch, args, device):
                    rows.append({**r, "size": size, "batch": batch, "variant": variant})
                print(f"{bench} {arch} {rows[-2]['comparison']}: x{rows[-2]['speedup']:.2f}", flush=True)
    df = pd.DataFrame(rows).assign(**meta)
    out = Path(args.out)
    write_csv_atomic(df, out / f"training_lockstep_{device.type}.csv")
    cols = ["benchmark", "arch", "size", "batch", "variant", "comparison", "mode", "model_steps_per_s", "speedup"]
    lines = [f"# Training benchmarks: lockstep vs separate, cached vs recomputed targets ({device}, "
             f"{torch.get_num_threads()} threads, eager fp32, random weights and images; best of {args.repeats} x "
             f"{args.steps} timed steps after {args.warmup} warm-up)", "",
             df[cols].to_markdown(index=False, floatfmt=".3f"), "",
             "speedup: model-steps/s over the second row of its pair. Per-step cost only: start-up and data "
             "decoding, also shared in lockstep, are not counted.",
             f"load average (1 min) at the start: {meta['load_avg_1min']}; other processes may share the CPUs."]
    (out / f"training_lockstep_{device.type}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
