"""Similarity benchmark speed (a script, not a test): the whole grid, lossnets against the plain approach.

* plain: as the published code runs it, every (architecture, tap) is a separate job: it loads the data
  set (decodes the PNGs), builds the whole torchvision network (seeded init), runs it in full, eager fp32
  without channels_last (inception_v3, whose tail cannot run at 64x64, as far as it goes), takes the
  tap with a forward hook, and for each triplet computes the
  reference's features twice (once for d(ref,p0), once for d(ref,p1)), in batches of triplets.
* lossnets cold: a fresh LOSSNETS_HOME (so the seeded init of each network is paid once, as on a new
  machine); the data set decoded once; per architecture one LossNetwork with all four taps (one
  forward pass), each distinct image once, features written to a fresh FeatureCache.
* lossnets warm: the same run again with a new FeatureCache object on the same folder (as a new
  process would): the features are read back from the zarr tier, no forward pass.

All three use the same random weights (no ImageNet weights needed) and the same made data set
(SYNTHETIC judgments: only the speed matters here). Agreement between plain and lossnets is reported
(the cache stores fp32 here, as `similarity` does for a cache URL).

    python benchmarks/speed/similarity_grid.py [--size 4] [--archs ...] [--batch-size 64]

Writes ``benchmarks/speed/results/similarity_grid_<device>[_auto].csv`` (per architecture) and ``.md``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from lossnets.benchmarks import similarity
from lossnets.benchmarks.bapps import load_bapps, make_bapps
from lossnets.benchmarks.results import run_metadata, write_csv_atomic
from lossnets.cache import FeatureCache
from lossnets.engine import LossNetwork, get_architecture, resolve_archs
from lossnets.engine.registry import NORMALIZATIONS
from lossnets.kernels import perceptual_distance

OUT = Path(__file__).parent / "results"
TAPS = ("E", "S", "M", "L")


def plain_cell(arch: str, layer: str, root: Path, batch_size: int, device, seed: int) -> list[dict]:
    """One (arch, tap) job the published way; returns its score rows."""
    data = load_bapps(root)  # every job loads the data itself
    spec = get_architecture(arch)
    torch.manual_seed(seed)
    model = spec.build().eval().to(device)  # the whole torchvision network, run in full, eager fp32
    model.transform_input = arch in ("googlenet", "inception_v3")  # as torchvision runs ImageNet weights
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in NORMALIZATIONS["imagenet"])
    taps = []
    dict(model.named_modules())[spec.tap(layer).module].register_forward_hook(lambda m, i, o: taps.append(o))

    def f(idx):
        taps.clear()
        try:
            model((data.images[torch.from_numpy(idx)].to(device).float() / 255 - mean) / std)
        except RuntimeError:  # inception_v3 cannot run in full at 64x64: its tail fails after the tap
            if not taps:
                raise
        return taps[0]

    values = {layer: {}}
    with torch.inference_mode():
        for sub in data.subsets.values():
            out = {}
            for start in range(0, len(sub), batch_size):
                sl = slice(start, start + batch_size)
                if sub.kind == "2afc":
                    out.setdefault("d0", []).append(perceptual_distance(f(sub.index["ref"][sl]), f(sub.index["p0"][sl])))
                    out.setdefault("d1", []).append(perceptual_distance(f(sub.index["ref"][sl]), f(sub.index["p1"][sl])))
                else:
                    out.setdefault("d", []).append(perceptual_distance(f(sub.index["p0"][sl]), f(sub.index["p1"][sl])))
            values[layer][sub.name] = {k: torch.cat(v).double().cpu().numpy() for k, v in out.items()}
    return [dict(arch=arch, **r) for r in similarity.score(similarity.Distances(data, values))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4, help="triplets per 2AFC subset and pairs per JND subset")
    ap.add_argument("--archs", nargs="+", default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", choices=["always", "auto"], default="always",
                    help="the cache's policy: store every tap, or only taps whose FLOPs per byte pay (auto)")
    args = ap.parse_args(argv)
    archs = resolve_archs(args.archs)
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    work = Path(tempfile.mkdtemp(prefix="simgrid-"))
    os.environ["LOSSNETS_HOME"] = str(work / "home")  # no stored random-weight prefixes from earlier runs
    try:
        root = make_bapps(work / "bapps", size=args.size, seed=args.seed)
        rows, scores = [], {}
        # warm-up (imports, allocator, first-call costs) outside every timing
        LossNetwork("alexnet", ("E",), "random", device=device)(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))

        # interleaved per architecture (plain, cold, warm) so that all three see the same machine load
        plain, timings = {}, {"cold": {}, "warm": {}}
        t = time.perf_counter()
        data = load_bapps(root)  # lossnets decodes the data set once for the whole grid
        load_s = time.perf_counter() - t
        stats = {}
        for arch in archs:
            t_arch = time.perf_counter()
            for layer in TAPS:
                for r in plain_cell(arch, layer, root, args.batch_size, device, args.seed):
                    scores[("plain", arch, r["layer"], r["dataset"])] = r["value"]
            sync()
            plain[arch] = time.perf_counter() - t_arch
            for phase in ("cold", "warm"):  # warm: a new cache object on the same folder, as a new process
                cache = FeatureCache(str(work / "cache"), cache_policy=args.policy, dtype="fp32", progress=False)
                t_arch = time.perf_counter()
                net = LossNetwork(arch, TAPS, "random", seed=args.seed, device=device, lazy=True)
                df = similarity.run(net, data, cache=cache, batch_size=args.batch_size, progress=False)
                sync()
                timings[phase][arch] = time.perf_counter() - t_arch
                stats[phase] = stats.get(phase, 0) + cache.stats().get("computed", 0)
                for r in df.itertuples():
                    scores[(phase, arch, r.layer, r.dataset)] = r.value
                del net
            print(f"{arch}: plain {plain[arch]:.2f}s, lossnets cold {timings['cold'][arch]:.2f}s, "
                  f"warm {timings['warm'][arch]:.2f}s", flush=True)

        keys = [k[1:] for k in scores if k[0] == "plain"]
        diff = {ph: max(abs(scores[(ph, *k)] - scores[("plain", *k)]) for k in keys) for ph in ("cold", "warm")}
        for arch in archs:
            rows.append(dict(arch=arch, plain_s=plain[arch], cold_s=timings["cold"][arch] + load_s / len(archs),
                             warm_s=timings["warm"][arch] + load_s / len(archs)))
        table = pd.DataFrame(rows)
        total = dict(arch="TOTAL", plain_s=sum(plain.values()), cold_s=sum(timings["cold"].values()) + load_s,
                     warm_s=sum(timings["warm"].values()) + load_s)
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
        table["speedup_cold"] = table["plain_s"] / table["cold_s"]
        table["speedup_warm"] = table["plain_s"] / table["warm_s"]
        n_items = {k: sum(len(s) for s in data.subsets.values() if s.kind == k) for k in ("2afc", "jnd")}
        meta = run_metadata(device=str(device), threads=torch.get_num_threads(), cpus=os.cpu_count(),
                            triplets=n_items["2afc"], jnd_pairs=n_items["jnd"], distinct_images=len(data.images),
                            networks=4 * len(archs), data="synthetic", weights="random",
                            lossnets_load_s=round(load_s, 3),
                            max_abs_score_diff_cold=diff["cold"], max_abs_score_diff_warm=diff["warm"],
                            warm_computed=stats["warm"], cache_policy=args.policy)
        for k, v in meta.items():
            table[k] = v
        OUT.mkdir(parents=True, exist_ok=True)
        stem = f"similarity_grid_{device.type}" + ("" if args.policy == "always" else f"_{args.policy}")
        csv = write_csv_atomic(table, OUT / f"{stem}.csv")
        show = table[["arch", "plain_s", "cold_s", "warm_s", "speedup_cold", "speedup_warm"]]
        md = (f"# Similarity grid: lossnets vs the plain approach ({device}, {torch.get_num_threads()} threads)\n\n"
              f"{4 * len(archs)} loss networks; made set (SYNTHETIC judgments) of {n_items['2afc']} triplets "
              f"and {n_items['jnd']} JND pairs, {len(data.images)} distinct 64x64 images; random weights.\n"
              f"plain = one eager fp32 job per (arch, tap), each decoding the data, running the whole network and computing the reference "
              f"twice; cold = lossnets with a fresh feature cache (policy {args.policy}, fp32); warm = the same with the cache filled.\n"
              f"Largest |score difference| to plain: cold {diff['cold']:.2e}, warm {diff['warm']:.2e} "
              f"(cached features are fp32). Warm run computed {stats['warm']} images. lossnets times include its one decode of the data ({load_s:.2f}s, spread over the architectures).\n\n"
              + show.to_markdown(index=False, floatfmt=".2f") + "\n")
        (OUT / f"{stem}.md").write_text(md)
        print(md)
        print(f"wrote {csv}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
