"""Full-grid sweeps: plan the (benchmark, arch, tap) cells, run them grouped by architecture, resume, merge.

A run lives in one folder, RUN_DIR::

    RUN_DIR/sweep.json                          the resolved config (absolute paths) and its fingerprint
    RUN_DIR/cells/<benchmark>/<arch>/<layer>.csv         one finished cell: its tidy rows (atomic write)
    RUN_DIR/cells/<benchmark>/<arch>/<layer>.error.json  one failed cell: error and traceback
    RUN_DIR/results.csv                         every finished cell, rebuilt atomically from the cell files

Cells are grouped by architecture: one process builds one LossNetwork with every unfinished tap of that
architecture and calls each benchmark's ``run(net, ...)`` with it, so the network is built (and
compiled) once per group. A cell is finished when its CSV exists; a rerun skips finished cells and
retries failed and missing ones. A benchmark call that fails for a multi-tap network is retried tap by
tap (``isolate_failures``), so that one bad tap fails only its own cell.

Benchmarks are looked up in a small registry, name -> ``"module:function"``; a config section can also
name its own function with ``function = "module:function"``.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import os
import socket
import sys
import time
import tomllib
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from lossnets.engine.atomic import atomic_write_text

from ..data.photos import SYNTHETIC_MARKER
from .results import COLUMNS, run_metadata, write_csv_atomic

RESULTS = "results.csv"
CELLS = "cells"
STATE = "sweep.json"
# sections of a sweep config that are not benchmarks
RESERVED_SECTIONS = ("sweep", "local", "ray", "slurm", "report")
# columns that, besides COLUMNS minus value, tell two rows of a table apart (when present)
EXTRA_KEY_COLUMNS = ("seed", "protocol", "scale", "subset", "mlp", "lin")


@dataclass(frozen=True)
class BenchmarkSpec:
    """A registered benchmark: its ``run`` function as ``"module:function"`` and which of its config
    keys are data paths (resolved against the config file's folder; a dict's values are resolved too)."""
    name: str
    function: str
    paths: tuple[str, ...] = ()


BENCHMARKS: dict[str, BenchmarkSpec] = {}


def register_benchmark(name: str, function: str, paths=()) -> BenchmarkSpec:
    """Register (or replace) a benchmark: ``function`` is ``"module:function"`` with the contract
    ``run(net, **settings, cache=None, progress=True) -> tidy DataFrame`` over every layer of ``net``; a function
    that takes ``layers`` gets the cells' taps or tap sets (``E+S+M+L``, ``lpips``: ``net`` has all their taps),
    one that takes ``out_dir`` a folder of the run for its artifacts (``RUN_DIR/artifacts/<benchmark>``)."""
    if ":" not in function:
        raise ValueError(f"benchmark function must be 'module:function', got {function!r}")
    spec = BenchmarkSpec(name, function, tuple(paths))
    BENCHMARKS[name] = spec
    return spec


register_benchmark("similarity", "lossnets.benchmarks.similarity.benchmark:run", paths=("data",))
register_benchmark("superres", "lossnets.benchmarks.superres.benchmark:run", paths=("train", "val", "test"))
register_benchmark("segmentation", "lossnets.benchmarks.segmentation.benchmark:run", paths=("data",))
register_benchmark("autoencoder", "lossnets.benchmarks.autoencoder.benchmark:run", paths=("data",))


def load_function(target: str):
    """Import ``"module:function"``."""
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load benchmark function {target!r}: {e}") from e


# ----------------------------------------------------------------------------------------- config




def _synthetic_path(value) -> bool:
    """Whether a data path is a set that lossnets made (a SYNTHETIC.json marker in it or up to two
    folders above, or a README.txt there that says it was made by lossnets)."""
    if isinstance(value, dict):
        return any(_synthetic_path(v) for v in value.values())
    if isinstance(value, list):
        return any(_synthetic_path(v) for v in value)
    if not isinstance(value, str) or _is_url(value):
        return False
    p = Path(value)
    for folder in [p, *list(p.parents)[:2]]:
        if (folder / SYNTHETIC_MARKER).is_file():
            return True
        readme = folder / "README.txt"
        try:
            if readme.is_file() and "made by lossnets" in readme.read_text(errors="ignore")[:500]:
                return True
        except OSError:
            pass
    return False


def _is_url(s: str) -> bool:
    return "://" in s


def _resolve_path(value, base: Path):
    if isinstance(value, dict):
        return {k: _resolve_path(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_path(v, base) for v in value]
    if isinstance(value, str) and value and not _is_url(value):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())
    return value


@dataclass
class SweepConfig:
    """The grid and each benchmark's settings. ``benchmarks`` maps a name to
    ``{"function": "module:function", "settings": {...}}`` with data paths already absolute."""
    archs: list[str]
    layers: list[str] = field(default_factory=lambda: ["E", "S", "M", "L"])
    weights: str = "imagenet"
    seed: int = 0
    device: str | None = None
    amp: str | None = None
    compile: bool = False
    cache: str | None = None
    cache_dtype: str | None = None  # the cache's storage dtype (None: its default, fp16)
    isolate_failures: bool = True
    benchmarks: dict[str, dict] = field(default_factory=dict)
    executors: dict[str, dict] = field(default_factory=dict)  # [local], [ray], [slurm] sections
    source: str | None = None

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "SweepConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"sweep config {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"sweep config {path} is not valid TOML: {e}") from e
        return cls.from_dict(raw, base=path.resolve().parent, source=str(path.resolve()))

    @classmethod
    def from_dict(cls, raw: dict, base: str | os.PathLike = ".", source: str | None = None) -> "SweepConfig":
        from lossnets.engine import LAYERS, resolve_archs
        base = Path(base)
        s = dict(raw.get("sweep", {}))
        known = {"archs", "layers", "weights", "seed", "device", "amp", "compile", "cache", "cache_dtype",
                 "isolate_failures", "benchmarks"}
        unknown = set(s) - known
        if unknown:
            raise ValueError(f"unknown key(s) in [sweep]: {sorted(unknown)}; known: {sorted(known)}")
        archs = resolve_archs(s.get("archs", "all"))
        layers = s.get("layers", list(LAYERS))
        layers = [layers] if isinstance(layers, str) else list(layers)
        weights = str(s.get("weights", "imagenet"))
        if weights not in ("imagenet", "random"):
            weights = _resolve_path(weights, base)
        cache = s.get("cache")
        if cache is not None:
            cache = _resolve_path(str(cache), base)
        amp = s.get("amp") or None
        if amp not in (None, "bf16", "fp16"):
            raise ValueError(f"[sweep] amp must be 'bf16', 'fp16' or absent, got {amp!r}")
        benchmarks = {}
        wanted = s.get("benchmarks")
        for name, section in raw.items():
            if name in RESERVED_SECTIONS or not isinstance(section, dict):
                continue
            if wanted is not None and name not in wanted:
                continue
            settings = dict(section)
            function = settings.pop("function", None)
            paths = tuple(settings.pop("paths", ()))
            # a benchmark may narrow the grid: its own archs and layers
            b_archs = settings.pop("archs", None)
            b_layers = settings.pop("layers", None)
            if b_archs is not None:
                b_archs = resolve_archs(b_archs)
            if isinstance(b_layers, str):
                b_layers = [b_layers]
            if function is None:
                if name not in BENCHMARKS:
                    raise ValueError(f"[{name}] is not a registered benchmark ({', '.join(BENCHMARKS)}) "
                                     "and names no function = 'module:function'")
                function, paths = BENCHMARKS[name].function, paths or BENCHMARKS[name].paths
            for key in paths:
                if key in settings:
                    settings[key] = _resolve_path(settings[key], base)
            benchmarks[name] = {"function": function, "settings": settings, "archs": b_archs, "layers": b_layers,
                                "synthetic": any(_synthetic_path(settings[k]) for k in paths if k in settings)}
        if not benchmarks:
            raise ValueError("the sweep config names no benchmark section (e.g. [similarity] data = ...)")
        if wanted is not None and set(wanted) - set(benchmarks):
            raise ValueError(f"[sweep] benchmarks lists {sorted(set(wanted) - set(benchmarks))} without a section")
        executors = {k: dict(raw[k]) for k in ("local", "ray", "slurm") if isinstance(raw.get(k), dict)}
        return cls(archs=archs, layers=layers, weights=weights, seed=int(s.get("seed", 0)),
                   device=s.get("device"), amp=amp, compile=bool(s.get("compile", False)), cache=cache,
                   cache_dtype=s.get("cache_dtype"), isolate_failures=bool(s.get("isolate_failures", True)),
                   benchmarks=benchmarks,
                   executors=executors, source=source)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """A hash of what decides the numbers in a cell: weights, seed, amp and each benchmark's
        function and settings. The grid (archs, layers), device, compile, cache and executor are not
        part of it, so a run can grow its grid or move to other hardware and still resume."""
        key = {"weights": self.weights, "seed": self.seed, "amp": self.amp,
               "benchmarks": {k: {"function": b["function"], "settings": b["settings"]} for k, b in self.benchmarks.items()}}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------- run-folder writes


class RunDirWriteError(OSError):
    """A file of the run folder could not be written (full disk, read-only folder): the sweep stops;
    every finished cell stays valid and ``--resume`` completes the rest."""


@contextlib.contextmanager
def _writing(path: Path):
    """Turn a failed write of ``path`` into one RunDirWriteError that names it."""
    try:
        yield
    except RunDirWriteError:
        raise
    except OSError as e:
        raise RunDirWriteError(f"cannot write {path} ({e.strerror or e}); every finished cell is kept: "
                               "free space, then rerun with --resume") from e


# ------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True, order=True)
class Cell:
    benchmark: str
    arch: str
    layer: str

    def path(self, run_dir) -> Path:
        return Path(run_dir) / CELLS / self.benchmark / self.arch / f"{self.layer}.csv"

    def error_path(self, run_dir) -> Path:
        return Path(run_dir) / CELLS / self.benchmark / self.arch / f"{self.layer}.error.json"

    def __str__(self) -> str:
        return f"{self.benchmark}/{self.arch}/{self.layer}"


def plan(config: SweepConfig) -> list[Cell]:
    """Every cell of the grid: benchmarks x architectures x taps (or tap sets), checked against the registry.
    The tap set ``lpips`` has cells for the networks it is defined for only."""
    from lossnets.engine import get_architecture
    from lossnets.engine.lin_weights import LPIPS_TAPS
    from lossnets.engine.tap_sets import LPIPS_PRESET, is_tap_set, tap_set
    cells = []
    for arch in config.archs:
        a = get_architecture(arch)
        for bench, spec in config.benchmarks.items():
            if spec.get("archs") is not None and arch not in spec["archs"]:
                continue
            for layer in spec.get("layers") or config.layers:
                if layer == LPIPS_PRESET and arch not in LPIPS_TAPS:
                    continue
                if is_tap_set(layer):
                    layer = tap_set(arch, layer).name
                else:
                    try:
                        layer = a.tap(layer).layer
                    except ValueError:
                        pass  # a module path: LossNetwork checks it when it builds
                cells.append(Cell(bench, arch, layer))
    return cells


def is_finished(cell: Cell, run_dir) -> bool:
    return cell.path(run_dir).is_file()


def pending(config: SweepConfig, run_dir) -> list[Cell]:
    return [c for c in plan(config) if not is_finished(c, run_dir)]


def groups(config: SweepConfig, cells: list[Cell], run_dir) -> list[dict]:
    """One picklable work unit per architecture: everything a worker needs to run its cells."""
    by_arch: dict[str, list[Cell]] = {}
    for c in cells:
        by_arch.setdefault(c.arch, []).append(c)
    return [{"arch": arch, "cells": [asdict(c) for c in cs], "config": config.to_dict(),
             "run_dir": str(Path(run_dir).resolve())} for arch, cs in by_arch.items()]


# -------------------------------------------------------------------------------------- the worker


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _write_error(cell: Cell, run_dir, exc: BaseException, tb: str) -> None:
    record = {"benchmark": cell.benchmark, "arch": cell.arch, "layer": cell.layer,
              "error": f"{type(exc).__name__}: {exc}", "traceback": tb, "host": socket.gethostname(),
              "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with _writing(cell.error_path(run_dir)):
        atomic_write_text(cell.error_path(run_dir), json.dumps(record, indent=2))


def _cell_rows(df: pd.DataFrame, cell: Cell, meta: dict) -> pd.DataFrame:
    rows = df[df["layer"] == cell.layer]
    if rows.empty:
        raise RuntimeError(f"benchmark {cell.benchmark} returned no rows for layer {cell.layer} "
                           f"(it returned layers {sorted(df['layer'].unique())})")
    rows = rows.copy()
    rows["benchmark"] = rows["benchmark"].fillna(cell.benchmark)
    for k, v in meta.items():
        if k not in rows.columns:
            rows[k] = v
    return rows


_NOT_TAP_ERRORS = (OSError, ImportError, MemoryError)  # incl. WeightsNotFoundError, missing data files


def run_group(group: dict, on_cell=None, device: str | None = None) -> list[dict]:
    """Run one architecture group: build its LossNetwork once, call each benchmark, write each cell.

    Returns one outcome per cell: ``{"cell": {...}, "ok": bool, "error": str|None, "seconds": float}``.
    ``on_cell(outcome)`` is called as each cell finishes. Errors are recorded, never raised.
    """
    from lossnets.engine import LossNetwork
    from lossnets.engine.tap_sets import tap_sets, union_layers
    config = SweepConfig(**group["config"])
    run_dir = Path(group["run_dir"])
    cells = [Cell(**c) for c in group["cells"]]
    cells = [c for c in cells if not is_finished(c, run_dir)]  # another worker may have done them
    device = device or config.device
    arch = group["arch"]
    outcomes: list[dict] = []
    meta = run_metadata(seed=config.seed, amp=config.amp or "", compiled=config.compile, device=str(device or ""),
                        host=socket.gethostname(), sweep=config.fingerprint())

    def finish(cell: Cell, seconds: float, exc: BaseException | None = None, tb: str = "") -> None:
        if exc is not None:
            _write_error(cell, run_dir, exc, tb)
        else:
            cell.error_path(run_dir).unlink(missing_ok=True)
        out = {"cell": asdict(cell), "ok": exc is None, "error": None if exc is None else f"{type(exc).__name__}: {exc}",
               "seconds": seconds}
        outcomes.append(out)
        if on_cell is not None:
            on_cell(out)

    nets: dict[tuple[str, ...], object] = {}
    opened: list = []

    def shared_cache():
        """One FeatureCache on the config's URL for every benchmark of the group (they share its hot tier),
        quiet; the URL itself where lossnets.cache cannot open it (the benchmark then reports why)."""
        if not opened:
            try:
                from lossnets.cache import FeatureCache
                opened.append(FeatureCache(config.cache, dtype=config.cache_dtype, progress=False))
            except Exception:  # noqa: BLE001
                opened.append(config.cache)
        return opened[0]

    def network(layers: tuple[str, ...]):
        if layers not in nets:
            nets.clear()  # keep one network alive at a time
            nets[layers] = LossNetwork(arch, union_layers(tap_sets(arch, layers)), config.weights, seed=config.seed, device=device,
                                       compile=config.compile, amp=config.amp, lazy=True)  # built on first use
        return nets[layers]

    by_bench: dict[str, list[Cell]] = {}
    for c in cells:
        by_bench.setdefault(c.benchmark, []).append(c)
    all_layers = tuple(dict.fromkeys(c.layer for c in cells))

    def attempt(bench: str, todo: list[Cell]) -> tuple[BaseException | None, str]:
        t0 = time.perf_counter()
        spec = config.benchmarks[bench]
        try:
            layers = tuple(c.layer for c in todo)
            # share the group's network when this benchmark wants all of its taps
            net = network(all_layers if set(layers) == set(all_layers) else layers)
            fn = load_function(spec["function"])
            kwargs = dict(spec["settings"])
            if config.cache is not None and _accepts(fn, "cache"):
                kwargs["cache"] = shared_cache()
            if _accepts(fn, "progress"):
                kwargs["progress"] = False
            if _accepts(fn, "layers"):
                kwargs["layers"] = layers
            if _accepts(fn, "out_dir"):
                kwargs["out_dir"] = str(run_dir / "artifacts" / bench)
            df = fn(net, **kwargs)
            if not isinstance(df, pd.DataFrame):
                raise TypeError(f"{spec['function']} returned {type(df).__name__}, expected a DataFrame")
            missing = [c for c in COLUMNS if c not in df.columns]
            if missing:
                raise ValueError(f"{spec['function']} returned rows without columns {missing}")
            if "data" not in df.columns and spec.get("synthetic"):
                df = df.assign(data="synthetic")  # made data, whatever the benchmark says
            rows = {c: _cell_rows(df, c, meta) for c in todo}
        except Exception as e:  # noqa: BLE001 - recorded per cell, the sweep goes on
            return e, traceback.format_exc()
        per = (time.perf_counter() - t0) / len(todo)
        for c in todo:
            with _writing(c.path(run_dir)):
                write_csv_atomic(rows[c], c.path(run_dir))
            finish(c, per)
        return None, ""

    for bench, todo in by_bench.items():
        t0 = time.perf_counter()
        exc, tb = attempt(bench, todo)
        if exc is None:
            continue
        # a failure that no tap causes (weights or data missing, out of memory on the machine) is not retried
        if len(todo) > 1 and config.isolate_failures and not isinstance(exc, _NOT_TAP_ERRORS):
            for c in todo:  # one tap at a time, so that only the bad taps fail
                t1 = time.perf_counter()
                exc1, tb1 = attempt(bench, [c])
                if exc1 is not None:
                    finish(c, time.perf_counter() - t1, exc1, tb1)
        else:
            per = (time.perf_counter() - t0) / len(todo)
            for c in todo:
                finish(c, per, exc, tb)
    for c in opened:
        if hasattr(c, "flush_uses"):
            try:
                c.flush_uses()
            except Exception:  # noqa: BLE001 - usage counts are best effort
                pass
    return outcomes


# ------------------------------------------------------------------------------------ the results


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that identify a row: COLUMNS without value, plus seed/protocol/scale/subset if present."""
    return [c for c in COLUMNS if c != "value"] + [c for c in EXTRA_KEY_COLUMNS if c in df.columns]


