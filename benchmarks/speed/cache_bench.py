"""Feature cache benchmark (a script, not a test): codecs and chunk shapes, cold vs warm, policy threshold,
and the read path's crc32 check against decompression.

Real ReLU features: seeded random-weight loss networks on 64x64 patches of the scikit-image photos.
Writes benchmarks/speed/results/cache_{codecs,coldwarm,policy,crc}.csv and prints the tables.
Usage: python -m benchmarks.speed.cache_bench [--n 256] [--archs ...] [--threads 1] [--parts codecs coldwarm crc]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import zarr

from lossnets import LossNetwork
from lossnets.benchmarks.data.photos import photo_patches
from lossnets.benchmarks.sweep.results import run_metadata, write_csv_atomic
from lossnets.cache import FeatureCache, prefix_flops_per_byte
from lossnets.cache.store import codecs, item_crcs, take

OUT = Path(__file__).parent / "results"
CODECS = ("none", "zstd1", "zstd3", "zstd9", "lz4-shuffle", "zstd-shuffle")
CHUNKS = (16, 64)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def images(n: int, size: int = 64) -> torch.Tensor:
    return torch.from_numpy(np.stack(photo_patches(n, size, seed=0))).permute(0, 3, 1, 2).contiguous()


def codec_table(feats: dict[str, np.ndarray], tmp: Path) -> pd.DataFrame:
    """Compression ratio, write and read throughput per (tap, codec, chunk items)."""
    rows = []
    for (name, a) in feats.items():
        for codec in CODECS:
            for chunk in CHUNKS:
                path = tmp / f"{name}-{codec}-{chunk}".replace("/", "_")
                arr = zarr.create_array(str(path), shape=a.shape, chunks=(chunk, *a.shape[1:]), dtype=a.dtype,
                                        compressors=codecs(codec), fill_value=0)
                t = time.perf_counter()
                arr[:] = a
                t_write = time.perf_counter() - t
                order = np.random.default_rng(0).permutation(len(a))[: len(a) // 4]  # random item reads
                t = time.perf_counter()
                back = arr[:]
                t_read = time.perf_counter() - t
                t = time.perf_counter()
                take(arr, np.sort(order), chunk)
                t_rand = time.perf_counter() - t
                assert np.array_equal(back, a)
                rows.append({"tap": name, "codec": codec, "chunk_items": chunk, "raw_MB": a.nbytes / 1e6,
                             "ratio": a.nbytes / du(path), "write_MBps": a.nbytes / 1e6 / t_write,
                             "read_MBps": a.nbytes / 1e6 / t_read,
                             "random_quarter_read_MBps": a[order].nbytes / 1e6 / t_rand})
                shutil.rmtree(path)
    return pd.DataFrame(rows)


def crc_table(feats: dict[str, np.ndarray], tmp: Path, codec: str) -> pd.DataFrame:
    """Per tap: whole-array read (decompression) against the crc32 of every item read, 64 items a chunk."""
    rows = []
    for name, a in feats.items():
        path = tmp / f"crc-{name}".replace("/", "_")
        arr = zarr.create_array(str(path), shape=a.shape, chunks=(64, *a.shape[1:]), dtype=a.dtype,
                                compressors=codecs(codec), fill_value=0)
        arr[:] = a
        t = time.perf_counter()
        back = arr[:]
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        item_crcs(back)
        t_crc = time.perf_counter() - t
        rows.append({"tap": name, "codec": codec, "raw_MB": a.nbytes / 1e6, "read_MBps": a.nbytes / 1e6 / t_read,
                     "crc_MBps": a.nbytes / 1e6 / t_crc, "crc_over_read": t_crc / t_read})
        shutil.rmtree(path)
    return pd.DataFrame(rows)


def cold_warm(archs, imgs: torch.Tensor, tmp: Path, codec: str) -> pd.DataFrame:
    """Seconds for: no cache, cold (compute + store), warm (zarr tier only), hot (in-memory tier)."""
    ids = [f"p{i:05d}.png" for i in range(len(imgs))]
    load = lambda names: imgs[[int(n[1:6]) for n in names]]  # noqa: E731
    rows = []
    for arch in archs:
        net = LossNetwork(arch, weights="random", seed=0, device="cpu")
        net.extract(imgs[:64])  # warm up
        t = time.perf_counter()
        net.extract(imgs)
        t_none = time.perf_counter() - t
        url = tmp / f"coldwarm-{arch}"
        cache = FeatureCache(url, cache_policy="always", codec=codec, hot_bytes=1 << 30, progress=False)
        timings = {}
        for phase, c in (("cold", cache), ("warm", FeatureCache(url, cache_policy="always", hot_bytes=0)),
                         ("hot", cache)):
            t = time.perf_counter()
            out = c.get_or_compute(net, "bapps-like", ids, load, preprocessing={"size": 64})
            timings[phase] = time.perf_counter() - t
        nbytes = sum(f.numel() * f.element_size() for f in out.values())
        deep = net.taps[-1]  # one pass costs the prefix of its deepest tap
        flops = prefix_flops_per_byte(arch, deep.module, deep.layer, 64) * out[deep.layer][0].numel() * 2 * len(imgs)
        rows.append({"arch": arch, "items": len(imgs), "feature_MB": nbytes / 1e6, "disk_MB": du(url) / 1e6,
                     "no_cache_s": t_none, "cold_s": timings["cold"], "warm_s": timings["warm"],
                     "hot_s": timings["hot"], "speedup_warm": t_none / timings["warm"],
                     "compute_GFLOPps": flops / t_none / 1e9, "warm_read_MBps": nbytes / 1e6 / timings["warm"]})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256, help="64x64 photo patches")
    p.add_argument("--archs", nargs="+", default=["alexnet", "squeezenet1_1", "vgg16", "resnet18"])
    p.add_argument("--codec", default="zstd1", help="codec of the cold/warm run")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: stable figures on a machine shared with other jobs)")
    p.add_argument("--parts", nargs="+", choices=["codecs", "coldwarm", "crc"], default=["codecs", "coldwarm", "crc"],
                   help="tables to measure (policy comes with coldwarm)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    imgs = images(args.n)
    meta = run_metadata(torch_threads=torch.get_num_threads(), n=args.n)
    tables = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if {"codecs", "crc"} & set(args.parts):
            net = LossNetwork("vgg16", weights="random", seed=0, device="cpu")
            feats = {f"vgg16/{k}": v.half().numpy() for k, v in net.extract(imgs).items()}
            net = LossNetwork("resnet18", layers=("S", "L"), weights="random", seed=0, device="cpu")
            feats.update({f"resnet18/{k}": v.half().numpy() for k, v in net.extract(imgs).items()})
            del net
        if "codecs" in args.parts:
            tables["codecs"] = codec_table(feats, tmp)
        if "crc" in args.parts:
            tables["crc"] = crc_table(feats, tmp, args.codec)
        if "coldwarm" in args.parts:
            cw = tables["coldwarm"] = cold_warm(args.archs, imgs, tmp, args.codec)
            gflops, mbps = cw["compute_GFLOPps"].median(), cw["warm_read_MBps"].median()
            tables["policy"] = pd.DataFrame([{"compute_GFLOPps_median": gflops, "warm_read_MBps_median": mbps,
                                              "flops_per_byte_threshold": gflops * 1e9 / (mbps * 1e6)}])
    for name, df in tables.items():
        write_csv_atomic(df.assign(**meta), OUT / f"cache_{name}.csv")
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.float_format", "{:.2f}".format):
        if "codecs" in tables:
            codec_df = tables["codecs"]
            summary = codec_df.groupby(["codec", "chunk_items"])[["ratio", "write_MBps", "read_MBps",
                                                                   "random_quarter_read_MBps"]].median()
            print(codec_df.pivot_table(index="tap", columns="codec", values="ratio").to_string(), "\n")
            print("median over taps:\n" + summary.to_string(), "\n")
        for name in ("coldwarm", "policy", "crc"):
            if name in tables:
                print(tables[name].to_string(index=False), "\n")
        if "crc" in tables:
            crc = tables["crc"]
            print(f"read-path crc32 check: {crc['crc_over_read'].median():.1%} of the read's time (median over taps)")


if __name__ == "__main__":
    main()
