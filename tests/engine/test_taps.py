"""Every tap of every architecture against a forward hook on the full torchvision model (timm-style sweep)."""
import pytest
import torch
import torchvision

from lossnets import LossNetwork
from lossnets.engine import architectures, get_architecture
from lossnets.engine.registry import NORMALIZATIONS

SIZE = 80  # inception_v3 needs at least 75x75


def reference_model(name: str, seed: int = 0):
    """The full torchvision model, built independently of the registry, with the same seed."""
    kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    torch.manual_seed(seed)
    return torchvision.models.get_model(name, weights=None, **kwargs).eval()


def hooked(model, modules, x):
    """Outputs of ``modules`` (cloned as they appear) and the leaf modules that ran before the last one."""
    outs, ran = {}, []
    named = dict(model.named_modules())
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: None if modules[-1] in outs else ran.append(n))
             for n, m in named.items() if not list(m.children())]

    def keep(m):
        def hook(module, inputs, output):  # returns None: the model's own output is left untouched
            outs.setdefault(m, output.clone())
        return hook
    hooks += [named[m].register_forward_hook(keep(m)) for m in modules]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs, ran


def assert_features_close(got, want, msg):
    """Equal up to float reordering (channels_last convolutions sum in another order)."""
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()) + 1e-6, msg=msg)


@pytest.mark.parametrize("arch", list(architectures()))
def test_loss_network_against_full_model(arch, tmp_path):
    spec = get_architecture(arch)
    modules = [t.module for t in spec.taps]
    torch.manual_seed(123)
    x = torch.rand(2, 3, SIZE, SIZE)
    full = reference_model(arch)
    path = tmp_path / f"{arch}.pt"
    torch.save(full.state_dict(), path)  # the full model: keys after the cut are ignored

    # normalize="none": the raw input goes straight into the network
    ref, ran = hooked(full, modules, x)
    net = LossNetwork(arch, weights=path, normalize="none", device="cpu")
    got = net(x)
    for t in spec.taps:
        assert_features_close(got[t.layer], ref[t.module], f"{arch} {t.layer} normalize=none")

    # the module holds exactly the parameters of the modules that ran up to the deepest tap
    named = dict(full.named_modules())
    prefix = {f"{n}.{p}" for n in ran for p, _ in named[n].named_parameters(recurse=False)}
    assert {n.removeprefix("body.") for n, _ in net.named_parameters()} == prefix
    assert all(not p.requires_grad for p in net.parameters())
    assert not net.training and not net.train().training

    # normalize="imagenet": ImageNet normalisation, then the model as torchvision runs it with
    # ImageNet weights (googlenet/inception_v3 with transform_input=True); seeded random weights
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATIONS["imagenet"])
    if arch in ("googlenet", "inception_v3"):
        full.transform_input = True
    ref, _ = hooked(full, modules, (x - mean) / std)
    multi = LossNetwork(arch, weights="random", seed=0, normalize="imagenet", device="cpu", channels_last=False)(x)
    for t in spec.taps:
        assert_features_close(multi[t.layer], ref[t.module], f"{arch} {t.layer} normalize=imagenet")
        assert multi[t.layer].shape[1] == t.channels, f"{arch} {t.layer}: the registry's channel count is wrong"

    # one tap alone equals the same tap from the multi-tap pass
    for t in spec.taps:
        single = LossNetwork(arch, layers=(t.module,), weights=path, device="cpu", channels_last=False)(x)
        assert list(single) == [t.layer]
        torch.testing.assert_close(single[t.layer], multi[t.layer], rtol=1e-5, atol=1e-6)