def read_cells(run_dir) -> pd.DataFrame:
    """Every finished cell of a run, one table (empty with COLUMNS when there are none)."""
    files = sorted((Path(run_dir) / CELLS).glob("*/*/*.csv"))
    frames = [pd.read_csv(f) for f in files]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    return df.reindex(columns=COLUMNS + [c for c in df.columns if c not in COLUMNS])


def rebuild_results(run_dir) -> pd.DataFrame:
    """Rebuild RUN_DIR/results.csv from the cell files, atomically; exact duplicate rows dropped, and
    rows with the same key (see ``key_columns``) kept once (the last cell file read wins)."""
    df = read_cells(run_dir)
    if len(df):
        dup = df.duplicated(subset=key_columns(df), keep="last")
        if dup.any():
            warnings.warn(f"{run_dir}: {int(dup.sum())} row(s) repeat the key of another cell's rows "
                          f"(e.g. {df[dup].iloc[0][key_columns(df)].to_dict()}); kept once", stacklevel=2)
        df = df[~dup].reset_index(drop=True)
    with _writing(Path(run_dir) / RESULTS):
        write_csv_atomic(df, Path(run_dir) / RESULTS)
    return df


def failures(run_dir) -> list[dict]:
    """The error records of cells that failed and are not finished since."""
    out = []
    for f in sorted((Path(run_dir) / CELLS).glob("*/*/*.error.json")):
        if not f.with_name(f.name.replace(".error.json", ".csv")).is_file():
            out.append(json.loads(f.read_text()))
    return out


