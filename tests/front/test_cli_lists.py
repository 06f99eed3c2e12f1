"""Command-line habits shared by every command: comma- or space-separated lists, a quick `lossnets list`."""
import subprocess
import sys
import time

from lossnets.cli import build_parser, main


def test_archs_and_layers_take_commas_and_spaces():
    p = build_parser()
    a = p.parse_args(["similarity", "--data", "d", "--archs", "vgg16,alexnet", "resnet18", "--layers", "E,S"])
    assert a.archs == ["vgg16", "alexnet", "resnet18"] and a.layers == ["E", "S"]
    assert p.parse_args(["list", "--archs", "vgg16,", "alexnet"]).archs == ["vgg16", "alexnet"]


def test_an_unknown_name_in_a_list_lists_the_valid_ones(capsys):
    assert main(["list", "--archs", "vgg16,vgg61"]) == 2
    err = capsys.readouterr().err
    assert "unknown architecture 'vgg61'" in err and "squeezenet1_1" in err


def test_list_answers_in_about_the_time_of_importing_torch():
    def seconds(code):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        return time.perf_counter() - t0, out
    torch_s, _ = seconds("import torch, torchvision")
    list_s, out = seconds("from lossnets.cli import main; main(['list'])")
    assert len(out.splitlines()) == 1 + 56 and "features.29" in out
    assert list_s < 2 * torch_s + 2, (list_s, torch_s)  # no model is built or traced
