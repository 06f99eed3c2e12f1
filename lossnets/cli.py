"""The `lossnets` command line: it only parses arguments and calls the API.

Each command is a ``_cmd_<name>(args)`` function plus its parser in ``build_parser``.
"""
from __future__ import annotations

import argparse
import sys


class _Names(argparse.Action):
    """A list option given space- or comma-separated, as researchers type them: ``--archs vgg16,alexnet``."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [n for v in values for n in v.split(",") if n])


def _add_grid_args(p: argparse.ArgumentParser) -> None:
    """--archs/--layers, shared by every command that runs over the grid."""
    p.add_argument("--archs", nargs="+", action=_Names, default=None, help="architectures (default: all 14)")
    p.add_argument("--layers", nargs="+", action=_Names, default=["E", "S", "M", "L"],
                   help="taps: letters or module paths (similarity, lin: also tap sets, E+S+M+L or lpips)")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """Weights and runtime options of the LossNetwork."""
    p.add_argument("--weights", default="imagenet", help="imagenet | random | PATH to a state_dict")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the loss networks")


def _add_similarity_args(p: argparse.ArgumentParser) -> None:
    """The similarity runs' cache, batch, output and progress options."""
    p.add_argument("--cache", default=None, help="cache URL (directory or fsspec URL): the pair statistics are "
                                                  "stored there, beside any features")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_lin_training_args(p: argparse.ArgumentParser) -> None:
    """lpips's lin training procedure's settings (its defaults)."""
    p.add_argument("--lin-epochs", "--epochs", dest="lin_epochs", type=int, default=10,
                   help="epochs of lin training, the last --lin-decay-epochs with a linearly decaying lr")
    p.add_argument("--lin-decay-epochs", type=int, default=None, help="default: half of the epochs (lpips: 5 of 10)")
    p.add_argument("--lin-batch", type=int, default=50)
    p.add_argument("--lin-dropout", type=float, default=0.0,
                   help="drop whole channels of a pair's statistics with this probability (lpips drops single "
                        "feature differences, which statistics do not hold; default none)")


def _add_training_args(p: argparse.ArgumentParser, name: str) -> None:
    """Options shared by the training benchmarks: protocol, the target features' cache, output, quiet."""
    p.add_argument("--protocol", choices=["paper", "standard"], default="paper",
                   help="paper: as the published code; standard: its known flaws fixed")
    p.add_argument("--cache", default=None, help="feature cache URL for the fixed target features")
    p.add_argument("--out", default=f"{name}.csv", help="tidy CSV to write")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_list(args) -> None:
    import pandas as pd

    from lossnets.engine.profiler import tap_table
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(tap_table(args.archs).to_string(index=False))


def _cmd_profile(args) -> None:
    from pathlib import Path

    from lossnets.engine.profiler import plot_macs, profile
    from lossnets.benchmarks.sweep.results import write_csv_atomic
    df = profile(args.archs, args.layers, size=args.size, batch=args.batch, device=args.device,
                 amp=args.amp, compile=args.compile)
    out = Path(args.out)
    write_csv_atomic(df, out)
    png = plot_macs(df, out.with_suffix(".png"))
    cols = ["arch", "layer", "params", "depth", "macs", "channels", "features", "throughput", "peak_memory"]
    print(df[cols].to_string(index=False))
    print(f"wrote {out} and {png}")


def _cmd_demo(args) -> None:
    from lossnets.benchmarks.demo import run_demo
    paths, failed = run_demo(args.out, device=args.device)
    print("SYNTHETIC data and RANDOM weights: the demo shows the machinery, not the paper's results.")
    for name, path in paths.items():
        print(f"{name:>10}: {path}")
    if failed:
        print(f"lossnets demo: {failed} cell(s) failed; their errors are in {paths['results'].parent}/cells",
              file=sys.stderr)
        sys.exit(1)


# --- commands added by each room go below this line, one function each ---


