"""Tap sets: '+'-joined taps and the lpips preset, resolved against the registry, with clear errors."""
import pytest

from lossnets.engine.lin_weights import LPIPS_TAPS
from lossnets.engine.tap_sets import TapSet, is_tap_set, tap_set, tap_sets, union_layers


def test_joined_taps_and_module_paths_resolve_to_layer_names():
    assert tap_set("vgg16", "E+S+M+L") == TapSet("E+S+M+L", ("E", "S", "M", "L"))
    assert tap_set("alexnet", "features.1+features.9") == TapSet("E+features.9", ("E", "features.9"))
    assert tap_set("alexnet", "M") == TapSet("M", ("M",)) and not is_tap_set("M") and is_tap_set("E+S")


@pytest.mark.parametrize("arch", list(LPIPS_TAPS))
def test_the_lpips_preset_is_the_lpips_packages_taps(arch):
    from lossnets.engine import get_architecture
    s = tap_set(arch, "lpips")
    assert s.name == "lpips"
    assert [get_architecture(arch).resolve(layer).module for layer in s.layers] == list(LPIPS_TAPS[arch][1])


def test_union_keeps_each_tap_once_in_order():
    sets = tap_sets("alexnet", ["E", "S+L", "lpips", "S+L"])
    assert [s.name for s in sets] == ["E", "S+L", "lpips"]
    assert union_layers(sets) == ("E", "S", "L", "M", "features.9")  # alexnet: M is features.7


@pytest.mark.parametrize("spec, message", [
    ("lpips", "defined for alexnet, vgg16, squeezenet1_1"),
    ("E++S", "empty tap"),
    ("E+E", "names a tap twice"),
    ("E+Q", "unknown tap 'Q' for resnet18"),
])
def test_bad_tap_sets_are_errors_naming_the_choices(spec, message):
    with pytest.raises(ValueError, match=message):
        tap_set("resnet18", spec)


@pytest.mark.parametrize("arch, layers", [("resnet50", ("E", "S", "M", "L")),
                                          ("vit_b_16", ("E_cls", "S_cls", "M_cls", "L_cls"))])
def test_the_kumar_preset_is_the_mean_of_the_stage_taps_class_tokens_for_a_vit(arch, layers):
    s = tap_set(arch, "kumar")
    assert s == TapSet("kumar", layers, mean=True) and is_tap_set("kumar")
    assert s.combine([1.0, 2.0, 3.0, 6.0]) == 3.0 and tap_set(arch, "E+S").combine([1.0, 2.0]) == 3.0
