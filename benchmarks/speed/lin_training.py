"""Learned-metric speed (a script, not a test): lin training from statistics against lpips's own trainer,
and the statistics pass of the whole grid against the baseline grid run.

* epoch: one epoch of lpips's training procedure on the same made ``2afc/train`` set (batch 50), (a) by the
  lpips package's ``Trainer`` through the images (backbone forward and backward for every triplet, its
  dropout on) and (b) by ``train_lin`` on the pair statistics; plus the one-time statistics pass (c) that
  (b) needs. Both with random backbone weights (lpips's ``pnet_rand``; ours seeded), for alex, vgg, squeeze.
* grid: the 56 loss networks (E, S, M, L) on a made val set: (d) the baseline grid run (one pass per
  architecture, the fused summed distance per tap, no statistics), (e) the cold statistics pass into a
  fresh store, and (f) the warm run: every network rescored with other channel weights from the store.

    python -m benchmarks.speed.lin_training [--train-size 100] [--size 4] [--archs ...] [--device ...]

Writes ``benchmarks/speed/results/lin_training_<device>.csv`` and ``.md`` (judgments SYNTHETIC: only the
time matters here).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.lin_training import LinTraining, Triplets, train_lin
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.statistics import statistics
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.engine import LossNetwork, resolve_archs
from lossnets.engine.lin_weights import LPIPS_TAPS
from lossnets.engine.tap_sets import tap_set
from lossnets.kernels import perceptual_distance

OUT = Path(__file__).parent / "results"
TAPS = ("E", "S", "M", "L")
EPOCH_COLUMNS = ["triplets", "lpips_epoch_s", "statistics_s", "stats_epoch_s", "speedup_epoch", "speedup_10_epochs"]
GRID_COLUMNS = ["baseline_s", "cold_statistics_s", "warm_rescore_s", "cold_over_baseline", "speedup_warm"]


def lpips_epoch(arch: str, train, device, batch: int, seed: int) -> float:
    """Seconds of one epoch of the lpips package's Trainer through the images."""
    from lpips import trainer as lpips_trainer
    torch.manual_seed(seed)
    trainer = lpips_trainer.Trainer()
    trainer.initialize(model="lpips", net=LPIPS_TAPS[arch][0], use_gpu=device.type == "cuda", is_train=True,
                       pnet_rand=True, gpu_ids=[device.index or 0])
    subs = train.of_kind("2afc")
    index = {k: np.concatenate([s.index[k] for s in subs]) for k in ("ref", "p0", "p1")}
    judge = torch.from_numpy(np.concatenate([s.target for s in subs])).float().view(-1, 1)
    image = lambda k, rows: train.images[torch.from_numpy(index[k][rows])].float() / 127.5 - 1  # noqa: E731
    order = torch.randperm(len(judge), generator=torch.Generator().manual_seed(seed)).numpy()
    sync(device)
    t = time.perf_counter()
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        trainer.set_input({"ref": image("ref", rows), "p0": image("p0", rows), "p1": image("p1", rows),
                           "judge": judge[rows]})
        trainer.optimize_parameters()
    sync(device)
    return time.perf_counter() - t


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_row(arch: str, train, device, seed: int = 0, batch_size: int = 64) -> dict:
    """One lpips network's epoch through the images (lpips's Trainer) against its epoch from statistics, and the
    statistics pass the latter needs."""
    layers = tap_set(arch, "lpips").layers
    net = LossNetwork(arch, layers, "random", seed=seed, device=device)
    net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8, device=device))  # first-call costs outside the timings
    t = time.perf_counter()
    stats = statistics(net, train, batch_size=batch_size, progress=False)
    sync(device)
    stats_s = time.perf_counter() - t
    triplets = Triplets.of(stats, layers)
    train_lin(triplets, LinTraining(epochs=1, decay_epochs=0, seed=seed))  # first-call costs
    t = time.perf_counter()
    train_lin(triplets, LinTraining(epochs=1, decay_epochs=0, seed=seed))
    ours_s = time.perf_counter() - t
    theirs_s = lpips_epoch(arch, train, device, 50, seed)
    return dict(arch=arch, triplets=len(triplets.judge), lpips_epoch_s=theirs_s, statistics_s=stats_s,
                stats_epoch_s=ours_s, speedup_epoch=theirs_s / ours_s,
                speedup_10_epochs=10 * theirs_s / (stats_s + 10 * ours_s))


def epochs_part(args, device, work: Path) -> list[dict]:
    root = make_bapps(work / "train", size=1, jnd_size=1, train_size=args.train_size, seed=args.seed)
    train = load_bapps(root, split="train")
    rows = []
    for arch in LPIPS_TAPS:
        rows.append(dict(part="epoch", **epoch_row(arch, train, device, args.seed, args.batch_size)))
        r = rows[-1]
        print(f"{arch}: lpips epoch {r['lpips_epoch_s']:.2f}s, statistics {r['statistics_s']:.2f}s, epoch from "
              f"statistics {r['stats_epoch_s'] * 1e3:.1f}ms ({r['speedup_epoch']:.0f}x)", flush=True)
    return rows


def baseline_grid_arch(net, data, batch_size: int) -> None:
    """The baseline grid run of one architecture: each distinct image through the network once, the fused
    summed distance of every pair and tap (what `similarity` computed before the statistics)."""
    feats = net.extract(data.images, batch_size=batch_size, out_device=net.device)
    for sub in data.subsets.values():
        pairs = (("ref", "p0"), ("ref", "p1")) if sub.kind == "2afc" else (("p0", "p1"),)
        for a, b in pairs:
            for layer in net.layers:
                ia, ib = (torch.from_numpy(sub.index[k]).to(net.device) for k in (a, b))
                perceptual_distance(feats[layer][ia], feats[layer][ib])