def _lin_training(args):
    from lossnets.benchmarks.similarity.lin_training import LinTraining
    return LinTraining(epochs=args.lin_epochs, decay_epochs=args.lin_decay_epochs if args.lin_decay_epochs is not None
                       else args.lin_epochs // 2, batch=args.lin_batch, dropout=args.lin_dropout, seed=args.seed)


def _cmd_similarity(args) -> None:
    from lossnets.benchmarks.similarity.benchmark import evaluate
    df = evaluate(args.archs, args.layers, args.data, lin=args.lin, weights=args.weights, seed=args.seed,
                  device=args.device, amp=args.amp, compile=args.compile, cache=args.cache, out=args.out,
                  subsets=args.subsets, batch_size=args.batch_size, training=_lin_training(args),
                  lin_out=args.lin_out, progress=not args.quiet)
    agg = df[df["dataset"].isin(["2afc/val", "jnd/val"])]
    table = agg.pivot_table(index=["arch", "layer", "lin"], columns="dataset", values="value", sort=False)
    print(table.to_string(float_format="%.4f"))
    if (df["data"] == "synthetic").any():
        print("NOTE: the data set is SYNTHETIC (made by `lossnets data make-bapps`): its judgments are not human "
              "and the scores say nothing about perception; rows are labelled data=synthetic")
    if args.out:
        print(f"wrote {args.out} ({len(df)} rows)")


def _cmd_lin(args) -> None:
    import pandas as pd

    from lossnets.benchmarks.similarity.statistics import open_store, statistics
    from lossnets.benchmarks.similarity.bapps import find_subsets, load_bapps, resolve_root
    from lossnets.benchmarks.similarity.lin_training import learn_lin
    from lossnets.benchmarks.sweep.results import write_csv_atomic
    from lossnets.engine import LossNetwork, resolve_archs
    from lossnets.engine.tap_sets import tap_sets, union_layers
    plans = {arch: tap_sets(arch, args.layers) for arch in resolve_archs(args.archs)}
    train = load_bapps(args.data, split="train", progress=not args.quiet)
    has_val = find_subsets(resolve_root(args.data, "val"))  # scored after every epoch when present
    val = load_bapps(args.data, progress=not args.quiet) if has_val else None
    store = open_store(args.cache, not args.quiet)
    histories = []
    for arch, sets in plans.items():
        net = LossNetwork(arch, union_layers(sets), args.weights, seed=args.seed, device=args.device,
                          compile=args.compile, amp=args.amp, lazy=True)
        val_stats = None if val is None else statistics(net, val, cache=store, batch_size=args.batch_size,
                                                        progress=not args.quiet)
        _, history = learn_lin(net, train, sets, val=val_stats, cache=store, training=_lin_training(args),
                               out_dir=args.out, batch_size=args.batch_size, progress=not args.quiet)
        histories.append(history)
        write_csv_atomic(pd.concat(histories, ignore_index=True), f"{args.out}/lin_train.csv")
    table = pd.concat(histories, ignore_index=True)
    last = table.groupby(["arch", "layer"], sort=False).tail(1)
    print(last[[c for c in ("arch", "layer", "epoch", "loss", "train_2afc", "val_2afc", "val_jnd_map")
                if c in last.columns]].to_string(index=False, float_format="%.4f"))
    if (table["data"] == "synthetic").any():
        print("NOTE: the data set is SYNTHETIC: the weights were fitted to simulated judgments, not human ones")
    print(f"wrote {args.out}/<arch>/<tap set>.pth (lpips format; use with `lossnets similarity --lin {args.out}`) "
          f"and {args.out}/lin_train.csv")


def _cmd_data_make_bapps(args) -> None:
    from lossnets.benchmarks.similarity.made import make_bapps
    root = make_bapps(args.dir, size=args.size, jnd_size=args.jnd_size, train_size=args.train_size, seed=args.seed)
    print(f"wrote a SYNTHETIC BAPPS-layout set to {root} (scikit-image photo patches, SYNTHETIC judgments from a "
          f"pixel metric plus noise, not human; see {root}/README.txt). For tests and demos only.")


def _cmd_data_download(args) -> None:
    if args.name == "mrd":
        from lossnets.benchmarks.segmentation.download import fetch_mrd
        print(f"ready: {fetch_mrd(args.dir, base_url=args.base_url, progress=not args.quiet)}")
        return
    if args.name in ("svhn", "stl10"):
        from lossnets.benchmarks.autoencoder import data
        download = data.download_svhn if args.name == "svhn" else data.download_stl10
        print(f"ready: {download(args.dir, base_url=args.base_url)}")
        return
    from lossnets.benchmarks.data.download import fetch
    for path in fetch(args.name, args.dir, parts=args.parts, base_url=args.base_url, progress=not args.quiet):
        print(f"ready: {path}")


def _train_per_arch(args, train, normalize: str = "imagenet") -> None:
    """A training benchmark over the grid: one lockstep run per architecture (its taps together), the tidy
    table written after each (a crash keeps the finished ones), then printed."""
    import pandas as pd

    from lossnets.benchmarks.sweep.results import write_csv_atomic
    from lossnets.engine import LossNetwork, resolve_archs
    frames = []
    for arch in resolve_archs(args.archs):
        net = LossNetwork(arch, layers=args.layers, weights=args.weights, seed=args.seed, device=args.device,
                          compile=args.compile, amp=args.amp, normalize=normalize)
        frames.append(train(net))
        df = pd.concat(frames, ignore_index=True)
        write_csv_atomic(df, args.out)
    table = df.pivot_table(index=["benchmark", "arch", "layer", "status"], columns=["dataset", "metric"],
                           values="value", sort=False, dropna=False)
    print(table.to_string(float_format="%.4f"))
    print(f"wrote {args.out} ({len(df)} rows)")


def _cmd_superres(args) -> None:
    from lossnets.benchmarks.superres.benchmark import parse_tests, run
    tests = parse_tests(args.test)
    _train_per_arch(args, lambda net: run(
        net, args.train, args.val, tests, scale=args.scale, iterations=args.iterations, batch=args.batch,
        size=args.size, protocol=args.protocol, val_every=args.val_every, cache=args.cache, seed=args.seed,
        progress=not args.quiet, n_train=args.n_train, n_val=args.n_val))


def _cmd_segmentation(args) -> None:
    if args.action == "score":
        return _segmentation_score(args)
    if args.data is None:
        raise ValueError("give --data DIR (the Massachusetts Roads folder), or `segmentation score --pred DIR --gt DIR`")
    from lossnets.benchmarks.segmentation.benchmark import run
    _train_per_arch(args, lambda net: run(
        net, args.data, epochs=args.epochs, batch=args.batch, size=args.size, refine=args.refine, mu=args.mu,
        protocol=args.protocol, crops=args.crops, threshold=args.threshold, tolerance=args.tolerance,
        cache=args.cache, seed=args.seed, progress=not args.quiet))


def _segmentation_score(args) -> None:
    from lossnets.benchmarks.segmentation.metrics import score_folders
    from lossnets.benchmarks.sweep.results import write_csv_atomic
    if args.pred is None or args.gt is None:
        raise ValueError("segmentation score needs --pred DIR (predicted maps) and --gt DIR (road masks)")
    df = score_folders(args.pred, args.gt, threshold=0.5 if args.threshold is None else args.threshold,
                       tolerance=args.tolerance)
    print(df[df["dataset"] == "all"].to_string(index=False, float_format="%.4f"))
    if args.out:
        write_csv_atomic(df, args.out)
        print(f"wrote {args.out} ({len(df)} rows)")


def _cmd_autoencoder(args) -> None:
    from lossnets.benchmarks.autoencoder.benchmark import run
    _train_per_arch(args, lambda net: run(
        net, args.data, dataset=args.dataset, epochs=args.epochs, batch=args.batch, embedding=args.embedding,
        vae=args.vae, mlp_epochs=args.mlp_epochs, mlp_batch=args.mlp_batch, protocol=args.protocol, cache=args.cache,
        seed=args.seed, progress=not args.quiet, n_autoencoder=args.n_autoencoder, n_mlp=args.n_mlp,
        n_test=args.n_test))


def _cmd_data_make_svhn(args) -> None:
    from lossnets.benchmarks.autoencoder.made import make_svhn
    root = make_svhn(args.dir, n_train=args.n_train, n_test=args.n_test, n_extra=args.n_extra, seed=args.seed)
    print(f"wrote a SYNTHETIC set in SVHN's file format to {root} (10 classes of tinted scikit-image photo "
          f"patches, not digits; see {root}/README.txt). For tests and demos only.")


def _cmd_data_make_stl10(args) -> None:
    from lossnets.benchmarks.autoencoder.made import make_stl10
    root = make_stl10(args.dir, n_train=args.n_train, n_test=args.n_test, n_unlabeled=args.n_unlabeled,
                      seed=args.seed)
    print(f"wrote a SYNTHETIC set in STL-10's binary format to {root} (10 classes of tinted scikit-image photo "
          f"patches; see {root}/README.txt). For tests and demos only.")


def _cmd_data_make_roads(args) -> None:
    from lossnets.benchmarks.segmentation.made import make_roads
    root = make_roads(args.dir, n_train=args.n_train, n_valid=args.n_valid, n_test=args.n_test, size=args.size,
                      seed=args.seed)
    print(f"wrote a SYNTHETIC road set in the official Massachusetts Roads layout to {root} (roads drawn over "
          f"scikit-image photos; see {root}/README.txt). For tests and demos only.")


def _cmd_data_make_sr(args) -> None:
    from lossnets.benchmarks.superres.made import make_sr
    root = make_sr(args.dir, n_train=args.n_train, n_val=args.n_val, size=args.size, seed=args.seed)
    print(f"wrote super-resolution demo folders to {root}: train/, val/, test/{{set5,set14,bsd100}} "
          f"(crops of scikit-image's photos, not the benchmark's data sets; see {root}/README.txt)")


def _cmd_cache(args) -> None:
    from lossnets.cache import admin
    if args.repair and args.action != "verify":
        raise ValueError(f"--repair goes with `lossnets cache verify`, not `{args.action}`")
    if args.action == "ls":
        import pandas as pd
        df = pd.DataFrame(admin.entries(args.url))
        print(df.to_string(index=False) if len(df) else f"no entries under {args.url}")
    elif args.action == "du":
        print(f"{admin.disk_usage(args.url) / 2**20:.1f} MiB\t{args.url}")
    elif args.action == "verify":
        bad = admin.verify(args.url, args.entries or None, repair=args.repair)
        for b in bad:
            print(f"BAD {b['entry']} chunk {b['chunk']} rows {b['rows']}: {b['reason']}")
        rows, entries = sum(len(b["rows"]) for b in bad), len({b["entry"] for b in bad})
        where = f"{rows} damaged row(s) in {len(bad)} chunk(s) of {entries} entry(ies) under {args.url}"
        if bad and not args.repair:
            raise ValueError(f"{where}; `lossnets cache verify {args.url} --repair` drops them "
                             "(the next run recomputes them)")
        print(f"dropped {where}: they read as missing" if bad else "all checksums match")
    elif args.action == "rm":
        if not args.entries:
            raise ValueError("name the entries (or prefixes such as a dataset name) to remove")
        for name in admin.remove(args.url, args.entries):
            print(f"removed {name}")


def _cmd_sweep(args) -> None:
    from lossnets.benchmarks.sweep.runner import sweep
    if args.config is None and not args.resume:
        raise ValueError("give --config FILE.toml (or --resume to continue RUN_DIR with its own config)")
    result = sweep(args.config, args.out, executor=args.executor, resume=args.resume, progress=not args.quiet)
    print(result.summary())
    if result.failed:
        print(f"lossnets sweep: {len(result.failed)} cell(s) failed; their errors are in "
              f"{args.out}/cells/<benchmark>/<arch>/<layer>.error.json; run the same command again to retry them",
              file=sys.stderr)
        sys.exit(1)


def _cmd_merge(args) -> None:
    from lossnets.benchmarks.sweep.runner import RESULTS, merge
    df = merge(args.run_dirs, args.out)
    print(f"merged {len(args.run_dirs)} run(s) into {args.out}/{RESULTS}: {len(df)} rows")


def _cmd_report(args) -> None:
    from lossnets.benchmarks.sweep.report import write_report
    out = write_report(args.run_dir, out=args.out)
    print(f"wrote {out}/report.md, {out}/report.html and the tables and plots beside them")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossnets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="print the grid: architecture, tap, module path, channels")
    p.add_argument("--archs", nargs="+", action=_Names, default=None)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("profile", help="parameters, depth, MACs/FLOPs, throughput, peak memory per loss network")
    _add_grid_args(p)
    p.add_argument("--size", type=int, default=224, help="input height and width")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--out", default="profile.csv", help="CSV path; the MACs plot goes beside it as .png")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("demo", help="the main job on embedded data: make data, sweep all 56 networks, report, profile")
    p.add_argument("out", nargs="?", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_demo)

    # --- parsers added by each room go below this line ---
    p = sub.add_parser("similarity", help="benchmark 1: BAPPS 2AFC and JND mAP of every loss network")
    _add_grid_args(p)
    _add_engine_args(p)
    p.add_argument("--data", required=True, help="BAPPS folder (2afc/val/..., jnd/val/...; 2afc/train/... for --lin train)")
    p.add_argument("--subsets", nargs="+", default=None,
                   help="subsets to use: 2afc/val/cnn, jnd, cnn, ... (default: every one found)")
    p.add_argument("--lin", default=None, metavar="lpips|train|FILE|DIR",
                   help="also score with LPIPS lin weights: lpips (v0.1, --layers lpips), a file in lpips's format, "
                        "a folder from `lossnets lin train`, or train (learn them on 2afc/train first)")
    p.add_argument("--lin-out", default=None, help="with --lin train: folder to write the learned weights to")
    p.add_argument("--out", default="similarity.csv", help="tidy CSV to write")
    _add_similarity_args(p)
    _add_lin_training_args(p)
    p.set_defaults(func=_cmd_similarity)

    p = sub.add_parser("lin", help="learned metric: LPIPS lin weights for any loss network and tap set")
    p.add_argument("action", choices=["train"], help="train: lpips's procedure on BAPPS 2afc/train, from statistics")
    _add_grid_args(p)
    _add_engine_args(p)
    p.add_argument("--data", required=True, help="BAPPS folder with 2afc/train/... (and 2afc/val/..., jnd/val/...)")
    p.add_argument("--out", required=True, help="folder for <arch>/<tap set>.pth and lin_train.csv")
    _add_similarity_args(p)
    _add_lin_training_args(p)
    p.set_defaults(func=_cmd_lin)

    p = sub.add_parser("superres", help="benchmark 2: super-resolution (Johnson et al.) trained with each loss network")
    _add_grid_args(p)
    _add_engine_args(p)
    p.add_argument("--train", required=True, help="folder of training images (COCO train2014)")
    p.add_argument("--val", required=True, help="folder of validation images (COCO val2014)")
    p.add_argument("--test", nargs="+", action="extend", required=True, metavar="NAME=DIR",
                   help="test folders, e.g. set5=DIR set14=DIR bsd100=DIR")
    p.add_argument("--scale", type=int, nargs="+", choices=[4, 8], default=[4])
    p.add_argument("--iterations", type=int, default=200000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=288, help="HR patch size")
    p.add_argument("--val-every", type=int, default=None, help="iterations between validations (default ~1/20 run, at most 1000)")
    p.add_argument("--n-train", type=int, default=10000, help="training images sampled with --seed (0: all)")
    p.add_argument("--n-val", type=int, default=100, help="validation images sampled with --seed (0: all)")
    _add_training_args(p, "superres")
    p.set_defaults(func=_cmd_superres)

    p = sub.add_parser("segmentation", help="benchmark 3: road delineation (Mosinska et al.) trained with each loss "
                                            "network; `segmentation score` scores predicted maps")
    p.add_argument("action", nargs="?", choices=["score"], help="score: pixel and relaxed metrics of --pred vs --gt")
    _add_grid_args(p)
    _add_engine_args(p)
    p.add_argument("--data", default=None, help="Massachusetts Roads folder ({train,valid,test}/{sat,map})")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224, help="training crop (and paper-protocol evaluation) size")
    p.add_argument("--refine", type=int, default=3, help="refinement iterations K of the U-Net")
    p.add_argument("--mu", type=float, default=0.01, help="weight of the perceptual term beside BCE")
    p.add_argument("--crops", default="random", help="random (fresh each epoch) | fixed:N (a cached bank per tile)")
    p.add_argument("--threshold", type=float, default=None,
                   help="road probability threshold (default 0.3 paper, 0.5 standard and score)")
    p.add_argument("--tolerance", type=float, default=3.0, help="relaxed metric's tolerance in pixels")
    p.add_argument("--pred", default=None, help="score: folder of predicted maps (8-bit or float TIFF/PNG)")
    p.add_argument("--gt", default=None, help="score: folder of road masks")
    _add_training_args(p, "segmentation")
    p.set_defaults(func=_cmd_segmentation)

    p = sub.add_parser("autoencoder", help="benchmark 4: autoencoders trained with each loss network, scored by "
                                           "downstream MLPs on SVHN or STL-10")
    _add_grid_args(p)
    _add_engine_args(p)
    p.add_argument("--data", required=True, help="folder of the official files ({train,test,extra}_32x32.mat or "
                                                 "stl10_binary/)")
    p.add_argument("--dataset", nargs="+", action=_Names, default=["svhn"], help="svhn, stl10 or both")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--embedding", type=int, default=64)
    p.add_argument("--vae", type=float, default=None, metavar="GAMMA", help="the variational variant, KL weight GAMMA")
    p.add_argument("--mlp-epochs", type=int, default=100)
    p.add_argument("--mlp-batch", type=int, default=256)
    p.add_argument("--n-autoencoder", type=int, default=None, help="read only the first N autoencoder images")
    p.add_argument("--n-mlp", type=int, default=None, help="read only the first N MLP training images")
    p.add_argument("--n-test", type=int, default=None, help="read only the first N test images")
    _add_training_args(p, "autoencoder")
    p.set_defaults(func=_cmd_autoencoder)

    p = sub.add_parser("data", help="make or download data sets")
    data_sub = p.add_subparsers(dest="action", required=True)  # one parser and one _cmd_data_<action> each
    q = data_sub.add_parser("make-bapps", help="write a small SYNTHETIC BAPPS-layout set (demo and tests)")
    q.add_argument("dir")
    q.add_argument("--size", type=int, default=24, help="triplets per 2AFC subset")
    q.add_argument("--jnd-size", type=int, default=None, help="pairs per JND subset (default: --size)")
    q.add_argument("--train-size", type=int, default=None,
                   help="triplets per 2afc/train subset (traditional, cnn, mix; default 2 x --size; 0: none)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_cmd_data_make_bapps)
    q = data_sub.add_parser("download", help="fetch official archives (resumable, verified) and extract them")
    q.add_argument("name", choices=["bapps", "mrd", "svhn", "stl10"])
    q.add_argument("dir")
    q.add_argument("--parts", nargs="+", default=None,
                   help="archives to fetch (bapps: twoafc_val jnd [twoafc_train]; default: the val ones)")
    q.add_argument("--base-url", default=None, help="mirror to fetch from instead of the official address")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=_cmd_data_download)
    q = data_sub.add_parser("make-sr", help="write small super-resolution folders from scikit-image photos (demo, tests)")
    q.add_argument("dir")
    q.add_argument("--n-train", type=int, default=32)
    q.add_argument("--n-val", type=int, default=4)
    q.add_argument("--size", type=int, default=288, help="shorter side of the train/val images (at most 300)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_cmd_data_make_sr)
    q = data_sub.add_parser("make-roads", help="write a small SYNTHETIC road set in the Massachusetts Roads layout")
    q.add_argument("dir")
    q.add_argument("--n-train", type=int, default=8)
    q.add_argument("--n-valid", type=int, default=2)
    q.add_argument("--n-test", type=int, default=2)
    q.add_argument("--size", type=int, default=256, help="tile side (at most 300)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=_cmd_data_make_roads)
    for name, extra, n in (("svhn", "n-extra", 800), ("stl10", "n-unlabeled", 400)):
        q = data_sub.add_parser(f"make-{name}", help=f"write a small SYNTHETIC set in {name}'s official file format")
        q.add_argument("dir")
        q.add_argument("--n-train", type=int, default=n // 2)
        q.add_argument("--n-test", type=int, default=n // 4)
        q.add_argument(f"--{extra}", type=int, default=n)
        q.add_argument("--seed", type=int, default=0)
        q.set_defaults(func=_cmd_data_make_svhn if name == "svhn" else _cmd_data_make_stl10)
    p = sub.add_parser("cache",
                       help="feature cache: ls (entries, sizes, hits) | du | verify [--repair] (checksums) | rm")
    p.add_argument("action", choices=["ls", "du", "verify", "rm"])
    p.add_argument("url", help="cache root: a directory or an fsspec URL")
    p.add_argument("entries", nargs="*", help="entry names or prefixes (verify: default all; rm: required)")
    p.add_argument("--repair", action="store_true",
                   help="verify: drop the rows that fail their checksums, so they read as missing")
    p.set_defaults(func=_cmd_cache)
    p = sub.add_parser("sweep", help="run a full grid of (benchmark, arch, tap) cells; a rerun skips finished cells")
    p.add_argument("--config", default=None, help="sweep config TOML ([sweep] grid and one section per benchmark)")
    p.add_argument("--out", required=True, help="RUN_DIR: cells/, results.csv")
    p.add_argument("--executor", choices=["local", "ray", "slurm"], default="local")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR with its own config (no --config) or with changed settings")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("merge", help="merge the cells of several runs into one results table")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", required=True, help="RUN_DIR to write (may be one of the inputs)")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser("report", help="tables, plots and the paper comparison of a run: RUN_DIR/report/")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="report folder (default RUN_DIR/report)")
    p.set_defaults(func=_cmd_report)


    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, OSError, ImportError) as e:  # bad input, missing files or packages: one line
        print(f"lossnets {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
