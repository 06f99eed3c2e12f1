"""A grid's configuration: which loss networks (architectures x taps, how their weights are built), which
benchmarks with which settings, and where the shared feature cache lives; read from a sweep's TOML file or built
by the command line.

TOML layout: ``[sweep]`` holds the grid and the engine options, each other section one benchmark (its name, or
``benchmark = "module:NAME"``) with its settings and optionally its own ``archs``/``layers``; ``[local]``,
``[ray]``, ``[slurm]`` hold executor options. Data paths are resolved against the file's folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lossnets.errors import ConfigError

from ..contract import Settings, is_url, resolve_path
from ..data.photos import SYNTHETIC_MARKER
from ..registry import get_benchmark

EXECUTOR_SECTIONS = ("local", "ray", "slurm")
GRID_KEYS = ("archs", "layers", "isolate_failures", "benchmarks")


def weights_source(weights: str, base: Path) -> str:
    """``imagenet...`` and ``random...`` (torchvision's weights, an init scheme) unchanged; anything else is a
    state_dict file, resolved against ``base``."""
    if weights.startswith(("imagenet", "random")):
        return weights
    return resolve_path(weights, base)


@dataclass(frozen=True)
class EngineOptions:
    """How every loss network of a run is built, and the feature cache they share."""
    weights: str = "imagenet"  # imagenet[:NAME] | random[:SCHEME] | a state_dict file
    seed: int = 0
    device: str | None = None
    amp: str | None = None  # bf16 | fp16 | None
    compile: bool = False
    cache: str | None = None  # feature cache URL
    cache_dtype: str | None = None  # the cache's storage dtype (None: its default, fp16)

    def __post_init__(self):
        if self.amp not in (None, "bf16", "fp16"):
            raise ConfigError(f"amp must be 'bf16', 'fp16' or absent, got {self.amp!r}")


@dataclass(frozen=True)
class Job:
    """One benchmark run of the grid: the benchmark (a registered name or ``"module:NAME"``), its settings, and
    the grid it narrows to (None: the run's). ``synthetic``: its data paths hold sets that lossnets made."""
    benchmark: str
    settings: Settings
    archs: tuple[str, ...] | None = None
    layers: tuple[str, ...] | None = None
    synthetic: bool = False

    @property
    def name(self) -> str:
        """The name its rows and cells carry (e.g. ``superres_x4``)."""
        return get_benchmark(self.benchmark).row_name(self.settings)


@dataclass(frozen=True)
class SweepConfig:
    """The grid (architectures x taps or tap sets), the engine options and the benchmark jobs."""
    archs: tuple[str, ...]
    layers: tuple[str, ...]
    engine: EngineOptions
    jobs: tuple[Job, ...]
    isolate_failures: bool = True  # retry a failed multi-tap call tap by tap, so that only bad taps fail
    executors: dict[str, dict] = field(default_factory=dict)  # [local], [ray], [slurm] options
    source: str | None = None  # the TOML file it was read from

    def __post_init__(self):
        names = [j.name for j in self.jobs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"two benchmark sections write rows named {twice}: give them other settings")

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "SweepConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"sweep config {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"sweep config {path} is not valid TOML: {e}") from e
        return cls.from_dict(raw, base=path.resolve().parent, source=str(path.resolve()))

    @classmethod
    def from_dict(cls, raw: dict, base: str | os.PathLike = ".", source: str | None = None) -> "SweepConfig":
        """A config from TOML's tables (see the module doc); relative paths against ``base``."""
        from lossnets.engine import LAYERS
        base = Path(base)
        s = dict(raw.get("sweep", {}))
        known = set(GRID_KEYS) | {f for f in EngineOptions.__dataclass_fields__}
        if set(s) - known:
            raise ConfigError(f"unknown key(s) in [sweep]: {sorted(set(s) - known)}; known: {sorted(known)}")
        engine = EngineOptions(weights=weights_source(str(s.get("weights", "imagenet")), base),
                               seed=int(s.get("seed", 0)), device=s.get("device"), amp=s.get("amp") or None,
                               compile=bool(s.get("compile", False)),
                               cache=None if s.get("cache") is None else resolve_path(str(s["cache"]), base),
                               cache_dtype=s.get("cache_dtype"))
        wanted = s.get("benchmarks")
        sections = {k: v for k, v in raw.items() if k != "sweep" and k not in EXECUTOR_SECTIONS and isinstance(v, dict)
                    and (wanted is None or k in wanted)}
        if not sections:
            raise ConfigError("the sweep config names no benchmark section (e.g. [similarity] data = ...)")
        if wanted is not None and set(wanted) - set(sections):
            raise ConfigError(f"[sweep] benchmarks lists {sorted(set(wanted) - set(sections))} without a section")
        jobs = [job for name, section in sections.items() for job in jobs_of(name, section, base)]
        return cls(archs=resolve_archs(s.get("archs", "all")), layers=_names(s.get("layers", list(LAYERS))),
                   engine=engine, jobs=tuple(jobs), isolate_failures=bool(s.get("isolate_failures", True)),
                   executors={k: dict(raw[k]) for k in EXECUTOR_SECTIONS if isinstance(raw.get(k), dict)},
                   source=source)

    def to_dict(self) -> dict[str, Any]:
        """The config as TOML's tables (absolute paths; one section per job), which :meth:`from_dict` reads back."""
        raw: dict[str, Any] = {"sweep": {"archs": list(self.archs), "layers": list(self.layers),
                                         "isolate_failures": self.isolate_failures,
                                         **{k: v for k, v in asdict(self.engine).items() if v is not None}}}
        for job in self.jobs:
            section = {"benchmark": job.benchmark, **_plain(job.settings.to_dict())}
            section.update({k: list(v) for k, v in (("archs", job.archs), ("layers", job.layers)) if v is not None})
            raw[job.name] = section
        return {**raw, **self.executors}

    def fingerprint(self) -> str:
        """A hash of what decides the numbers in a cell: weights, seed, amp and each job's benchmark and
        settings. The grid, device, compile, cache and executor are not part of it, so a run can grow its grid
        or move to other hardware and still resume."""
        key = {"weights": self.engine.weights, "seed": self.engine.seed, "amp": self.engine.amp,
               "jobs": {j.name: {"benchmark": j.benchmark, "settings": _plain(j.settings.to_dict())}
                        for j in self.jobs}}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def jobs_of(name: str, section: dict, base: Path) -> list[Job]:
    """The jobs of one benchmark section: one per value of a variant setting given as a list."""
    values = dict(section)
    ref = values.pop("benchmark", name)
    archs, layers = values.pop("archs", None), values.pop("layers", None)
    bench = get_benchmark(ref)
    if bench.columns is not None:
        raise ConfigError(f"[{name}]: {bench.name} writes rows other than results ({', '.join(bench.columns)}); a "
                          "sweep cannot report them (its own command runs it)")
    out = []
    for settings in bench.runs(values, f"[{name}]", base):
        paths = [getattr(settings, k) for k in settings.path_fields()]
        out.append(Job(ref, settings, None if archs is None else resolve_archs(archs),
                       None if layers is None else _names(layers), any(map(is_synthetic, paths))))
    return out


def resolve_archs(spec) -> tuple[str, ...]:
    """The architectures named by ``spec`` ("all", None, a name or a list); a ConfigError names an unknown one."""
    from lossnets.engine import resolve_archs as resolve
    try:
        return tuple(resolve(spec))
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _names(spec) -> tuple[str, ...]:
    return (spec,) if isinstance(spec, str) else tuple(spec)


def _plain(values: dict) -> dict:
    """Settings as TOML/JSON values (a nested settings dataclass as its fields)."""
    return {k: asdict(v) if hasattr(v, "__dataclass_fields__") else list(v) if isinstance(v, tuple) else v
            for k, v in values.items() if v is not None}


def is_synthetic(value) -> bool:
    """Whether a data path is a set that lossnets made (a SYNTHETIC.json marker in it or up to two folders above,
    or a README.txt there that says it was made by lossnets)."""
    if isinstance(value, dict):
        return any(is_synthetic(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_synthetic(v) for v in value)
    if not isinstance(value, str) or is_url(value):
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
