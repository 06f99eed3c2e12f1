"""Tap sets: several taps whose distances are summed into one metric, as LPIPS sums its layers.

A spec is a single tap (``E``, ``features.9``), taps joined by ``+`` (``E+S+M+L``), the preset ``lpips``:
the taps the lpips package's networks use (alexnet, vgg16, squeezenet1_1 only), or the preset ``kumar``: Kumar et
al. (2022)'s mean ensemble, the MEAN of the four stage taps' distances (see :func:`kumar_layers`). A set's name is
its taps' layer names joined by ``+`` (registered module paths become their letter), or the preset's name.
"""
from __future__ import annotations

from dataclasses import dataclass

from .catalog import LAYERS, expand_layers
from .lin_weights import LPIPS_TAPS, lpips_layers
from .registry import get_architecture

LPIPS_PRESET = "lpips"
KUMAR_PRESET = "kumar"


@dataclass(frozen=True)
class TapSet:
    """One metric's taps: ``name`` as rows report it, ``layers`` the taps' layer names in order; ``mean``: the
    set's distance is the mean of its taps' (a mean ensemble), not their sum."""
    name: str
    layers: tuple[str, ...]
    mean: bool = False

    def combine(self, per_tap):
        """The set's distance from its taps' distances (in ``layers`` order): their sum, or their mean."""
        total = sum(per_tap)
        return total / len(self.layers) if self.mean else total


def kumar_layers(arch: str) -> tuple[str, ...]:
    """The taps of Kumar et al. (2022)'s mean ensemble: the four stage taps E, S, M, L; for a ViT their class-token
    forms E_cls ... L_cls, since Kumar et al. tapped the ViT's class token (the representation its classifier
    reads), not the patch grid."""
    taps = {t.layer for t in get_architecture(arch).taps}
    cls = tuple(f"{t}_cls" for t in LAYERS)
    return cls if set(cls) <= taps else LAYERS


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
    if spec == KUMAR_PRESET:
        return TapSet(KUMAR_PRESET, kumar_layers(a.name), mean=True)
    parts = spec.split("+")
    if not all(parts):
        raise ValueError(f"tap set {spec!r} has an empty tap: join taps with a single '+', e.g. E+S+M+L")
    layers = tuple(a.resolve(p).layer for p in parts)
    if len(set(layers)) != len(layers):
        raise ValueError(f"tap set {spec!r} of {a.name} names a tap twice ({'+'.join(layers)})")
    return TapSet("+".join(layers), layers)


def tap_sets(arch: str, specs) -> list[TapSet]:
    """The tap sets of ``specs`` (a spec or a sequence; "blocks" and "stages" are a set per tap, see
    catalog.expand_layers) for ``arch``, each once, in order."""
    specs = expand_layers(arch, specs)
    return list(dict.fromkeys(tap_set(arch, s) for s in specs))


def union_layers(sets) -> tuple[str, ...]:
    """Every tap of ``sets`` once, in order of first use: the taps one forward pass must return."""
    return tuple(dict.fromkeys(layer for s in sets for layer in s.layers))


def is_tap_set(spec: str) -> bool:
    """Whether ``spec`` names more than a single tap."""
    return spec in (LPIPS_PRESET, KUMAR_PRESET) or "+" in spec
