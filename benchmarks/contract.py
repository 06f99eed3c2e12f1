"""The benchmark contract: what every benchmark declares, so that the grid runner, the sweep and the command line
can run it without knowing it.

A benchmark is a :class:`Benchmark` record: its name, a frozen :class:`Settings` dataclass (its options with
their defaults, checked once when built; data-path fields marked with :func:`option`'s ``path=True``), whether
it trains, the name its rows carry, and one entry point ``run(net, settings, ctx) -> DataFrame`` that runs one
group of loss networks (``net``: one network holding every tap of the group) and returns tidy rows for every
layer of ``ctx.layers``. The grid runner gives each call a :class:`Context`; the rows need the results columns
(``lossnets.benchmarks.sweep.results.COLUMNS``). This module imports neither torch nor pandas, so that the command
line builds its parsers from the settings quickly.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lossnets.errors import ConfigError


def option(default: Any = dataclasses.MISSING, *, help: str, path: bool = False, variant: bool = False,
           metavar: str | None = None):
    """A settings field (the command line's ``--field-name``): ``help`` and ``metavar`` for it; ``path``: a data
    path (resolved against a sweep config's folder or the working directory, checked for made data); ``variant``:
    may be given as a list, each value a run of its own (its rows carry their own benchmark name)."""
    meta = {"help": help, "path": path, "variant": variant, "metavar": metavar}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Base of a benchmark's settings. Subclasses are frozen dataclasses of :func:`option` fields and check their
    values in :meth:`check` (called once, on construction; raise :class:`ConfigError` naming the setting)."""

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Normalise and check the values (``object.__setattr__`` to normalise a frozen field)."""

    @classmethod
    def path_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("path"))

    @classmethod
    def variant_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("variant"))

    @classmethod
    def build(cls, values: Mapping[str, Any], where: str) -> "Settings":
        """The settings from ``values`` (a config section, the given options); ``where`` names them in errors."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {known}")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{where}: missing setting(s) {missing}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Context:
    """What the grid runner gives an entry point besides the network and the settings."""
    layers: tuple[str, ...]  # the cells' taps or tap sets (``E``, ``E+S+M+L``, ``lpips``): rows for each
    seed: int = 0  # the run's seed (the networks' weights were drawn with it too)
    cache: Any = None  # an open lossnets.cache.FeatureCache shared by the group, or None
    out_dir: Path | None = None  # a folder for artifacts (learned weights, checkpoints), or None
    progress: bool = True


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark (see the module doc). ``rows``: the ``benchmark`` column of its rows, a format string
    over its settings (``"superres_x{scale}"``); empty: its name. ``entry``: ``"module:function"`` of
    ``run(net, settings, ctx)``, imported when first run. ``columns``: what its rows must hold, when they are not
    results rows (``lin_train``'s training histories)."""
    name: str
    settings: type[Settings]
    entry: str
    trains: bool
    rows: str = ""
    columns: tuple[str, ...] | None = None  # None: the results columns (sweep.results.COLUMNS)

    def row_name(self, settings: Settings) -> str:
        """The name the rows of a run with ``settings`` carry (their ``benchmark`` column)."""
        return self.rows.format(**settings.to_dict()) if self.rows else self.name

    def function(self) -> Callable:
        """The entry point."""
        module, _, attr = self.entry.partition(":")
        return getattr(importlib.import_module(module), attr)

    def runs(self, values: Mapping[str, Any], where: str, base: str | os.PathLike | None = None) -> list[Settings]:
        """The settings of each run that ``values`` asks for: a list given for a variant field makes one run per
        value; data paths resolved against ``base`` (a config file's folder) when given."""
        runs = [dict(values)]
        for key in self.settings.variant_fields():
            if isinstance(values.get(key), (list, tuple)):
                runs = [{**r, key: v} for r in runs for v in values[key]]
        out = [self.settings.build(r, where) for r in runs]
        if base is None:
            return out
        return [dataclasses.replace(s, **{k: resolve_path(getattr(s, k), Path(base)) for k in s.path_fields()})
                for s in out]


def is_url(s: str) -> bool:
    return "://" in s


def resolve_path(value, base: Path):
    """A path (or a dict or list of them) made absolute against ``base``; URLs unchanged."""
    if isinstance(value, dict):
        return {k: resolve_path(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_path(v, base) for v in value]
    if isinstance(value, str) and value and not is_url(value):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())
    return value
