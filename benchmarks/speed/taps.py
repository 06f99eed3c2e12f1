"""Four taps in one pass against four separate truncated passes and against the full network.

    python -m benchmarks.speed.taps [--archs ...] [--size 128] [--batch 8] [--device cpu] [--rounds 5]

Every variant is timed in interleaved rounds (A B C D A B C D ...) and the median is kept, so a
machine's background load hits all of them alike. Writes benchmarks/speed/results/taps.{csv,md}.
Target: four taps cost at most 1.1x the deepest tap alone.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from lossnets import LossNetwork
from lossnets.engine import get_architecture, resolve_archs

RESULTS = Path(__file__).parent / "results"


def timer(fn, x, device):
    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start
    return run


def bench_arch(arch: str, size: int, batch: int, device, rounds: int) -> dict:
    spec = get_architecture(arch)
    x = torch.rand(batch, 3, size, size, device=device)
    multi = LossNetwork(arch, weights="random", device=device)
    singles = [LossNetwork(arch, layers=(t.layer,), weights="random", device=device) for t in spec.taps]
    full = spec.build().eval().to(device).to(memory_format=torch.channels_last)
    variants = {
        "four_taps_one_pass": timer(multi, x, device),
        "four_separate_passes": timer(lambda x: [s(x) for s in singles], x, device),
        "deepest_tap_alone": timer(singles[-1], x, device),
        "full_network": timer(lambda x: full(multi.norm(x).contiguous(memory_format=torch.channels_last)), x, device),
    }
    times = {k: [] for k in variants}
    with torch.inference_mode():
        for run in variants.values():
            run()  # warm-up
        for _ in range(rounds):
            for k, run in variants.items():
                times[k].append(run())
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"arch": arch, **{f"{k}_s": v for k, v in med.items()},
            "four_taps_vs_deepest": med["four_taps_one_pass"] / med["deepest_tap_alone"],
            "separate_vs_one_pass": med["four_separate_passes"] / med["four_taps_one_pass"],
            "full_vs_one_pass": med["full_network"] / med["four_taps_one_pass"]}


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=None)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "taps"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    for arch in resolve_archs(args.archs):
        rows.append(bench_arch(arch, args.size, args.batch, device, args.rounds))
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    header = (f"# Multi-tap pass vs separate passes vs full network\n\ndevice: {device} "
              f"({torch.get_num_threads()} threads), input {args.batch}x3x{args.size}x{args.size}, eager fp32, "
              f"channels_last, median of {args.rounds} interleaved rounds; ratios, not absolute times, "
              f"are the result on a CPU.\n\n")
    summary = (f"\n\nfour taps / deepest alone: median {df.four_taps_vs_deepest.median():.3f}, "
               f"max {df.four_taps_vs_deepest.max():.3f} (target <= 1.1); four separate passes / one pass: "
               f"median {df.separate_vs_one_pass.median():.2f}x; full network / one pass: median "
               f"{df.full_vs_one_pass.median():.2f}x\n")
    out.with_suffix(".md").write_text(header + df.to_markdown(index=False, floatfmt=".4f") + summary)
    print(summary)
    return df


if __name__ == "__main__":
    main()
