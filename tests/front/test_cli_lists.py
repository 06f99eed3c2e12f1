"""Command-line habits shared by every command: comma- or space-separated lists, a quick `lossnets list`."""
import subprocess
import sys

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


# run in a fresh interpreter: every torch module constructed, FX trace and torch.compile call is recorded
LIST_WATCHED = """
import torch, torch.fx
made = []
init = torch.nn.Module.__init__
def watched(self, *args, **kwargs):
    made.append(type(self).__name__)
    init(self, *args, **kwargs)
torch.nn.Module.__init__ = watched
torch.fx.Tracer.trace = lambda *args, **kwargs: made.append("fx trace")
torch.compile = lambda *args, **kwargs: made.append("torch.compile")
from lossnets.cli import main
main(["list"])
print("MADE", made)
"""


def test_list_builds_no_model():
    """`lossnets list` answers from the registry's tables: no module is built, traced or compiled (what kept it
    as quick as importing torch; a deterministic check instead of a timing on a shared CPU)."""
    out = subprocess.run([sys.executable, "-c", LIST_WATCHED], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 1 + 56 + 1 and "features.29" in out
    assert lines[-1] == "MADE []"
