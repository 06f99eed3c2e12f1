"""A grid's cells, (benchmark, architecture, tap or tap set), and their groups: one per architecture, the unit of
work that one process runs with one loss network."""
from __future__ import annotations

from dataclasses import dataclass

from lossnets.errors import ConfigError

from .config import SweepConfig


@dataclass(frozen=True, order=True)
class Cell:
    benchmark: str  # the name its rows carry (a job's name)
    arch: str
    layer: str

    def __str__(self) -> str:
        return f"{self.benchmark}/{self.arch}/{self.layer}"


@dataclass(frozen=True)
class Group:
    """Everything a worker needs to run the cells of one architecture (picklable: it travels to Ray and SLURM)."""
    arch: str
    cells: tuple[Cell, ...]
    config: SweepConfig
    run_dir: str
    artifacts: str | None = None  # a folder for every job's artifacts; None: RUN_DIR/artifacts/<job>
    stop_on_input_error: bool = False  # raise a bad-input error (after recording it) instead of going on


def plan(config: SweepConfig) -> list[Cell]:
    """Every cell of the grid: jobs x architectures x taps (or tap sets), each checked (a ConfigError names a bad
    one). The tap set ``lpips`` has cells for the networks it is defined for only (an error if that is none)."""
    from lossnets.engine import get_architecture
    from lossnets.engine.lin_weights import LPIPS_TAPS
    from lossnets.engine.tap_sets import LPIPS_PRESET, is_tap_set, tap_set
    cells, lpips_archs = [], {}  # job -> the architectures it asks the tap set lpips of
    for arch in config.archs:
        a = get_architecture(arch)
        for job in config.jobs:
            if job.archs is not None and arch not in job.archs:
                continue
            for layer in job.layers or config.layers:
                if layer == LPIPS_PRESET:
                    lpips_archs.setdefault(job.name, []).append(arch)
                    if arch not in LPIPS_TAPS:
                        continue
                try:
                    layer = tap_set(arch, layer).name if is_tap_set(layer) else a.resolve(layer).layer
                except ValueError as e:
                    raise ConfigError(str(e)) from e
                cells.append(Cell(job.name, arch, layer))
    for name, archs in lpips_archs.items():
        if not set(archs) & set(LPIPS_TAPS):  # asked of no network it is defined for: say so
            try:
                tap_set(archs[0], LPIPS_PRESET)
            except ValueError as e:
                raise ConfigError(f"{name}: {e}") from e
    return cells


def groups(config: SweepConfig, cells: list[Cell], run_dir, *, artifacts=None,
           stop_on_input_error: bool = False) -> list[Group]:
    """One work unit per architecture, in the order of ``cells``."""
    by_arch: dict[str, list[Cell]] = {}
    for c in cells:
        by_arch.setdefault(c.arch, []).append(c)
    return [Group(arch, tuple(cs), config, str(run_dir), None if artifacts is None else str(artifacts),
                  stop_on_input_error) for arch, cs in by_arch.items()]
