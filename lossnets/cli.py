"""The `lossnets` command line: each command parses its arguments and calls the library.

One parser per command group: the grid (``list``, ``profile``), the benchmarks (``similarity``, ``lin train``,
``superres``, ``segmentation``, ``autoencoder``: their options are the fields of each benchmark's settings, and
they all run through the grid runner, with ``--resume``), runs (``sweep``, ``merge``, ``report``, ``demo``),
``data`` and ``cache``. The project's own errors (:class:`lossnets.errors.LossnetsError`) and OSError are printed
as one line; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
import warnings
from pathlib import Path

from lossnets.errors import ConfigError, LossnetsError


def _shown(value) -> str:
    """A default as --help shows it: lists space-separated, None as none."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return "none" if value is None else str(value)


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the text already says it (flags: off; required ones)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default is argparse.SUPPRESS or action.required or not action.option_strings or action.nargs == 0
                or "default" in text or "required" in text):
            return text
        return f"{text} (default: {_shown(action.default)})".replace("%", "%%").strip()


class _Parser(argparse.ArgumentParser):
    """The parser of every (sub)command: its --help shows the defaults."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_HelpFormatter, **kwargs)


class _Names(argparse.Action):
    """A list option given space- or comma-separated, as researchers type them: ``--archs vgg16,alexnet``."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [n for v in values for n in v.split(",") if n])


def _grid_args(p: argparse.ArgumentParser, engine: bool = True) -> None:
    """--archs/--layers, and the options of the loss networks (and of their feature cache) when ``engine``."""
    p.add_argument("--archs", nargs="+", action=_Names, default=None, help="architectures (default: all 14)")
    p.add_argument("--layers", nargs="+", action=_Names, default=["E", "S", "M", "L"],
                   help="taps: letters, module paths, 'stages' (E S M L), 'blocks' (every block of each trunk, see "
                        "lossnets list --blocks); mixable (similarity, lin: also tap sets, E+S+M+L, lpips, kumar)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None,
                   help="autocast the loss networks to this precision (default: none, float32)")
    p.add_argument("--compile", action="store_true", help="torch.compile the loss networks")
    if engine:
        p.add_argument("--weights", nargs="+", action=_Names, default=["imagenet"],
                       help="imagenet[:NAME] | random[:SCHEME] (SCHEME: torchvision, kaiming, xavier, orthogonal, "
                            "liu) | PATH to a state_dict of the full model; several: each runs (one run, one table)")
        p.add_argument("--seed", type=int, default=0, help="seed of random weights, of training and sampling")
        p.add_argument("--seeds", nargs="+", type=int, default=None,
                       help="run each random-weight loss network once per seed (rows carry it; the report gives "
                            "mean and std over seeds); other weights run once, with the first (default: --seed)")
        p.add_argument("--cache", default=None, help="feature cache URL (a folder or an fsspec URL; default: no cache)")
        p.add_argument("--resume", action="store_true",
                       help="continue the run of the same --out: finished cells are not run again")
        p.add_argument("--quiet", action="store_true", help="no progress bars")


def _grid_parsers(sub) -> None:
    p = sub.add_parser("list", help="print the grid: architecture, tap, module path, channels")
    p.add_argument("--archs", nargs="+", action=_Names, default=None,
                   help="architectures, all (the study's 14) or zoo (every torchvision classifier; default: all)")
    p.add_argument("--zoo", action="store_true", help="every torchvision classifier (as --archs zoo)")
    p.add_argument("--recipes", action="store_true",
                   help="the ImageNet weight recipes instead of the taps: acc@1, acc@5, GFLOPS, parameters, input size")
    p.add_argument("--blocks", action="store_true",
                   help="the block taps instead of the stage taps: what --layers blocks runs, with relative depth")
    p.add_argument("--out", default=None, help="also write the rows to this CSV file")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("profile", help="parameters, depth, MACs/FLOPs, throughput, peak memory per loss network")
    _grid_args(p, engine=False)
    p.add_argument("--size", type=int, default=224, help="input height and width")
    p.add_argument("--batch", type=int, default=32, help="images per timed batch")
    p.add_argument("--out", default=".", help="folder for profile.csv and profile.png (the MACs plot), or a "
                                              "FILE.csv (the plot beside it as FILE.png)")
    p.set_defaults(func=_cmd_profile)


