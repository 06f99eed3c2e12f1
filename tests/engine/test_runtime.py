"""Runtime options: torch.compile with fixed shapes, AMP, uint8 input, weights digest, no in-place damage."""
import pytest
import torch

from lossnets import LossNetwork


def test_compile_equals_eager_and_never_recompiles():
    import torch._dynamo

    torch._dynamo.reset()
    eager = LossNetwork("alexnet", layers=("E", "S"), weights="random", device="cpu")
    compiled = LossNetwork("alexnet", layers=("E", "S"), weights="random", device="cpu", compile=True)
    images = torch.randint(0, 256, (7, 3, 48, 48), dtype=torch.uint8)
    want = eager.extract(images, batch_size=3)
    torch._dynamo.utils.counters.clear()
    got = compiled.extract(images, batch_size=3)  # 3 + 3 + a short last batch of 1, padded to 3
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    for layer in ("E", "S"):
        assert got[layer].shape[0] == 7
        torch.testing.assert_close(got[layer], want[layer], rtol=1e-4, atol=1e-4)


def test_bf16_autocast_close_to_fp32():
    x = torch.rand(2, 3, 64, 64)
    fp32 = LossNetwork("vgg11", layers=("E", "S"), weights="random", device="cpu")(x)
    bf16 = LossNetwork("vgg11", layers=("E", "S"), weights="random", device="cpu", amp="bf16")(x)
    for layer in ("E", "S"):
        assert bf16[layer].dtype == torch.bfloat16
        rel = (bf16[layer].float() - fp32[layer]).norm() / fp32[layer].norm()
        assert rel < 2e-2


def test_uint8_input_is_scaled():
    net = LossNetwork("squeezenet1_1", layers=("E",), weights="random", device="cpu")
    u8 = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    torch.testing.assert_close(net(u8)["E"], net(u8.float() / 255)["E"])


def test_weights_digest_follows_the_tensors():
    a = LossNetwork("squeezenet1_1", layers=("E",), weights="random", seed=0, device="cpu")
    b = LossNetwork("squeezenet1_1", layers=("E",), weights="random", seed=0, device="cpu")
    c = LossNetwork("squeezenet1_1", layers=("E",), weights="random", seed=1, device="cpu")
    assert a.weights_digest == b.weights_digest != c.weights_digest


def test_gradients_reach_the_input_not_the_weights():
    net = LossNetwork("resnet18", layers=("E", "S"), weights="random", device="cpu")
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    out = net(x)
    (out["E"].sum() + out["S"].sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_no_inplace_op_overwrites_an_earlier_tap():
    """resnet18's bn1 and each block's bn1 are followed by ReLU(inplace=True): as taps, their outputs must
    survive (the full model, hooked and cloned, is the reference)."""
    from test_taps import hooked, reference_model

    x = torch.rand(2, 3, 48, 48)
    modules = ["bn1", "relu", "layer1.0.bn1", "layer1"]
    ref, _ = hooked(reference_model("resnet18"), modules, x)
    got = LossNetwork("resnet18", layers=modules, weights="random", normalize="none", device="cpu",
                      channels_last=False)(x)
    assert (got["bn1"] < 0).any() and (got["layer1.0.bn1"] < 0).any()  # not overwritten by a ReLU
    for m, key in zip(modules, ["bn1", "E", "layer1.0.bn1", "S"]):
        torch.testing.assert_close(got[key], ref[m], rtol=1e-5, atol=1e-5)
    # where no tap is written, in-place ops stay in place
    assert LossNetwork("resnet18", layers=("S",), weights="random", device="cpu").body.relu.inplace


def test_random_weights_are_stored_once_and_equal_a_fresh_init(tmp_path, monkeypatch):
    from lossnets.engine import get_architecture
    from lossnets.engine.weights import random_weights_path

    monkeypatch.setenv("LOSSNETS_HOME", str(tmp_path))
    spec = get_architecture("vgg11")
    path = random_weights_path(spec, seed=3)
    assert not path.exists()
    first = LossNetwork("vgg11", layers=("E",), weights="random", seed=3, device="cpu")
    assert path.is_file()  # the prefix up to the deepest registered tap, not the 120M-parameter classifier
    assert "features.19.weight" not in torch.load(path, weights_only=True)  # features.19 is a ReLU
    assert "classifier.0.weight" not in torch.load(path, weights_only=True)
    again = LossNetwork("vgg11", layers=("E", "L"), weights="random", seed=3, device="cpu")
    torch.manual_seed(3)
    fresh = spec.build().state_dict()
    for k, v in again.body.state_dict().items():
        assert torch.equal(v, fresh[k]), k
    torch.testing.assert_close(first.body.state_dict()["features.0.weight"], fresh["features.0.weight"])


def test_lazy_network_builds_on_first_use_and_memoises_the_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSNETS_HOME", str(tmp_path / "home"))  # no stored random init yet: building stores it
    first = LossNetwork("squeezenet1_1", layers=("E", "M"), weights="random", device="cpu", lazy=True)
    digest = first.weights_digest  # the source's identity: nothing built
    assert not first.built
    digests = first.tap_digests  # builds (and stores the init), then memoises the tensors' digests
    assert first.built
    lazy = LossNetwork("squeezenet1_1", layers=("E", "M"), weights="random", device="cpu", lazy=True)
    assert lazy.tap_digests == digests and not lazy.built and list(lazy.parameters()) == []
    eager = LossNetwork("squeezenet1_1", layers=("E", "M"), weights="random", device="cpu")
    assert eager.weights_digest == digest and eager.tap_digests == digests
    x = torch.rand(2, 3, 40, 40)
    torch.testing.assert_close(lazy(x)["M"], eager(x)["M"])
    assert lazy.built
    assert sum(p.numel() for p in lazy.parameters()) == sum(p.numel() for p in eager.parameters())
    # a weights file with other tensors at the same path is another memo key, so another digest
    path = tmp_path / "w.pt"
    torch.save(eager.body.state_dict(), path)
    first = LossNetwork("squeezenet1_1", layers=("E",), weights=path, device="cpu")
    assert first.tap_digests["E"] == digests["E"]  # the same tensors as the random init
    torch.save({k: v + 1 for k, v in eager.body.state_dict().items()}, path)
    other = LossNetwork("squeezenet1_1", layers=("E",), weights=path, device="cpu", lazy=True)
    assert other.weights_digest != first.weights_digest and other.tap_digests["E"] != digests["E"]


def test_sub_network_is_the_shorter_prefix_of_the_same_weights():
    net = LossNetwork("resnet18", layers=("E", "S", "M"), weights="random", seed=1, device="cpu")
    sub = net.sub(("S", "E"))
    assert net.sub(["M", "S", "E"]) is net and net.sub(("S", "E")) is sub and not sub.built
    x = torch.rand(2, 3, 48, 48)
    full, short = net(x), sub(x)
    assert set(short) == {"E", "S"} and all(torch.equal(short[k], full[k]) for k in short)
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters())
    assert not any(n.startswith("_subs") for n, _ in net.named_modules())
    with pytest.raises(ValueError, match="not taps of this network"):
        net.sub(("L",))


def test_a_lazy_network_first_used_in_inference_mode_still_serves_autograd():
    net = LossNetwork("squeezenet1_1", layers=("E",), weights="random", device="cpu", lazy=True)
    with torch.inference_mode():
        net(torch.rand(1, 3, 32, 32))
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    net(x)["E"].sum().backward()
    assert x.grad is not None and not any(p.is_inference() for p in net.parameters())