def grid_part(args, device, work: Path) -> list[dict]:
    root = make_bapps(work / "val", size=args.size, train_size=0, seed=args.seed)
    data = load_bapps(root)
    rows = []
    for arch in resolve_archs(args.archs):
        seconds = {}
        for phase in ("baseline", "cold", "warm"):
            cache = None if phase == "baseline" else str(work / "store")
            net = LossNetwork(arch, TAPS, "random", seed=args.seed, device=device, amp=args.amp, lazy=True)
            if phase != "warm":
                net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8, device=device))  # build outside the timing
            t = time.perf_counter()
            if phase == "baseline":
                baseline_grid_arch(net, data, args.batch_size)
            else:
                stats = statistics(net, data, cache=cache, batch_size=args.batch_size, progress=False)
                for layer in TAPS:  # other channel weights: a matrix product per tap
                    stats.distances((layer,), [torch.rand(stats.m[layer].shape[1])])
            sync(device)
            seconds[phase] = time.perf_counter() - t
        rows.append(dict(part="grid", arch=arch, baseline_s=seconds["baseline"], cold_statistics_s=seconds["cold"],
                         warm_rescore_s=seconds["warm"], cold_over_baseline=seconds["cold"] / seconds["baseline"],
                         speedup_warm=seconds["baseline"] / seconds["warm"]))
        print(f"{arch}: baseline {seconds['baseline']:.2f}s, cold statistics {seconds['cold']:.2f}s, "
              f"warm rescore {seconds['warm']:.3f}s", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-size", type=int, default=100, help="triplets per 2afc/train subset (BAPPS: ~50k)")
    ap.add_argument("--size", type=int, default=32, help="triplets per 2AFC val subset for the grid part")
    ap.add_argument("--archs", nargs="+", default=None, help="the grid part's architectures (default all 14)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", nargs="+", choices=["epoch", "grid"], default=["epoch", "grid"])
    args = ap.parse_args(argv)
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="lintrain-"))
    os.environ["LOSSNETS_HOME"] = str(work / "home")
    try:
        rows = (epochs_part(args, device, work) if "epoch" in args.parts else []) + \
               (grid_part(args, device, work) if "grid" in args.parts else [])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(args, device, pd.DataFrame(rows))


def write(args, device, table: pd.DataFrame) -> None:
    """The table (CSV) and its summary (markdown) under results/; the rows of parts not run this time are kept
    from the file, with their own metadata."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    meta = run_metadata(device=str(device), gpu=gpu or "none", threads=torch.get_num_threads(), data="synthetic",
                        weights="random", amp=args.amp or "none", batch_size=args.batch_size, size=args.size)
    stem = f"lin_training_{device.type}"
    OUT.mkdir(parents=True, exist_ok=True)
    table = table.assign(**meta)
    if (OUT / f"{stem}.csv").is_file():
        kept = pd.read_csv(OUT / f"{stem}.csv")
        table = pd.concat([kept[~kept["part"].isin(args.parts)], table], ignore_index=True)
    csv = write_csv_atomic(table, OUT / f"{stem}.csv")
    lines = [f"# Learned metric: lin training from statistics ({gpu or device}, {torch.get_num_threads()} threads)", ""]
    epoch = table[table["part"] == "epoch"].dropna(axis=1, how="all") if len(table) else table
    if len(epoch):
        lines += [f"One epoch of lpips's procedure (batch 50) on a made 2afc/train set of {int(epoch['triplets'].iloc[0])}"
                  " triplets (SYNTHETIC judgments), random backbones: the lpips package's Trainer through the "
                  "images against train_lin on the pair statistics; `statistics_s` is the one-time backbone pass "
                  "the latter needs, `speedup_10_epochs` counts it against lpips's 10 epochs.", "",
                  epoch[["arch", *EPOCH_COLUMNS]].to_markdown(index=False, floatfmt=".4g"), ""]
    grid = table[table["part"] == "grid"].dropna(axis=1, how="all") if len(table) else table
    if len(grid):
        size = int(grid["size"].iloc[0])
        total = grid[["baseline_s", "cold_statistics_s", "warm_rescore_s"]].sum()
        lines += [f"The grid ({4 * len(grid)} loss networks, E/S/M/L) on a made val set ({size} triplets per 2AFC "
                  "subset): the baseline run (summed fused distance, no statistics) against the cold statistics pass "
                  "into a fresh store, and the warm rescoring of every network with other channel weights from the "
                  f"store. Totals: baseline {total['baseline_s']:.2f}s, cold {total['cold_statistics_s']:.2f}s "
                  f"({total['cold_statistics_s'] / total['baseline_s']:.2f}x the baseline), warm "
                  f"{total['warm_rescore_s']:.2f}s ({total['baseline_s'] / total['warm_rescore_s']:.1f}x faster "
                  "than the baseline).", "", grid[["arch", *GRID_COLUMNS]].to_markdown(index=False, floatfmt=".4g"), ""]
    md = "\n".join(lines)
    (OUT / f"{stem}.md").write_text(md)
    print(md)
    print(f"wrote {csv}")


if __name__ == "__main__":
    main()