def _cmd_list(args) -> None:
    """The taps from the registry's data files (engine/catalog.py): neither torch nor pandas is imported."""
    from lossnets.engine.catalog import (BLOCK_COLUMNS, LIST_COLUMNS, RECIPE_COLUMNS, block_list_rows, list_rows,
                                         recipe_rows)
    if args.recipes and args.blocks:
        raise ConfigError("--recipes and --blocks list different things; give one")
    columns, rows_of = ((RECIPE_COLUMNS, recipe_rows) if args.recipes else (BLOCK_COLUMNS, block_list_rows)
                        if args.blocks else (LIST_COLUMNS, list_rows))
    try:
        rows = rows_of("zoo" if args.zoo else args.archs)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if args.out:
        import csv
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as f:
            csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n").writerows(
                [dict(zip(columns, columns))] + rows)
    cells = [list(columns)] + [[str(r[c]) for c in columns] for r in rows]
    widths = [max(map(len, column)) for column in zip(*cells)]
    for line in cells:
        print(" ".join(v.rjust(w) for v, w in zip(line, widths)))


def _cmd_profile(args) -> None:
    from lossnets.benchmarks.sweep.config import resolve_archs
    from lossnets.benchmarks.sweep.results import write_csv_atomic
    from lossnets.engine.profiler import plot_macs, profile
    df = profile(resolve_archs(args.archs), args.layers, size=args.size, batch=args.batch, device=args.device,
                 amp=args.amp, compile=args.compile)
    out = Path(args.out) if args.out.endswith(".csv") else Path(args.out) / "profile.csv"
    write_csv_atomic(df, out)
    png = plot_macs(df, out.with_suffix(".png"))
    cols = ["arch", "layer", "params", "depth", "macs", "channels", "features", "images_per_s", "peak_memory_mib"]
    print(df[cols].to_string(index=False))
    print(f"wrote {out} and {png}")


# ------------------------------------------------------------------------------------------ benchmarks


def _option_type(hint) -> tuple[type, bool]:
    """(element type, several values) of a settings field's annotation: ``int | None`` -> (int, False),
    ``tuple[str, ...]`` and ``dict`` (NAME=VALUE items) -> (str, True)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _option_type(args[0])
    if hint is dict or typing.get_origin(hint) in (tuple, list):
        return (args[0] if hint is not dict else str), True
    return hint, False


def _settings_args(p: argparse.ArgumentParser, settings: type, skip=("training",)) -> None:
    """One option per field of a benchmark's settings dataclass (``n_train`` -> ``--n-train``); options not given
    stay out of the namespace, so the dataclass's defaults apply."""
    hints = typing.get_type_hints(settings)
    for f in dataclasses.fields(settings):
        if f.name in skip:
            continue
        kind, many = _option_type(hints[f.name])
        text = f.metadata["help"]
        if f.default is dataclasses.MISSING or "default" not in text:
            text += " (required)" if f.default is dataclasses.MISSING else f" (default: {_shown(f.default)})"
        kw = dict(dest=f.name, default=argparse.SUPPRESS, help=text, metavar=f.metadata["metavar"])
        if kind is bool:
            kw.update(action="store_true", metavar=None)
        elif hints[f.name] is dict:
            kw.update(nargs="+", action="extend")  # NAME=VALUE items
        elif kind is str and many:
            kw.update(nargs="+", action=_Names)
        elif many or f.metadata["variant"]:
            kw.update(nargs="+", type=kind, action="extend")
        else:
            kw.update(type=kind)
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def _lin_training_args(p: argparse.ArgumentParser) -> None:
    """lpips's lin training procedure's settings (LinTraining's fields; its defaults are lpips's)."""
    kw = dict(default=argparse.SUPPRESS)
    p.add_argument("--lin-epochs", "--epochs", dest="lin_epochs", type=int, **kw,
                   help="epochs of lin training, the last --lin-decay-epochs with a linearly decaying lr (default 10)")
    p.add_argument("--lin-decay-epochs", type=int, **kw, help="default: half of the epochs (lpips: 5 of 10)")
    p.add_argument("--lin-batch", type=int, **kw, help="triplets per step (default 50)")
    p.add_argument("--lin-dropout", type=float, **kw,
                   help="drop whole channels of a pair's statistics with this probability (lpips drops single "
                        "feature differences, which statistics do not hold; default none)")


