"""Effective bandwidth of the fused kernels against PyTorch eager and torch.compile of the reference.

At the feature shapes of the 56 taps for BAPPS (64x64 images, batch 256) and super-resolution
(288x288, batch 4), for ``perceptual_distance`` and ``feature_mse``, forward and forward+backward.
Effective bandwidth = the bytes an ideal fused kernel must move / time: forward reads both maps,
forward+backward reads both maps twice and writes both gradients (6 map-sized transfers), and is
quoted as a share of the device's measured device-to-device copy bandwidth (``dst.copy_(src)``).

On CUDA the implementations are ``fused`` (the Triton kernels behind ``lossnets.kernels``), ``eager``
and ``compile`` (the PyTorch reference, plain and under ``torch.compile``). Without a GPU the custom
ops run that same reference, so the script measures only ``eager`` against ``compile`` and says so.

    python -m benchmarks.speed.kernel_bandwidth [--archs alexnet vgg16] [--dtype bfloat16]

Writes ``benchmarks/speed/results/kernel_bandwidth_<device>.csv`` (one row per measurement) and
``.md`` (medians and ratios).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from lossnets.engine.registry import architectures, resolve_archs
from lossnets.engine.truncate import truncate
from lossnets.kernels import feature_mse, perceptual_distance, reference

RESULTS = Path(__file__).parent / "results"
SETTINGS = {"bapps": (64, 256), "superres": (288, 4)}  # image size, batch
OPS = {  # name: (fused op, reference), each (x, y) -> (N,)
    "perceptual_distance": (perceptual_distance, reference.perceptual_distance),
    "feature_mse": (lambda x, y: feature_mse(x, y, "none"), reference.feature_mse),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def tap_shapes(archs, settings: dict[str, tuple[int, int]]) -> list[dict]:
    """(setting, arch, layer, N, C, H, W) of every tap, from the engine's truncated graphs on meta;
    ``settings``: name -> (image size, batch), as SETTINGS."""
    rows = []
    for name in archs:
        arch = architectures()[name]
        with torch.device("meta"):
            graph = truncate(arch.build(), {t.module: t.layer for t in arch.taps})
        for setting, (size, batch) in settings.items():
            out = graph(torch.empty(batch, 3, size, size, device="meta"))
            rows += [dict(setting=setting, arch=name, layer=t.layer, **dict(zip("NCHW", out[t.layer].shape)))
                     for t in arch.taps]
    return rows


def timer(device: torch.device, repeats: int, min_time: float):
    """fn -> best (minimum) seconds per call after one warm-up call, over at least ``repeats`` calls
    and at least ``min_time`` seconds (the best of many is robust to other load on the machine)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run(fn) -> float:
        fn()
        sync()
        times = []
        while len(times) < repeats or (sum(times) < min_time and len(times) < 1000):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return min(times)
    return run


def copy_bandwidth(device: torch.device, run, mib: int = 1024) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write)."""
    src = torch.empty(mib << 20, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    return 2 * src.numel() / run(lambda: dst.copy_(src))


def rel_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (in fp32)."""
    got, want = got.float(), want.float()
    return float((got - want).abs().max() / want.abs().max().clamp_min(torch.finfo(torch.float32).tiny))


def measure(shape, dtype, layout, impls, device, run) -> list[dict]:
    """Forward and forward+backward time of each implementation (x, y) -> (N,) at one shape, and how far its
    output (forward) and gradients (forward+backward) are from the ``eager`` reference's."""
    n, c, h, w = shape
    gen = torch.Generator(device=device).manual_seed(0)
    x, y = (torch.randn(n, c, h, w, generator=gen, device=device, dtype=dtype) for _ in range(2))
    if layout == "channels_last":
        x, y = x.to(memory_format=torch.channels_last), y.to(memory_format=torch.channels_last)
    xg, yg = x.detach().requires_grad_(), y.detach().requires_grad_()
    grad = torch.ones(n, device=device)
    map_bytes = x.numel() * x.element_size()
    want_out = impls["eager"](x, y)
    want_grads = torch.autograd.grad(impls["eager"](xg, yg), (xg, yg), grad)
    rows = []
    for impl, fn in impls.items():
        out_diff = rel_diff(fn(x, y), want_out)
        grad_diff = max(map(rel_diff, torch.autograd.grad(fn(xg, yg), (xg, yg), grad), want_grads))
        fwd = run(lambda: fn(x, y))
        both = run(lambda: torch.autograd.grad(fn(xg, yg), (xg, yg), grad))
        rows += [dict(impl=impl, pass_="forward", seconds=fwd, bytes=2 * map_bytes, max_rel_diff=out_diff),
                 dict(impl=impl, pass_="forward+backward", seconds=both, bytes=6 * map_bytes, max_rel_diff=grad_diff)]
    return rows