# --------------------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    run_dir: Path
    table: pd.DataFrame
    planned: int
    skipped: int  # finished before this call
    finished: int  # finished by this call
    failed: list[dict]  # outcomes of cells that failed in this call
    seconds: float

    def summary(self) -> str:
        s = (f"{self.planned} cells planned, {self.skipped} already done, {self.finished} finished now, "
             f"{len(self.failed)} failed; {self.seconds:.1f} s; results: {self.run_dir / RESULTS} "
             f"({len(self.table)} rows)")
        for f in self.failed:
            c = f["cell"]
            s += f"\n  FAILED {c['benchmark']}/{c['arch']}/{c['layer']}: {f['error']}"
        return s


def _prepare_run_dir(config: SweepConfig, run_dir: Path, force: bool = False) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    state = run_dir / STATE
    if state.is_file() and not force:
        old = json.loads(state.read_text())
        if old.get("fingerprint") != config.fingerprint():
            raise ValueError(
                f"{run_dir} holds a sweep with other settings (weights, seed, amp or benchmark settings differ; "
                f"its config: {old.get('config', {}).get('source')}). Use another --out, or --resume to "
                "continue it with its own config.")
    record = {"fingerprint": config.fingerprint(), "config": config.to_dict(),
              "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with _writing(state):
        atomic_write_text(state, json.dumps(record, indent=2, default=str))


def load_run_config(run_dir) -> SweepConfig:
    """The config a run was started with (for ``--resume`` without ``--config``)."""
    state = Path(run_dir) / STATE
    if not state.is_file():
        raise FileNotFoundError(f"{run_dir} holds no sweep to resume ({STATE} is missing); start it with --config")
    return SweepConfig(**json.loads(state.read_text())["config"])


def sweep(config: SweepConfig | str | os.PathLike | None, run_dir, *, executor="local", resume: bool = False,
          progress: bool = True, executor_options: dict | None = None) -> SweepResult:
    """Run every unfinished cell of the grid and rebuild RUN_DIR/results.csv.

    ``config``: a SweepConfig or a TOML path; None with ``resume=True`` reuses RUN_DIR's own config.
    A RUN_DIR that holds a sweep with another fingerprint is refused unless ``resume`` (which then
    continues with the new config). ``executor``: "local", "ray", "slurm" or an Executor object.
    """
    from .executors import make_executor
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if config is None:
        if not resume:
            raise ValueError("a sweep needs a config (or resume=True to reuse the run's own)")
        config = load_run_config(run_dir)
    elif not isinstance(config, SweepConfig):
        config = SweepConfig.from_toml(config)
    _prepare_run_dir(config, run_dir, force=resume)
    cells = plan(config)
    todo = [c for c in cells if not is_finished(c, run_dir)]
    work = groups(config, todo, run_dir)
    failed: list[dict] = []
    finished = 0
    if work:
        opts = {**config.executors.get(executor if isinstance(executor, str) else "", {}), **(executor_options or {})}
        ex = make_executor(executor, config=config, run_dir=run_dir, **opts) if isinstance(executor, str) else executor
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo), unit="cell", desc="sweep", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)

        def on_cell(outcome: dict) -> None:
            nonlocal finished
            if outcome["ok"]:
                finished += 1
            else:
                failed.append(outcome)
                c = outcome["cell"]
                bar.write(f"FAILED {c['benchmark']}/{c['arch']}/{c['layer']}: {outcome['error']}")
            bar.update(1)

        def on_group(group: dict, outcomes: list[dict] | None, error: BaseException | None) -> None:
            if isinstance(error, RunDirWriteError):  # nothing more can be recorded: stop the sweep
                raise error
            if error is not None:  # the whole task died (worker lost, job failed): record every cell
                tb = "".join(traceback.format_exception(error))
                outcomes = []
                for c in map(lambda d: Cell(**d), group["cells"]):
                    if not is_finished(c, run_dir):
                        _write_error(c, run_dir, error, tb)
                        outcomes.append({"cell": asdict(c), "ok": False, "seconds": 0.0,
                                         "error": f"{type(error).__name__}: {error}"})
                    else:
                        outcomes.append({"cell": asdict(c), "ok": True, "seconds": 0.0, "error": None})
            if not getattr(ex, "reports_cells", False) or error is not None:
                for o in outcomes:
                    on_cell(o)
            rebuild_results(run_dir)

        try:
            ex.run(run_group, work, on_group=on_group, on_cell=on_cell)
        finally:
            bar.close()
    table = rebuild_results(run_dir)
    return SweepResult(run_dir, table, len(cells), len(cells) - len(todo), finished, failed,
                       time.perf_counter() - t0)