def _lin_training(args):
    """The LinTraining of the --lin-* options given, seeded with --seed."""
    from lossnets.benchmarks.similarity.settings import LinTraining
    given = {k: getattr(args, f"lin_{k}") for k in ("epochs", "decay_epochs", "batch", "dropout")
             if hasattr(args, f"lin_{k}")}
    if "epochs" in given and "decay_epochs" not in given:
        given["decay_epochs"] = given["epochs"] // 2
    return LinTraining(**given, seed=args.seed)


COMMANDS = {"similarity": "benchmark 1: BAPPS 2AFC and JND mAP of every loss network",
            "superres": "benchmark 2: super-resolution (Johnson et al.) trained with each loss network",
            "segmentation": "benchmark 3: road delineation (Mosinska et al.) trained with each loss network; "
                            "`segmentation score` scores predicted maps",
            "autoencoder": "benchmark 4: autoencoders trained with each loss network, scored by downstream MLPs on "
                           "SVHN or STL-10"}


def _benchmark_parsers(sub) -> None:
    """One command per benchmark (options: its settings' fields), and ``lin train``."""
    from lossnets.benchmarks.registry import get_benchmark
    for name, text in COMMANDS.items():
        p = sub.add_parser(name, help=text)
        if name == "segmentation":
            p.add_argument("action", nargs="?", choices=["score"], help="score: pixel and relaxed metrics of --pred "
                                                                         "vs --gt (default: train and test)")
            p.add_argument("--pred", default=None, help="score: folder of predicted maps (8-bit or float TIFF/PNG)")
            p.add_argument("--gt", default=None, help="score: folder of road masks")
        _benchmark_args(p, name)
        p.add_argument("--out", default=f"{name}.csv", help=f"tidy CSV to write (its cells: beside it, {name}.run/)")
        if name == "similarity":
            _lin_training_args(p)
            p.add_argument("--lin-out", default=None,
                           help="with --lin train: folder to write the learned weights to (default: not written)")
        p.set_defaults(func=_cmd_benchmark, benchmark=get_benchmark(name))
    p = sub.add_parser("lin", help="learned metric: LPIPS lin weights for any loss network and tap set")
    p.add_argument("action", choices=["train"], help="train: lpips's procedure on BAPPS 2afc/train, from statistics")
    _benchmark_args(p, "lin_train")
    _lin_training_args(p)
    p.add_argument("--out", required=True, help="folder for <arch>/<tap set>.pth, lin_train.csv and cells/")
    p.set_defaults(func=_cmd_benchmark, benchmark=get_benchmark("lin_train"))


def _benchmark_args(p: argparse.ArgumentParser, name: str) -> None:
    from lossnets.benchmarks.registry import get_benchmark
    _grid_args(p)
    _settings_args(p, get_benchmark(name).settings)


def _grid_config(args, bench, settings: dict):
    """The grid of a benchmark command: its archs and layers, the engine options, the runs of ``settings``."""
    from lossnets.benchmarks.contract import resolve_path
    from lossnets.benchmarks.sweep.config import EngineOptions, Job, SweepConfig, is_synthetic, resolve_archs
    from lossnets.benchmarks.sweep.config import weights_source
    here = Path.cwd()
    engine = EngineOptions(weights=tuple(weights_source(w, here) for w in args.weights), seed=args.seed,
                           seeds=args.seeds, device=args.device,
                           amp=args.amp, compile=args.compile,
                           cache=None if args.cache is None else resolve_path(args.cache, here))
    jobs = [Job(bench.name, s, synthetic=any(is_synthetic(getattr(s, k)) for k in s.path_fields()))
            for s in bench.runs(settings, f"lossnets {args.command}", here)]
    return SweepConfig(resolve_archs(args.archs), tuple(args.layers), engine, tuple(jobs))


