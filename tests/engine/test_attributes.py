"""The zoo's Table III attributes: the file agrees with the study's values for its 14 and with the models.

The models are registry.meta_model's (cached; tests/engine/test_zoo.py builds the same ones), on the meta device.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

from lossnets.engine.attributes import ATTRIBUTES, zoo_attributes
from lossnets.engine.registry import architectures, zoo

GENERATOR = Path(__file__).parents[2] / "engine" / "data" / "make_attributes.py"


def generator():
    spec = importlib.util.spec_from_file_location("make_attributes", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_study_s_values_for_its_14_agree_with_the_file():
    table = zoo_attributes()
    assert list(table) == list(zoo()) and len(table) == 80
    for name, a in architectures().items():
        assert table[name] == {k: getattr(a, k) for k in ATTRIBUTES}, name


def test_the_file_equals_the_attributes_read_from_the_models():
    gen = generator()
    assert set(gen.TOPOLOGY) == {a.family for a in zoo().values()}
    for a in zoo().values():
        want = gen.row(a)
        assert {k: want[k] == "True" for k in ATTRIBUTES} == zoo_attributes()[a.name], a.name


def test_the_reader_needs_no_torch():
    code = ("import sys; from lossnets.engine.attributes import attributes; "
            "assert attributes('vgg16_bn')['batch_norm'] and not attributes('swin_t')['batch_norm']; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
