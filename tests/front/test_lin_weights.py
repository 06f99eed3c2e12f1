"""The strict lin weights loader: lpips's own files load, and every defect is an error naming file and key."""
import hashlib
import sys

import pytest
import torch

from lossnets.engine.lin_weights import LPIPS_TAPS, LinWeightsError, load_lin_weights, lpips_lin_weights

TAPS = ("E", "S")  # alexnet: 64 and 192 channels


def _file(tmp_path, state):
    path = tmp_path / "lin.pth"
    torch.save(state, path)
    return path


def _good():
    return {"lin0.model.1.weight": torch.rand(1, 64, 1, 1), "lin1.model.1.weight": torch.rand(1, 192, 1, 1)}


def test_lpips_packaged_weights_load_for_their_taps():
    pytest.importorskip("lpips")
    for arch, (_, taps) in LPIPS_TAPS.items():
        lin = lpips_lin_weights(arch)
        assert len(lin.weights) == len(taps) and lin.label.startswith("lpips-v0.1@")
        assert all(w.dim() == 1 and (w >= 0).all() for w in lin.weights)


def test_a_good_file_loads_and_its_checksum_is_checked(tmp_path):
    path = _file(tmp_path, _good())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    lin = load_lin_weights(path, "alexnet", TAPS, sha256=sha)
    assert [w.shape for w in lin.weights] == [(64,), (192,)] and lin.label.startswith("lin.pth@")
    with pytest.raises(LinWeightsError, match=f"{path}: sha256 is {sha}, expected 00"):
        load_lin_weights(path, "alexnet", TAPS, sha256="00" * 32)


@pytest.mark.parametrize("defect, message", [
    (lambda s: s.update({"lin2.model.1.weight": torch.rand(1, 8, 1, 1)}), "unknown key 'lin2.model.1.weight'"),
    (lambda s: s.pop("lin1.model.1.weight"), "missing key 'lin1.model.1.weight'"),
    (lambda s: s.update({"lin1.model.1.weight": torch.rand(1, 64, 1, 1)}),
     r"lin1.model.1.weight has shape \(1, 64, 1, 1\), the tap needs \(1, 192, 1, 1\)"),
    (lambda s: s["lin0.model.1.weight"].sub_(0.5), "lin0.model.1.weight holds negative"),
])
def test_defects_are_errors_naming_file_and_key(tmp_path, defect, message):
    state = _good()
    defect(state)
    path = _file(tmp_path, state)
    with pytest.raises(LinWeightsError, match=f"{path}: {message}"):
        load_lin_weights(path, "alexnet", TAPS)


def test_without_lpips_says_how_to_get_the_weights(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)
    with pytest.raises(ImportError, match="pip install lpips"):
        lpips_lin_weights("alexnet")
    with pytest.raises(ValueError, match="alexnet, vgg16, squeezenet1_1 only"):
        lpips_lin_weights("resnet50")


def test_token_taps_take_weights_per_channel(tmp_path):
    # a ViT block's grid and class token share a module; each tap has 768 channels, not 197 tokens
    state = {f"lin{i}.model.1.weight": torch.rand(1, 768, 1, 1) for i in range(2)}
    lin = load_lin_weights(_file(tmp_path, state), "vit_b_16", ("E", "E_cls"))
    assert [w.shape for w in lin.weights] == [(768,), (768,)]