def _given_settings(args, bench) -> dict:
    """The settings given on the command line (lpips's lin training procedure from its --lin-* options)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(bench.settings) if hasattr(args, f.name)}
    if "training" in bench.settings.__dataclass_fields__:
        given["training"] = _lin_training(args)
    return given


def _cmd_benchmark(args) -> None:
    """A benchmark over the grid: cells in a run folder beside --out (lin train: in --out), the table at the end."""
    from lossnets.benchmarks.sweep.grid import run_grid
    if getattr(args, "action", None) == "score":
        return _segmentation_score(args)
    bench = args.benchmark
    config = _grid_config(args, bench, _given_settings(args, bench))
    out = Path(args.out)
    lin = bench.name == "lin_train"
    folder = out if lin else out.with_name(out.stem + ".run")
    result = run_grid(config, folder, table=folder / "lin_train.csv" if lin else out, resume=args.resume,
                      restart=not args.resume, progress=not args.quiet,
                      artifacts=out if lin else getattr(args, "lin_out", None), stop_on_input_error=True)
    print(_summary(bench.name, result.table))
    if "data" in result.table.columns and (result.table["data"] == "synthetic").any():
        print("NOTE: the data set is SYNTHETIC (made by `lossnets data make-...`): its figures say nothing about "
              "the networks; rows are labelled data=synthetic")
    print(result.summary())
    if result.failed:
        print(f"lossnets {args.command}: {len(result.failed)} cell(s) failed; their errors are in {folder}/cells; "
              "rerun with --resume to retry only them", file=sys.stderr)
        sys.exit(1)


def _summary(name: str, df) -> str:
    """The table a benchmark command prints: per loss network its scores (lin train: its last epoch)."""
    if df.empty:
        return "no rows"
    if name == "lin_train":
        last = df.groupby(["arch", "layer"], sort=False).tail(1)
        cols = [c for c in ("arch", "layer", "epoch", "loss", "train_2afc", "val_2afc", "val_jnd_map") if c in last]
        return last[cols].to_string(index=False, float_format="%.4f")
    if name == "similarity":
        agg = df[df["dataset"].isin(["2afc/val", "jnd/val"]) & df["metric"].isin(["2afc", "jnd_map"])]
        table = agg.pivot_table(index=["arch", "layer", "lin"], columns="dataset", values="value", sort=False)
    else:
        table = df.pivot_table(index=["benchmark", "arch", "layer", "status"], columns=["dataset", "metric"],
                               values="value", sort=False, dropna=False)
    return table.to_string(float_format="%.4f")


def _segmentation_score(args) -> None:
    from lossnets.benchmarks.segmentation.metrics import score_folders
    from lossnets.benchmarks.sweep.results import write_csv_atomic
    if args.pred is None or args.gt is None:
        raise ConfigError("segmentation score needs --pred DIR (predicted maps) and --gt DIR (road masks)")
    df = score_folders(args.pred, args.gt, threshold=getattr(args, "threshold", 0.5),
                       tolerance=getattr(args, "tolerance", 3.0))
    print(df[df["dataset"] == "all"].to_string(index=False, float_format="%.4f"))
    if args.out:
        write_csv_atomic(df, args.out)
        print(f"wrote {args.out} ({len(df)} rows)")


# ------------------------------------------------------------------------------------------------ runs


def _run_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="run a full grid of (benchmark, arch, tap) cells; a rerun skips finished cells")
    p.add_argument("--config", default=None, help="sweep config TOML ([sweep] grid and one section per benchmark; "
                                                  "default: RUN_DIR's own with --resume)")
    p.add_argument("--out", required=True, help="RUN_DIR: cells/, results.csv")
    p.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                   help="where the groups of cells run")
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
    p.add_argument("--out", default=None, help="report folder (default: RUN_DIR/report)")
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("demo", help="the main job on embedded data: make data, sweep all 56 networks, report, profile")
    p.add_argument("out", nargs="?", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.set_defaults(func=_cmd_demo)


def _cmd_sweep(args) -> None:
    from lossnets.benchmarks.sweep.grid import sweep
    if args.config is None and not args.resume:
        raise ConfigError("give --config FILE.toml (or --resume to continue RUN_DIR with its own config)")
    result = sweep(args.config, args.out, executor=args.executor, resume=args.resume, progress=not args.quiet)
    print(result.summary())
    if result.failed:
        print(f"lossnets sweep: {len(result.failed)} cell(s) failed; their errors are in "
              f"{args.out}/cells/<benchmark>/<arch>/<layer>.error.json; run the same command again to retry them",
              file=sys.stderr)
        sys.exit(1)


def _cmd_merge(args) -> None:
    from lossnets.benchmarks.sweep.merge import merge
    df = merge(args.run_dirs, args.out)
    print(f"merged {len(args.run_dirs)} run(s) into {args.out}: {len(df)} rows")


def _cmd_report(args) -> None:
    from lossnets.benchmarks.sweep.report import write_report
    out = write_report(args.run_dir, out=args.out)
    print(f"wrote {out}/report.md, {out}/report.html and the tables and plots beside them")


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


# ------------------------------------------------------------------------------------------------ data


def _data_parsers(sub) -> None:
    """``data make-*`` (small SYNTHETIC sets in each benchmark's official layout) and ``data download``."""
    data = sub.add_parser("data", help="make or download data sets").add_subparsers(dest="action", required=True)
    q = data.add_parser("make-bapps", help="write a small SYNTHETIC BAPPS-layout set (demo and tests)")
    q.add_argument("--size", type=int, default=24, help="triplets per 2AFC subset")
    q.add_argument("--jnd-size", type=int, default=None, help="pairs per JND subset (default: --size)")
    q.add_argument("--train-size", type=int, default=None,
                   help="triplets per 2afc/train subset (traditional, cnn, mix; default 2 x --size; 0: none)")
    q.set_defaults(func=_cmd_make, maker="lossnets.benchmarks.similarity.made:make_bapps")
    q = data.add_parser("make-sr", help="write small super-resolution folders from scikit-image photos (demo, tests)")
    q.add_argument("--n-train", type=int, default=32, help="training images")
    q.add_argument("--n-val", type=int, default=4, help="validation images")
    q.add_argument("--size", type=int, default=288, help="shorter side of the train/val images (at most 300)")
    q.set_defaults(func=_cmd_make, maker="lossnets.benchmarks.superres.made:make_sr")
    q = data.add_parser("make-roads", help="write a small SYNTHETIC road set in the Massachusetts Roads layout")
    for name, n in (("train", 8), ("valid", 2), ("test", 2)):
        q.add_argument(f"--n-{name}", type=int, default=n, help=f"{name} tiles")
    q.add_argument("--size", type=int, default=256, help="tile side (at most 300)")
    q.set_defaults(func=_cmd_make, maker="lossnets.benchmarks.segmentation.made:make_roads")
    for name, extra, n in (("svhn", "n-extra", 800), ("stl10", "n-unlabeled", 400)):
        q = data.add_parser(f"make-{name}", help=f"write a small SYNTHETIC set in {name}'s official file format")
        q.add_argument("--n-train", type=int, default=n // 2, help="training images")
        q.add_argument("--n-test", type=int, default=n // 4, help="test images")
        q.add_argument(f"--{extra}", type=int, default=n, help=f"images of the {extra[2:]} split")
        q.set_defaults(func=_cmd_make, maker=f"lossnets.benchmarks.autoencoder.made:make_{name}")
    for q in data.choices.values():
        q.add_argument("dir", help="folder to write the set to (empty or new)")
        q.add_argument("--seed", type=int, default=0, help="seed of the SYNTHETIC images")
        q.add_argument("--force", action="store_true",
                       help="write into a folder that is not empty (files of the same names are overwritten)")
    q = data.add_parser("download", help="fetch official archives (resumable, verified) and extract them")
    q.add_argument("name", choices=["bapps", "mrd", "svhn", "stl10"])
    q.add_argument("dir")
    q.add_argument("--parts", nargs="+", default=None,
                   help="archives to fetch (bapps: twoafc_val jnd [twoafc_train]; default: the val ones)")
    q.add_argument("--base-url", default=None,
                   help="mirror to fetch from instead of the official address (default: the official one)")
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=_cmd_data_download)


def _cmd_make(args) -> None:
    """Call a maker with the options its parser defines; it returns the folder, whose README.txt says what it is."""
    import importlib
    module, _, name = args.maker.partition(":")
    target = Path(args.dir)
    if target.is_dir() and any(target.iterdir()) and not args.force:
        raise ConfigError(f"{target} is not empty: give an empty or new folder, or --force to write into it")
    options = {k: v for k, v in vars(args).items() if k not in ("command", "action", "func", "maker", "dir", "force")}
    root = getattr(importlib.import_module(module), name)(args.dir, **options)
    print(f"wrote {root}: {(Path(root) / 'README.txt').read_text().splitlines()[0]}")
    print(f"(see {root}/README.txt). For tests and demos only.")


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


# ----------------------------------------------------------------------------------------------- cache


def _cache_parser(sub) -> None:
    p = sub.add_parser("cache", help="feature cache: ls (entries, sizes, hits) | du | verify [--repair] (checksums) | rm")
    p.add_argument("action", choices=["ls", "du", "verify", "rm"])
    p.add_argument("url", help="cache root: a directory or an fsspec URL")
    p.add_argument("entries", nargs="*", help="entry names or prefixes (verify: default all; rm: required)")
    p.add_argument("--repair", action="store_true",
                   help="verify: drop the rows that fail their checksums, so they read as missing")
    p.set_defaults(func=_cmd_cache)


def _cmd_cache(args) -> None:
    from lossnets.cache import admin
    from lossnets.cache.store import Root
    if args.repair and args.action != "verify":
        raise ConfigError(f"--repair goes with `lossnets cache verify`, not `{args.action}`")
    root = Root(args.url)
    if not root.entry_names():  # a mistyped path is not an empty cache
        why = "no entry (DATASET/ARCH/TAP-HASH/meta.json) under it" if root.fs.exists(root.path) else "no such path"
        raise ConfigError(f"{root.url} holds no feature cache: {why}")
    if args.action == "ls":
        import pandas as pd
        print(pd.DataFrame(admin.entries(args.url)).to_string(index=False))
    elif args.action == "du":
        print(f"{admin.disk_usage(args.url) / 2**20:.1f} MiB\t{args.url}")
    elif args.action == "verify":
        _cache_verify(args, admin)
    elif not args.entries:
        raise ConfigError("name the entries (or prefixes such as a dataset name) to remove")
    else:
        for name in admin.remove(args.url, args.entries):
            print(f"removed {name}")


def _cache_verify(args, admin) -> None:
    bad = admin.verify(args.url, args.entries or None, repair=args.repair)
    for b in bad:
        print(f"BAD {b['entry']} chunk {b['chunk']} rows {b['rows']}: {b['reason']}")
    rows, entries = sum(len(b["rows"]) for b in bad), len({b["entry"] for b in bad})
    where = f"{rows} damaged row(s) in {len(bad)} chunk(s) of {entries} entry(ies) under {args.url}"
    if bad and not args.repair:
        raise ConfigError(f"{where}; `lossnets cache verify {args.url} --repair` drops them (the next run recomputes "
                          "them)")
    print(f"dropped {where}: they read as missing" if bad else "all checksums match")


# ------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lossnets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_grid_parsers, _benchmark_parsers, _run_parsers, _data_parsers, _cache_parser):
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    said = set()

    def one_line(message, category, *_, **__):  # each warning once, read as the errors are: no source line
        text = f"lossnets {args.command}: {category.__name__}: {message}"
        if text not in said:
            said.add(text)
            print(text, file=sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line
            args.func(args)
    except (LossnetsError, OSError) as e:  # what the user gave is wrong: one line; anything else is a bug
        print(f"lossnets {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
