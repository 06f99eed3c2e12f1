"""The zoo's taps against forward hooks on the full torchvision model: one architecture per family (the smallest),
seeded random weights, small inputs; each hook's output converted by the tap's documented form, written out here
independently of engine/forms.py."""
import pytest
import torch
import torchvision

from lossnets import LossNetwork
from lossnets.engine import get_architecture

# the smallest member of each family (its rule taps where it is not one of the study's 14)
FAMILY_MEMBERS = ["alexnet", "vgg11", "resnet18", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "squeezenet1_0",
                  "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5",
                  "efficientnet_b1", "efficientnet_v2_s", "regnet_x_400mf", "convnext_tiny", "swin_t", "swin_v2_t",
                  "vit_b_32", "maxvit_t"]
SIZE = 80  # inception_v3 needs at least 75x75


def documented(form: str, x: torch.Tensor) -> torch.Tensor:
    """The README's conversion of a module's output to (N, C, H, W)."""
    if form == "nhwc":
        return x.permute(0, 3, 1, 2)
    if form == "tokens":  # (N, 1 + h*w, C): class token first, then the patch grid row by row
        n, t, c = x.shape
        side = int(round((t - 1) ** 0.5))
        return x[:, 1:].transpose(1, 2).reshape(n, c, side, side)
    if form == "class_token":
        return x[:, 0].reshape(x.shape[0], -1, 1, 1)
    assert form == "nchw", form
    return x


def hooked(model, modules, x):
    """Outputs of ``modules``, cloned as they appear (the hooks return None: the model's own outputs stay, so that
    its later in-place ops, DenseNet's ReLU after norm5, do not write into the clones)."""
    named, outs = dict(model.named_modules()), {}
    def keep(m):
        def hook(module, inputs, output):
            outs.setdefault(m, output.clone())
        return hook
    hooks = [named[m].register_forward_hook(keep(m)) for m in modules]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs


@pytest.mark.parametrize("arch", FAMILY_MEMBERS)
def test_every_tap_equals_the_hooked_full_model(arch, one_thread):
    spec = get_architecture(arch)
    assert len({get_architecture(a).family for a in FAMILY_MEMBERS}) == len(FAMILY_MEMBERS)
    torch.manual_seed(1)
    fixed = spec.fixed_size
    x = torch.rand(2, 3, SIZE, SIZE + 16)
    net = LossNetwork(arch, layers=[t.layer for t in spec.taps], weights="random", seed=0, normalize="none",
                      device="cpu", channels_last=False)
    got = net(x)
    if fixed:  # resized to the model's size, antialiased, with the default recipe's interpolation
        x = torch.nn.functional.interpolate(x, size=(fixed, fixed), mode=spec.recipe().interpolation,
                                            antialias=True, align_corners=False)
        assert f"resize={fixed}({spec.recipe().interpolation})" in net.config
    kwargs = {"aux_logits": False, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
    torch.manual_seed(0)
    full = torchvision.models.get_model(arch, weights=None, **kwargs).eval()
    ref = hooked(full, [t.module for t in spec.taps], x)
    for t in spec.taps:
        want = documented(t.form, ref[t.module])
        assert got[t.layer].shape == want.shape and want.shape[1] == t.channels, (arch, t.layer)
        torch.testing.assert_close(got[t.layer], want, rtol=1e-4, atol=1e-5 * float(want.abs().max()) + 1e-6,
                                   msg=f"{arch} {t.layer} ({t.form})")


def test_recipe_preprocessing_and_names(one_thread):
    """imagenet:NAME picks the recipe's normalisation and fixed size, and the config string names it."""
    net = LossNetwork("efficientnet_v2_s", "E", weights="random", device="cpu", lazy=True)
    assert net.norm.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    net = LossNetwork("efficientnet_v2_l", "E", weights="random", device="cpu", lazy=True)
    assert net.norm.mean.flatten().tolist() == [0.5, 0.5, 0.5]  # its DEFAULT recipe's transforms
    vit = LossNetwork("vit_b_16", "E", weights="imagenet:IMAGENET1K_SWAG_E2E_V1", device="cpu", lazy=True)
    assert vit.fixed_size == 384 and vit.recipe.interpolation == "bicubic"
    assert LossNetwork("vit_b_16", "E", weights="random", device="cpu", lazy=True).fixed_size == 224
    with pytest.raises(ValueError, match="imagenet:IMAGENET1K_V1"):
        LossNetwork("vit_b_16", "E", weights="imagenet:V9", device="cpu", lazy=True)


def test_offline_error_names_the_recipe_file_and_url(torch_home, monkeypatch):
    from lossnets.engine import WeightsNotFoundError

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError) as e:
        LossNetwork("resnet50", "E", weights="imagenet:IMAGENET1K_V2", device="cpu")
    recipe = get_architecture("resnet50").recipe("imagenet:IMAGENET1K_V2")
    assert recipe.url in str(e.value) and str(torch_home / "hub" / "checkpoints" / recipe.file) in str(e.value)


def test_an_input_too_small_for_a_tap_names_the_smallest_that_works(one_thread):
    from lossnets.engine.input_size import min_input_size
    need = min_input_size("squeezenet1_0", "L")
    net = LossNetwork("squeezenet1_0", weights="random", device="cpu", channels_last=False)
    assert net(torch.rand(1, 3, need, need))["L"].shape[1] == 512
    with pytest.raises(ValueError, match=f"at least {need}x{need}"):
        net(torch.rand(1, 3, need - 1, need + 20))
