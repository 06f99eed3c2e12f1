"""Depth-profile speed (a script, not a test): every block of a network as a tap, lossnets against the plain way.

Per network, interleaved (so that every phase sees the same machine load), on the made BAPPS set (SYNTHETIC
judgments: only the speed matters) with seeded random weights:

* deepest: lossnets similarity statistics at the network's last block alone (one pass).
* blocks: the same with every block as a tap (one pass; only the per-tap statistics are extra).
  Goal: blocks / deepest <= 1.3.
* plain: the depth profile as the published code would run it, a job per block (``similarity_grid.plain_cell``:
  each job decodes the data, builds the whole network with seeded init, runs it in full, hooks its tap and
  computes the reference twice). plain / blocks grows with the number of blocks.
* rescore: the statistics of the blocks and the stage taps stored once (``fill``), then a new process's view
  (a new store object on the same folder, a lazy LossNetwork) scores tap sets never asked before (the stages
  summed, Kumar et al.'s mean ensemble, every block summed) and the stages with lin weights from a file:
  the network is never built (checked: ``built`` stays False and the store computes nothing).

Each lossnets phase starts from a fresh LOSSNETS_HOME (it pays the seeded init once, as on a new machine);
rescore uses the fill's. deepest and blocks exclude the data's decode (both share it); blocks against
plain includes one decode (plain decodes per job).

    python -m benchmarks.speed.depth_profile [--archs resnet18 ...] [--size 4] [--no-plain] [--threads 1] [--smoke] \
        [--out DIR]

Writes ``<out>/depth_profile_cpu[_noplain][_size<N>].csv`` (per network; the suffixes for options other than the
default) and ``.md`` (default out: benchmarks/speed/results).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.statistics import open_store
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.engine import LossNetwork, expand_layers, get_architecture
from lossnets.engine.lin_weights import save_lin_weights, tap_channels

from .similarity_grid import plain_cell

OUT = Path(__file__).parent / "results"
ARCHS = ("resnet18", "mobilenet_v2", "resnet50", "vgg16", "densenet121")
SMOKE_ARCH = "squeezenet1_1"
GOAL = 1.3  # blocks / deepest


class Phases:
    """Timed lossnets runs of one network, each from a fresh LOSSNETS_HOME under ``work``."""

    def __init__(self, arch: str, data, work: Path, batch_size: int, seed: int):
        self.arch, self.data, self.work, self.batch_size, self.seed = arch, data, work, batch_size, seed
        self.homes = 0

    def fresh_home(self) -> Path:
        self.homes += 1
        home = self.work / f"home{self.homes}"
        os.environ["LOSSNETS_HOME"] = str(home)
        return home

    def run(self, layers, *, store=None, sets=None, lin=None) -> tuple[float, pd.DataFrame, LossNetwork]:
        """Seconds of one lazy LossNetwork's similarity rows (``sets``: tap sets, default each tap) through
        ``store`` (a StatisticsStore or None), its rows and the network."""
        t = time.perf_counter()
        net = LossNetwork(self.arch, layers, "random", seed=self.seed, device="cpu", lazy=True)
        df = similarity.run(net, self.data, layers=sets, lin=lin, cache=store, batch_size=self.batch_size,
                            progress=False)
        return time.perf_counter() - t, df, net


def rescore(ph: Phases, blocks: tuple[str, ...], store_url: str) -> dict:
    """Store the statistics of the blocks and stage taps (timed: fill), then score new tap sets and lin weights
    from them with a new store object and a lazy network (timed: rescore); checks that nothing was built."""
    spec = get_architecture(ph.arch)
    layers = tuple(dict.fromkeys([spec.resolve(b).layer for b in blocks] + [t.layer for t in spec.taps]))
    home = ph.fresh_home()
    fill_s, _, _ = ph.run(layers, store=open_store(store_url, progress=False))
    os.environ["LOSSNETS_HOME"] = str(home)  # a later process on the same machine
    stage_set = "+".join(t.layer for t in spec.taps if not t.layer.endswith("_cls"))
    lin = ph.work / "lin.pth"
    g = torch.Generator().manual_seed(ph.seed)
    save_lin_weights(lin, [torch.rand(c, generator=g) for c in tap_channels(ph.arch, stage_set.split("+"))])
    store = open_store(store_url, progress=False)
    sets = [stage_set, "kumar", "+".join(blocks)]
    t = time.perf_counter()
    _, base, net = ph.run(layers, store=store, sets=sets)
    _, weighed, net_lin = ph.run(layers, store=store, sets=[stage_set], lin=str(lin))
    rescore_s = time.perf_counter() - t
    built = net.built or net_lin.built
    computed = store.stats()["computed"]
    if built or computed:
        raise AssertionError(f"{ph.arch}: rescoring from stored statistics built the network ({built}) or "
                             f"computed {computed} pairs")
    return dict(fill_s=fill_s, fill_taps=len(layers), rescore_s=rescore_s,
                rescore_sets=len(sets) + 1, rescore_rows=len(base) + len(weighed), rescore_built=built,
                rescore_computed=computed)


def measure(arch: str, args, root: Path, data, load_s: float, work: Path) -> dict:
    """One network's row: seconds, ratios, the largest |score difference| to plain, the rescore check."""
    blocks = expand_layers(arch, ["blocks"])  # in trunk order
    ph = Phases(arch, data, work / arch, args.batch_size, args.seed)
    row, plain_scores = {"arch": arch, "blocks": len(blocks)}, {}
    if args.plain:
        t = time.perf_counter()
        for layer in blocks:
            name = get_architecture(arch).resolve(layer).layer  # as lossnets names it (a registered tap's letter)
            for r in plain_cell(arch, layer, root, args.batch_size, torch.device("cpu"), args.seed):
                plain_scores[(name, r["dataset"])] = r["value"]
        row["plain_s"] = time.perf_counter() - t
    deepest, every = [], []
    for _ in range(args.repeat):  # alternated, the fastest of each kept (the machine is shared)
        ph.fresh_home()
        deepest.append(ph.run(blocks[-1:])[0])
        ph.fresh_home()
        seconds, df, _ = ph.run(blocks)
        every.append(seconds)
    row.update(deepest_s=min(deepest), blocks_s=min(every), blocks_vs_deepest=min(every) / min(deepest))
    if args.plain:
        row["plain_vs_blocks"] = row["plain_s"] / (row["blocks_s"] + load_s)
        row["max_abs_score_diff_plain"] = max(abs(r.value - plain_scores[(r.layer, r.dataset)])
                                              for r in df.itertuples())
    row.update(rescore(ph, blocks, str(work / arch / "stats")))
    shutil.rmtree(work / arch, ignore_errors=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--size", type=int, default=4, help="triplets per 2AFC subset and pairs per JND subset")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2, help="runs of deepest and blocks each (the fastest kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plain", dest="plain", action="store_false", help="lossnets alone (no job per block)")
    ap.add_argument("--smoke", action="store_true",
                    help=f"tiny: {SMOKE_ARCH}, one item per subset, one repeat, one thread")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default torch's; 1 steadies the "
                    "timings on a machine that other jobs load)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of the CSV and markdown")
    args = ap.parse_args(argv)
    args.command = " ".join(["python -m benchmarks.speed.depth_profile", *(sys.argv[1:] if argv is None else argv)])
    if args.smoke:
        args.archs, args.size, args.repeat, args.threads = [SMOKE_ARCH], 1, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    for arch in args.archs:
        get_architecture(arch)  # an unknown name fails before any work
    work = Path(tempfile.mkdtemp(prefix="depthprof-"))
    try:
        root = make_bapps(work / "bapps", size=args.size, train_size=0, seed=args.seed)
        os.environ["LOSSNETS_HOME"] = str(work / "warmup")  # imports and first-call costs outside every timing
        LossNetwork("alexnet", ("E",), "random", device="cpu")(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
        t = time.perf_counter()
        data = load_bapps(root)
        load_s = time.perf_counter() - t
        rows = []
        for arch in args.archs:
            rows.append(measure(arch, args, root, data, load_s, work))
            print(", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()),
                  flush=True)
            _write(args, rows, data, load_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cpu_name() -> str:
    """The processor's model name (Linux), else the machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def _write(args, rows: list[dict], data, load_s: float) -> None:
    """The per-network table (CSV) and its summary (markdown), rewritten after every network."""
    table = pd.DataFrame(rows)
    n_items = {k: sum(len(s) for s in data.subsets.values() if s.kind == k) for k in ("2afc", "jnd")}
    cpu = _cpu_name()
    meta = run_metadata(device="cpu", cpu=cpu, threads=torch.get_num_threads(), cpus=os.cpu_count(),
                        triplets=n_items["2afc"], jnd_pairs=n_items["jnd"], distinct_images=len(data.images),
                        data="synthetic", weights="random", batch_size=args.batch_size, repeat=args.repeat,
                        load_s=round(load_s, 3), archs_planned=len(args.archs))
    out = table.assign(**meta)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "_".join(["depth_profile_cpu"] + ([] if args.plain else ["noplain"])
                    + ([f"size{args.size}"] if args.size != 4 else []))
    csv = write_csv_atomic(out, args.out / f"{stem}.csv")
    lines = [f"# Depth profile speed: every block as a tap (CPU, {torch.get_num_threads()} torch threads, {cpu})", "",
             f"Made BAPPS set (SYNTHETIC judgments) of {n_items['2afc']} triplets and {n_items['jnd']} JND pairs, "
             f"{len(data.images)} distinct 64x64 images; seeded random weights; batch {args.batch_size} items.",
             f"deepest = lossnets similarity at the last block alone; blocks = every block as a tap, one pass "
             f"(goal blocks_vs_deepest <= {GOAL}); fastest of {args.repeat} alternated runs each, data decode "
             "excluded.",
             "fill = one pass storing the statistics of the blocks and stage taps; rescore = a new store object and "
             "a lazy network scoring new tap sets (stages summed, kumar, every block summed) and the stages with "
             "lin weights from a file: rescore_built False and rescore_computed 0 say no network was built.",
             f"Load average {os.getloadavg()[1]:.1f} over the last 5 minutes on {os.cpu_count()} CPUs: on a shared, "
             "loaded machine read the times as ratios, not absolutes.",
             f"Command: `{args.command}`"]
    if args.plain:
        lines.append("plain = the published way, one eager fp32 job per block, each decoding the data, building the "
                     "whole network (seeded init), running it in full and computing the reference twice; "
                     "plain_vs_blocks = plain / (blocks + one decode).")
        lines.append(f"Largest |score difference| between plain and blocks: "
                     f"{table['max_abs_score_diff_plain'].max():.2e} (max_abs_score_diff_plain per network).")
    if len(rows) < len(args.archs):
        lines.append(f"PARTIAL: {len(rows)} of {len(args.archs)} networks measured so far.")
    shown = table.drop(columns=["max_abs_score_diff_plain"], errors="ignore")  # in CSV, its largest said above
    md = "\n".join(lines) + "\n\n" + shown.to_markdown(index=False, floatfmt=".2f") + "\n"
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    print(f"wrote {csv}")


if __name__ == "__main__":
    main()
