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
import re
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


def variant_name(weights: str, seed: int) -> str:
    """A folder name for one (weights, seed) of a run with several: ``random-liu.seed1``, ``imagenet.seed0``, a
    state_dict file's stem and a hash of its path."""
    if not weights.startswith(("imagenet", "random")):
        weights = f"{Path(weights).stem}-{hashlib.sha256(weights.encode()).hexdigest()[:8]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", weights) + f".seed{seed}"


@dataclass(frozen=True)
class EngineOptions:
    """How every loss network of a run is built, and the feature cache they share. ``weights``: one source or
    several; ``seeds``: random-weight sources run once per seed (None: once, with ``seed``), the others once, with
    the first seed."""
    weights: str | tuple[str, ...] = "imagenet"  # imagenet[:NAME] | random[:SCHEME] | a state_dict file
    seed: int = 0
    seeds: tuple[int, ...] | None = None
    device: str | None = None
    amp: str | None = None  # bf16 | fp16 | None
    compile: bool = False
    cache: str | None = None  # feature cache URL
    cache_dtype: str | None = None  # the cache's storage dtype (None: its default, fp16)

    def __post_init__(self):
        if self.amp not in (None, "bf16", "fp16"):
            raise ConfigError(f"amp must be 'bf16', 'fp16' or absent, got {self.amp!r}")
        if isinstance(self.weights, (list, tuple)):
            object.__setattr__(self, "weights", tuple(self.weights) if len(self.weights) != 1 else self.weights[0])
        if self.seeds is not None:
            object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.weights or (self.seeds is not None and not self.seeds):
            raise ConfigError("weights and seeds, where given, name at least one source and one seed")

    def variants(self, weights=None, seeds=None) -> list[tuple[str, int]]:
        """(weights, seed) of every loss network variant, in order: of the run, or of a job's own ``weights`` and
        ``seeds`` (where not None)."""
        from lossnets.engine.init_schemes import random_scheme
        from lossnets.engine.recipes import expand_every
        weights = self.weights if weights is None else weights
        # imagenet:all: every recipe name of the zoo (plan() keeps each on the architectures that have it)
        sources = [e for w in ((weights,) if isinstance(weights, str) else weights) for e in expand_every(w)]
        seeds = seeds or self.seeds or (self.seed,)
        return [(w, s) for w in sources for s in (seeds if random_scheme(w) else seeds[:1])]


@dataclass(frozen=True)
class Job:
    """One benchmark run of the grid: the benchmark (a registered name or ``"module:NAME"``), its settings, and
    the grid it narrows to (None: the run's): architectures, taps, weights sources and seeds. ``synthetic``: its
    data paths hold sets that lossnets made."""
    benchmark: str
    settings: Settings
    archs: tuple[str, ...] | None = None
    layers: tuple[str, ...] | None = None
    synthetic: bool = False
    weights: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None

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
        seen: dict[str, set] = {}  # two jobs may write rows of one name for other weights variants only
        for j in self.jobs:
            mine = set(self.engine.variants(j.weights, j.seeds))
            if mine & seen.get(j.name, set()):
                raise ConfigError(f"two benchmark sections write rows named {j.name} for the same weights and "
                                  "seed: give them other settings, weights or seeds")
            seen[j.name] = seen.get(j.name, set()) | mine

    def section_names(self) -> list[str]:
        """Each job's section name: its rows' name, numbered from the second job of a name on."""
        names, out = [j.name for j in self.jobs], []
        for i, n in enumerate(names):
            k = names[:i].count(n)
            out.append(f"{n}-{k + 1}" if k else n)
        return out

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
        weights = s.get("weights", "imagenet")
        weights = [weights_source(str(w), base) for w in ([weights] if isinstance(weights, str) else weights)]
        engine = EngineOptions(weights=tuple(weights), seed=int(s.get("seed", 0)), seeds=s.get("seeds"),
                               device=s.get("device"), amp=s.get("amp") or None,
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
        engine = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.engine).items() if v is not None}
        raw: dict[str, Any] = {"sweep": {"archs": list(self.archs), "layers": list(self.layers),
                                         "isolate_failures": self.isolate_failures, **engine}}
        for job, name in zip(self.jobs, self.section_names()):
            section = {"benchmark": job.benchmark, **_plain(job.settings.to_dict())}
            section.update({k: list(v) for k, v in (("archs", job.archs), ("layers", job.layers),
                                                    ("weights", job.weights), ("seeds", job.seeds)) if v is not None})
            raw[name] = section
        return {**raw, **self.executors}

    def fingerprint(self) -> str:
        """A hash of what decides the numbers in a cell: weights, seed, amp and each job's benchmark and
        settings. The grid, device, compile, cache and executor are not part of it, so a run can grow its grid
        or move to other hardware and still resume."""
        key = {"weights": self.engine.weights, "seed": self.engine.seed, "amp": self.engine.amp,
               **({"seeds": self.engine.seeds} if self.engine.seeds is not None else {}),
               "jobs": {name: {"benchmark": j.benchmark, "settings": _plain(j.settings.to_dict()),
                               **({"weights": j.weights} if j.weights is not None else {}),
                               **({"seeds": j.seeds} if j.seeds is not None else {})}
                        for j, name in zip(self.jobs, self.section_names())}}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def jobs_of(name: str, section: dict, base: Path) -> list[Job]:
    """The jobs of one benchmark section: one per value of a variant setting given as a list."""
    values = dict(section)
    ref = values.pop("benchmark", name)
    archs, layers = values.pop("archs", None), values.pop("layers", None)
    weights, seeds = values.pop("weights", None), values.pop("seeds", None)
    if weights is not None:
        weights = tuple(weights_source(str(w), base) for w in ([weights] if isinstance(weights, str) else weights))
    seeds = None if seeds is None else tuple(int(x) for x in ([seeds] if isinstance(seeds, int) else seeds))
    bench = get_benchmark(ref)
    if bench.columns is not None:
        raise ConfigError(f"[{name}]: {bench.name} writes rows other than results ({', '.join(bench.columns)}); a "
                          "sweep cannot report them (its own command runs it)")
    out = []
    for settings in bench.runs(values, f"[{name}]", base):
        paths = [getattr(settings, k) for k in settings.path_fields()]
        out.append(Job(ref, settings, None if archs is None else resolve_archs(archs),
                       None if layers is None else _names(layers), any(map(is_synthetic, paths)), weights, seeds))
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