# --------------------------------------------------------------------------------------- the merge


def _cells_of(run_dir: Path) -> list[tuple[Cell, pd.DataFrame, float]]:
    """(cell, rows, finished time) of a run: its cell files, or its results.csv when it has none."""
    out = []
    files = sorted((run_dir / CELLS).glob("*/*/*.csv"))
    if files:
        for f in files:
            df = pd.read_csv(f)
            if len(df):
                out.append((Cell(f.parent.parent.name, f.parent.name, f.stem), df, _created(df, f)))
    elif (run_dir / RESULTS).is_file():
        df = pd.read_csv(run_dir / RESULTS)
        for (b, a, layer), rows in df.groupby(["benchmark", "arch", "layer"], sort=True):
            out.append((Cell(b, a, layer), rows.reset_index(drop=True), _created(rows, run_dir / RESULTS)))
    else:
        raise FileNotFoundError(f"{run_dir} holds neither {CELLS}/ nor {RESULTS}")
    return out


def _created(df: pd.DataFrame, f: Path) -> float:
    if "created" in df.columns and df["created"].notna().any():
        try:
            return pd.to_datetime(df["created"], utc=True).max().timestamp()
        except (ValueError, TypeError):
            pass
    return f.stat().st_mtime


def merge(run_dirs, out) -> pd.DataFrame:
    """Merge runs (from several machines) into OUT: OUT/cells and OUT/results.csv.

    Rule: a cell is (benchmark, arch, layer). When several runs hold the same cell, the most recently
    finished one wins whole (its ``created`` stamp, else its file time); on a tie the run listed first
    wins. Cells are never mixed row by row. OUT may be one of the inputs. Then results.csv is rebuilt
    from OUT's cells, so it has no duplicate rows.
    """
    out = Path(out)
    prints = {}
    for rd in map(Path, run_dirs):
        if (rd / STATE).is_file():
            prints[str(rd)] = json.loads((rd / STATE).read_text()).get("fingerprint")
    if len(set(prints.values())) > 1:
        warnings.warn(f"merging runs with different settings (weights, seed, amp or benchmark settings): {prints}; "
                      "a cell held by several of them is taken from the latest", stacklevel=2)
    chosen: dict[Cell, tuple[pd.DataFrame, float, int]] = {}
    for i, rd in enumerate(map(Path, run_dirs)):
        for cell, df, t in _cells_of(rd):
            if cell not in chosen or t > chosen[cell][1]:
                chosen[cell] = (df, t, i)
    for cell, (df, _, _) in sorted(chosen.items()):
        write_csv_atomic(df, cell.path(out))
        cell.error_path(out).unlink(missing_ok=True)
    return rebuild_results(out)
