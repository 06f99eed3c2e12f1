"""A grid's cells, (benchmark, architecture, tap or tap set, weights variant), and their groups: one per
architecture and variant, the unit of work that one process runs with one loss network. A run with several
(weights, seed) variants (``EngineOptions.variants``) names each cell's; a run with one leaves it empty."""
from __future__ import annotations

from dataclasses import dataclass

from lossnets.errors import ConfigError

from .config import Job, SweepConfig


@dataclass(frozen=True, order=True)
class Cell:
    benchmark: str  # the name its rows carry (a job's name)
    arch: str
    layer: str
    variant: str = ""  # config.variant_name(weights, seed) in a run with several variants

    def __str__(self) -> str:
        return "/".join(p for p in (self.benchmark, self.arch, self.variant, self.layer) if p)


@dataclass(frozen=True)
class Group:
    """Everything a worker needs to run the cells of one architecture and weights variant (picklable: it travels
    to Ray and SLURM)."""
    arch: str
    cells: tuple[Cell, ...]
    config: SweepConfig
    run_dir: str
    artifacts: str | None = None  # a folder for every job's artifacts; None: RUN_DIR/artifacts/<job>
    stop_on_input_error: bool = False  # raise a bad-input error (after recording it) instead of going on
    weights: str = "imagenet"  # the variant's weights source and seed
    seed: int = 0


def variants(config: SweepConfig, job: Job | None = None) -> dict[str, tuple[str, int]]:
    """The weights variants of the run (of every job), or of one job, by cell name: ``{"": (weights, seed)}`` in a
    run with one."""
    from .config import variant_name
    every = list(dict.fromkeys(p for j in config.jobs for p in config.engine.variants(j.weights, j.seeds)))
    if len(every) == 1:
        return {"": every[0]}
    pairs = every if job is None else config.engine.variants(job.weights, job.seeds)
    return {variant_name(w, s): (w, s) for w, s in pairs}


def plan(config: SweepConfig) -> list[Cell]:
    """Every cell of the grid: jobs x architectures x taps (or tap sets) x weights variants, each checked (a
    ConfigError names a bad one). ``blocks`` and ``stages`` expand per architecture (engine.expand_layers: a cell
    per block, named by its module path, or by the letter of the stage tap at its module). The tap set ``lpips``
    has cells for the networks it is defined for only (an error if that is none)."""
    from lossnets.engine import expand_layers, get_architecture
    from lossnets.engine.lin_weights import LPIPS_TAPS
    from lossnets.engine.tap_sets import LPIPS_PRESET, is_tap_set, tap_set
    from lossnets.engine.recipes import EVERY, every_recipe
    cells, lpips_archs = [], {}  # job -> the architectures it asks the tap set lpips of
    for arch in config.archs:
        a = get_architecture(arch)
        for job in config.jobs:
            if job.archs is not None and arch not in job.archs:
                continue
            asks = job.weights or config.engine.weights
            asks_every = EVERY in ((asks,) if isinstance(asks, str) else asks)  # its recipes only, each a variant
            for layer in expand_layers(arch, job.layers or config.layers):
                if layer == LPIPS_PRESET:
                    lpips_archs.setdefault(job.name, []).append(arch)
                    if arch not in LPIPS_TAPS:
                        continue
                try:
                    layer = tap_set(arch, layer).name if is_tap_set(layer) else a.resolve(layer).layer
                except ValueError as e:
                    raise ConfigError(str(e)) from e
                cells.extend(Cell(job.name, arch, layer, v) for v, (w, _) in variants(config, job).items()
                             if not asks_every or w in every_recipe(arch, EVERY))
    for name, archs in lpips_archs.items():
        if not set(archs) & set(LPIPS_TAPS):  # asked of no network it is defined for: say so
            try:
                tap_set(archs[0], LPIPS_PRESET)
            except ValueError as e:
                raise ConfigError(f"{name}: {e}") from e
    return cells


def groups(config: SweepConfig, cells: list[Cell], run_dir, *, artifacts=None,
           stop_on_input_error: bool = False) -> list[Group]:
    """One work unit per architecture and weights variant, in the order of ``cells``."""
    named = variants(config)
    by_arch: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        by_arch.setdefault((c.arch, c.variant), []).append(c)
    return [Group(arch, tuple(cs), config, str(run_dir), None if artifacts is None else str(artifacts),
                  stop_on_input_error, *named[v]) for (arch, v), cs in by_arch.items()]