def bandwidth_table(df: pd.DataFrame, ratios: list[tuple[str, str]]) -> str:
    """Markdown table: per setting, dtype, op and pass the median share of copy bandwidth of each implementation,
    the per-tap time ratios and the largest difference to the eager reference."""
    impls = list(df.impl.unique())
    lines = ["| setting | dtype | op | pass | taps | " + " | ".join(f"{i} share" for i in impls) + " | "
             + " | ".join(f"{a}/{b}" for a, b in ratios) + " | max rel. diff to eager |",
             "|" + "---|" * (6 + len(impls) + len(ratios))]
    for (setting, dtype, op, pass_), g in df.groupby(["setting", "dtype", "op", "pass_"], sort=False):
        t = g.pivot_table(index=["arch", "layer"], columns="impl", values="seconds")
        cells = [f"{g[g.impl == i].share.median():.1%}" for i in impls]
        for a, b in ratios:
            r = t[a] / t[b]
            cells.append(f"{r.median():.2f}x ({r.min():.2f}-{r.max():.2f})")
        lines.append(f"| {setting} | {dtype} | {op} | {pass_} | {len(t)} | " + " | ".join(cells)
                     + f" | {g.max_rel_diff.max():.1e} |")
    return "\n".join(lines) + "\n"


def summary(df: pd.DataFrame, device: str, copy_bw: float, ratios: list[tuple[str, str]]) -> str:
    """Markdown: median share of copy bandwidth per implementation, and per-tap time ratios."""
    lines = [f"# Kernel bandwidth on {device}", "",
             f"Measured copy bandwidth: {copy_bw / 1e9:.1f} GB/s. Effective bandwidth = minimal bytes "
             "(forward: both maps read once; forward+backward: 6 map-sized transfers) / best time; "
             "share = of the copy bandwidth (median over taps; above 100%: the maps stay in cache, the copy "
             f"is measured on 1 GiB). dtype {', '.join(df.dtype.unique())}, layout {df.layout.iloc[0]}. "
             "Ratio a/b = time of a / time of b per tap (above 1: b is faster): median (min-max) over taps. "
             f"Taps of: {', '.join(df.arch.unique())}. Threads: {torch.get_num_threads()}.", ""]
    if "fused" not in set(df.impl):
        lines += ["No GPU: the fused Triton kernels were not run (on CPU the custom ops run the PyTorch "
                  "reference). Compared: PyTorch eager vs torch.compile of the reference.", ""]
    return "\n".join(lines) + "\n" + bandwidth_table(df, ratios)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", nargs="*", default=None, help="default: all 14 (56 taps)")
    p.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--ops", nargs="*", default=list(OPS), choices=list(OPS))
    p.add_argument("--dtype", default="float32", choices=list(DTYPES))
    p.add_argument("--layout", default="channels_last", choices=["channels_last", "nchw"])
    p.add_argument("--repeats", type=int, default=None, help="least timed calls per measurement (20 on CUDA, 5 on CPU)")
    p.add_argument("--min-time", type=float, default=0.5, help="least seconds of timed calls per measurement")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default torch's; 1 keeps a loaded machine from stalling OpenMP barriers)")
    p.add_argument("--out", type=Path, default=None, help="CSV path; the markdown goes beside it")
    args = p.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    run = timer(device, args.repeats or (20 if device.type == "cuda" else 5), args.min_time)
    copy_bw = copy_bandwidth(device, run)
    if device.type == "cpu":
        print("No GPU: measuring the PyTorch reference only, eager vs torch.compile (the Triton kernels need CUDA).")
    rows = []
    for op in args.ops:
        fused, ref = OPS[op]
        impls = {"eager": ref, "compile": torch.compile(ref)}
        if device.type == "cuda":
            impls = {"fused": fused, **impls}
        for tap in tap_shapes(resolve_archs(args.archs), {s: SETTINGS[s] for s in args.settings}):
            shape = (tap["N"], tap["C"], tap["H"], tap["W"])
            for r in measure(shape, DTYPES[args.dtype], args.layout, impls, device, run):
                rows.append({**tap, "op": op, "dtype": args.dtype, "layout": args.layout, **r})
                print(f"{tap['setting']:8} {op:19} {tap['arch']:18} {tap['layer']} {r['impl']:7} {r['pass_']:16} "
                      f"{r['bytes'] / r['seconds'] / 1e9:7.1f} GB/s", flush=True)
    df = pd.DataFrame(rows)
    df["gb_per_s"] = df.bytes / df.seconds / 1e9
    df["share"] = df.bytes / df.seconds / copy_bw
    df["device"] = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    df["copy_gb_per_s"] = copy_bw / 1e9
    out = args.out or RESULTS / f"kernel_bandwidth_{device.type}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.rename(columns={"pass_": "pass"}).to_csv(out, index=False)
    ratios = [("eager", "fused"), ("compile", "fused")] if device.type == "cuda" else [("eager", "compile")]
    md = summary(df, df.device.iloc[0], copy_bw, ratios)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
