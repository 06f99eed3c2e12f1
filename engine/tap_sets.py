"""Tap sets: several taps whose distances are summed into one metric, as LPIPS sums its layers.

A spec is a single tap (``E``, ``features.9``), taps joined by ``+`` (``E+S+M+L``) or the preset ``lpips``:
the taps the lpips package's networks use (alexnet, vgg16, squeezenet1_1 only). A set's name is its taps'
layer names joined by ``+`` (registered module paths become their letter), or ``lpips`` for the preset.
"""
from __future__ import annotations

from dataclasses import dataclass

from .lin_weights import LPIPS_TAPS, lpips_layers
from .registry import get_architecture

LPIPS_PRESET = "lpips"


@dataclass(frozen=True)
class TapSet:
    """One metric's taps: ``name`` as rows report it, ``layers`` the taps' layer names in order."""
    name: str
    layers: tuple[str, ...]


def tap_set(arch: str, spec: str) -> TapSet:
    """The tap set of ``spec`` for ``arch``; unknown taps and the ``lpips`` preset of another network are
    errors naming the valid choices."""
    a = get_architecture(arch)
    if spec == LPIPS_PRESET:
        layers = lpips_layers(a.name)
        if layers is None:
            raise ValueError(f"the tap set 'lpips' is defined for {', '.join(LPIPS_TAPS)} (the lpips package's "
                             f"networks), not {a.name}; join taps with '+' instead, e.g. E+S+M+L")
        return TapSet(LPIPS_PRESET, layers)
    parts = spec.split("+")
    if not all(parts):
        raise ValueError(f"tap set {spec!r} has an empty tap: join taps with a single '+', e.g. E+S+M+L")
    layers = tuple(a.resolve(p).layer for p in parts)
    if len(set(layers)) != len(layers):
        raise ValueError(f"tap set {spec!r} of {a.name} names a tap twice ({'+'.join(layers)})")
    return TapSet("+".join(layers), layers)


def tap_sets(arch: str, specs) -> list[TapSet]:
    """The tap sets of ``specs`` (a spec or a sequence) for ``arch``, each once, in order."""
    specs = (specs,) if isinstance(specs, str) else tuple(specs)
    return list(dict.fromkeys(tap_set(arch, s) for s in specs))


def union_layers(sets) -> tuple[str, ...]:
    """Every tap of ``sets`` once, in order of first use: the taps one forward pass must return."""
    return tuple(dict.fromkeys(layer for s in sets for layer in s.layers))


def is_tap_set(spec: str) -> bool:
    """Whether ``spec`` names more than a single tap."""
    return spec == LPIPS_PRESET or "+" in spec
