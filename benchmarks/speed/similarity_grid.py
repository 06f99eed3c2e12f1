"""Similarity benchmark speed (a script, not a test): the whole grid, lossnets against the plain approach.

* plain: as the published code runs it, every (architecture, tap) is a separate job: it loads the data
  set (decodes the PNGs), builds the whole torchvision network (seeded init), runs it in full, eager fp32
  without channels_last (inception_v3, whose tail cannot run at 64x64, as far as it goes), takes the
  tap with a forward hook, and for each triplet computes the
  reference's features twice (once for d(ref,p0), once for d(ref,p1)), in batches of triplets.
* lossnets cold: a fresh LOSSNETS_HOME (so the seeded init of each network is paid once, as on a new
  machine); the data set decoded once; per architecture one LossNetwork with all four taps (one
  forward pass), each distinct image once, the pairs' statistics written to a fresh statistics store.
* lossnets warm: the same run again with a new store object on the same folder (as a new process
  would): the statistics are read back from the zarr tier, no network is built.

All three use the same random weights (no ImageNet weights needed) and the same made data set
(SYNTHETIC judgments: only the speed matters here). Agreement between plain and lossnets is reported
(the cache stores fp32 here, as `similarity` does for a cache URL).

    python -m benchmarks.speed.similarity_grid [--size 4] [--archs ... | --archs zoo] [--batch-size 64]

``--archs zoo``: every torchvision classifier (80), the plain jobs hooking each tap and converting it by its
form (ViT tokens, Swin's channels-last maps) and resizing for the fixed-size models, as LossNetwork does.

On a GPU, a set of BAPPS val's size (about 36k triplets, 9.6k JND pairs) for lossnets alone, without a
cache (all of val's features would not fit a disk at fp32)::

    python -m benchmarks.speed.similarity_grid --size 6000 --jnd-size 4800 --no-plain --no-cache \
        --amp bf16 --batch-size 1024

Writes ``benchmarks/speed/results/similarity_grid_<device>[_<options>].csv`` (per architecture) and ``.md``.
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

from lossnets.benchmarks.similarity import benchmark as similarity
from lossnets.benchmarks.similarity.bapps import load_bapps
from lossnets.benchmarks.similarity.made import make_bapps
from lossnets.benchmarks.similarity.scoring import Distances, score
from lossnets.benchmarks.similarity.statistics import open_store
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.engine import LossNetwork, get_architecture, resolve_archs
from lossnets.engine.forms import CONVERSIONS
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
    # the normalisation of the default recipe (googlenet/inception_v3: ImageNet's, then their transform_input)
    mean_std = NORMALIZATIONS["imagenet"] if model.transform_input else spec.mean_std()
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in mean_std)
    tap, taps = spec.resolve(layer), []  # a registered tap or any module path (a block)
    convert = CONVERSIONS[tap.form] or (lambda x: x)  # the zoo's tokens and channels-last maps as (N, C, H, W)
    # a copy: the rest of the model may write into the tap's output (DenseNet's in-place ReLU after norm5)
    dict(model.named_modules())[tap.module].register_forward_hook(lambda m, i, o: taps.append(convert(o).clone()))

    def f(idx):
        taps.clear()
        x = data.images[torch.from_numpy(idx)].to(device).float() / 255
        if spec.fixed_size:  # ViT, MaxViT: resized to their size, as LossNetwork does
            x = torch.nn.functional.interpolate(x, size=(spec.fixed_size,) * 2, mode=spec.recipe().interpolation,
                                                antialias=True, align_corners=False)
        try:
            model((x - mean) / std)
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
    return [dict(arch=arch, **r) for r in score(Distances(data, values))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4, help="triplets per 2AFC subset (BAPPS val: about 6000)")
    ap.add_argument("--jnd-size", type=int, default=None, help="pairs per JND subset (default --size; BAPPS val: 4800)")
    ap.add_argument("--archs", nargs="+", default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast for lossnets (plain stays fp32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None, help="appended to the result files' name (a run of part of a grid)")
    ap.add_argument("--no-plain", dest="plain", action="store_false", help="time lossnets alone")
    ap.add_argument("--no-cache", dest="cache", action="store_false",
                    help="lossnets without a statistics store (one phase, 'direct', instead of cold and warm)")
    args = ap.parse_args(argv)
    archs = resolve_archs(args.archs)
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    phases = ("cold", "warm") if args.cache else ("direct",)
    work = Path(tempfile.mkdtemp(prefix="simgrid-"))
    os.environ["LOSSNETS_HOME"] = str(work / "home")  # no stored random-weight prefixes from earlier runs
    try:
        t = time.perf_counter()
        root = make_bapps(work / "bapps", size=args.size, jnd_size=args.jnd_size, train_size=0, seed=args.seed)
        print(f"made the set in {time.perf_counter() - t:.1f}s", flush=True)
        scores, seconds, computed = {}, {}, {}
        # warm-up (imports, allocator, first-call costs) outside every timing
        LossNetwork("alexnet", ("E",), "random", device=device)(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))

        t = time.perf_counter()
        data = load_bapps(root)  # lossnets decodes the data set once for the whole grid
        load_s = time.perf_counter() - t
        # interleaved per architecture (plain, then lossnets) so that all phases see the same machine load
        for done, arch in enumerate(archs, 1):
            if args.plain:
                t = time.perf_counter()
                for layer in TAPS:
                    for r in plain_cell(arch, layer, root, args.batch_size, device, args.seed):
                        scores[("plain", arch, r["layer"], r["dataset"])] = r["value"]
                sync()
                seconds[("plain", arch)] = time.perf_counter() - t
            for phase in phases:  # warm: a new store object on the same folder, as a new process would make
                cache = open_store(str(work / "cache"), progress=False) if args.cache else None
                t = time.perf_counter()
                net = LossNetwork(arch, TAPS, "random", seed=args.seed, device=device, amp=args.amp, lazy=True)
                df = similarity.run(net, data, cache=cache, batch_size=args.batch_size, progress=False)
                sync()
                seconds[(phase, arch)] = time.perf_counter() - t
                computed[phase] = computed.get(phase, 0) + (cache.stats()["computed"] if cache else 0)
                for r in df.itertuples():
                    scores[(phase, arch, r.layer, r.dataset)] = r.value
                del net
            print(arch + ": " + ", ".join(f"{ph} {seconds[(ph, arch)]:.2f}s" for ph in ("plain", *phases)
                                          if (ph, arch) in seconds), flush=True)
            # written after every architecture (a long zoo run killed midway keeps what it measured, marked partial)
            _write(args, device, archs[:done], phases, data, load_s, scores, seconds, computed, planned=len(archs))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write(args, device, archs, phases, data, load_s, scores, seconds, computed, planned: int) -> None:
    """The per-architecture table (CSV) and its summary (markdown) under results/, of the first ``len(archs)`` of
    ``planned`` architectures (marked partial until all are measured)."""
    lossnets_phases = [f"{ph}_s" for ph in phases]
    cols = (["plain_s"] if args.plain else []) + lossnets_phases
    rows = [{"arch": arch, **({"plain_s": seconds[("plain", arch)]} if args.plain else {}),
             **{f"{ph}_s": seconds[(ph, arch)] + load_s / planned for ph in phases}} for arch in archs]
    table = pd.DataFrame(rows)
    table = pd.concat([table, pd.DataFrame([{"arch": "TOTAL", **table[cols].sum().to_dict()}])], ignore_index=True)
    diff = {}
    if args.plain:
        keys = [k[1:] for k in scores if k[0] == "plain" and k[1] in archs]
        diff = {ph: max(abs(scores[(ph, *k)] - scores[("plain", *k)]) for k in keys) for ph in phases}
        for ph in phases:
            table[f"speedup_{ph}"] = table["plain_s"] / table[f"{ph}_s"]
    n_items = {k: sum(len(s) for s in data.subsets.values() if s.kind == k) for k in ("2afc", "jnd")}
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    meta = run_metadata(device=str(device), gpu=gpu or "none", threads=torch.get_num_threads(), cpus=os.cpu_count(),
                        triplets=n_items["2afc"], jnd_pairs=n_items["jnd"], distinct_images=len(data.images),
                        networks=4 * len(archs), data="synthetic", weights="random", amp=args.amp or "none",
                        batch_size=args.batch_size, lossnets_load_s=round(load_s, 3), archs_planned=planned,
                        **{f"max_abs_score_diff_{ph}": v for ph, v in diff.items()},
                        **{f"computed_{ph}": v for ph, v in computed.items()})
    for k, v in meta.items():
        table[k] = v
    OUT.mkdir(parents=True, exist_ok=True)
    stem = "_".join([f"similarity_grid_{device.type}"]
                    + ([] if args.cache else ["nocache"]) + ([] if args.plain else ["noplain"])
                    + ([f"size{args.size}"] if args.size != 4 else []) + (["zoo"] if planned > 14 else []) + ([args.tag] if args.tag else []))
    csv = write_csv_atomic(table, OUT / f"{stem}.csv")
    show = table[["arch", *cols, *[c for c in table.columns if c.startswith("speedup_")]]]
    lines = [f"# Similarity grid: lossnets vs the plain approach ({gpu or device}, {torch.get_num_threads()} threads)", "",
             f"{4 * len(archs)} loss networks; made set (SYNTHETIC judgments) of {n_items['2afc']} triplets and "
             f"{n_items['jnd']} JND pairs, {len(data.images)} distinct 64x64 images; random weights; batch "
             f"{args.batch_size} items; lossnets autocast {args.amp or 'none'}."]
    if args.plain:
        lines.append("plain = one eager fp32 job per (arch, tap), each decoding the data, running the whole network "
                     "and computing the reference twice.")
    lines.append({"cold": "cold = lossnets with a fresh statistics store (fp32); warm = the same "
                          f"with the store filled (computed {computed.get('warm', 0)} pairs).",
                  "direct": "direct = lossnets without a statistics store."}[phases[0]])
    if diff:
        lines.append("Largest |score difference| to plain: " + ", ".join(f"{ph} {v:.2e}" for ph, v in diff.items()) + ".")
    lines.append(f"lossnets times include its one decode of the data ({load_s:.2f}s, spread over the architectures).")
    if len(archs) < planned:
        lines.append(f"PARTIAL: {len(archs)} of {planned} architectures measured so far (the run goes on or was stopped).")
    md = "\n".join(lines) + "\n\n" + show.to_markdown(index=False, floatfmt=".2f") + "\n"
    (OUT / f"{stem}.md").write_text(md)
    print(md)
    print(f"wrote {csv}")


if __name__ == "__main__":
    main()
