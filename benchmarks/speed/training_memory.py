"""Memory of the training benchmarks against the number of taps (a script, not a test): the estimate that
``training_memory.plan`` makes before a lockstep run beside what the run used.

Super-resolution on a made set (SYNTHETIC crops of scikit-image's photos), random weights, eager fp32, on the CPU;
for each number of taps (the first k block taps of the architecture, in trunk order) a fresh process builds the loss
network, then trains ``--steps`` steps and reports: the plan's estimate, the peak bytes of live tensors created by the
run (``engine.profiler.PeakTensorMemory``), the rise of the process's peak RSS over its RSS before training
(VmHWM reset through /proc/self/clear_refs), and the bytes each tap's generated side would hold if it loaded its own
copy of the prefix (before ``LossNetwork.sub`` shared the weights).

    python -m benchmarks.speed.training_memory [--arch resnet18] [--taps 1 2 4 8] [--size 96] [--batch 4]

Writes ``benchmarks/speed/results/training_memory_cpu.csv`` and ``.md``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

OUT = Path(__file__).parent / "results"
BLOCKS = {"resnet18": ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]}


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def one_run(arch: str, k: int, size: int, batch: int, steps: int, data: str) -> dict:
    """In this process: the estimate and the measured memory of a lockstep run on the first ``k`` block taps."""
    import torch

    from lossnets import LossNetwork
    from lossnets.benchmarks import training, training_memory
    from lossnets.benchmarks.superres.benchmark import SuperResolution
    from lossnets.benchmarks.superres.data import load_sr_folder
    from lossnets.engine.profiler import PeakTensorMemory, static_profile

    torch.set_num_threads(1)
    train = load_sr_folder(Path(data) / "train", size, 4, "paper")
    val = load_sr_folder(Path(data) / "val", size, 4, "paper")
    layers = BLOCKS[arch][:k]
    net = LossNetwork(arch, layers, weights="random", device="cpu")
    task = SuperResolution(train, val, 4, "paper", batch)
    estimate = training_memory.plan([net], task)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    rss0 = _status_kib("VmRSS")
    with PeakTensorMemory(device="cpu") as mode:
        training.train_lockstep(net, task, steps=steps, val_every=steps)
    copies = sum(static_profile(arch, layer, size)["params"] * 4 for layer in layers) if k > 1 else 0
    return {"arch": arch, "taps": k, "last_tap": layers[-1], "size": size, "batch": batch, "steps": steps,
            "estimate_mib": estimate.need / 2**20, "estimate_step_mib": estimate.step / 2**20,
            "estimate_per_tap_mib": max(t.during(net.device) for t in estimate.taps) / 2**20,
            "tensor_peak_mib": mode.peak / 2**20, "rss_rise_mib": (_status_kib("VmHWM") - rss0) / 1024,
            "unshared_copies_mib": copies / 2**20}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18", choices=list(BLOCKS))
    p.add_argument("--taps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement, print its row as JSON
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(args.arch, int(args.one), args.size, args.batch, args.steps, args.data)))
        return
    from tqdm.auto import tqdm

    from lossnets.benchmarks.superres.made import make_sr
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_sr(tmp, n_train=8, n_val=2, size=args.size)
        for k in tqdm(args.taps, desc="taps"):
            cmd = [sys.executable, "-m", "benchmarks.speed.training_memory", "--one", str(k), "--arch", args.arch,
                   "--size", str(args.size), "--batch", str(args.batch), "--steps", str(args.steps), "--data", str(data)]
            rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "training_memory_cpu.csv", index=False)
    lines = [f"# Training memory against the number of taps (superres x4, {args.arch} block taps, {args.size} px, "
             f"batch {args.batch}, {args.steps} steps, CPU, random weights, made SYNTHETIC images)", "",
             df.to_markdown(index=False, floatfmt=".1f"), "",
             "estimate: training_memory.plan before the run; tensor_peak: live tensors created by the run at their "
             "peak; rss_rise: the process's peak RSS over its RSS before training (allocator and library overheads "
             "included); unshared_copies: what the per-tap generated sides held before they shared the loss "
             "network's weights."]
    (out / "training_memory_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
