"""Many taps in lockstep: the memory estimate against a measured run, rounds of taps equal to one run, the generated
sides share the loss network's weights, and a clear error when a single tap does not fit."""
import pytest
import torch

from lossnets import LossNetwork
from lossnets.benchmarks import training, training_memory
from lossnets.benchmarks.superres.benchmark import SuperResolution
from lossnets.benchmarks.superres.data import load_sr_folder
from lossnets.benchmarks.superres.made import make_sr
from lossnets.engine.profiler import PeakTensorMemory

from test_training import Denoise, _params

pytestmark = pytest.mark.usefixtures("one_thread")
BLOCKS = ("layer1.0", "layer1.1", "layer2.0", "layer3.1")  # block module paths as ad-hoc taps


def _net(layers=BLOCKS):
    return LossNetwork("resnet18", layers, weights="random", device="cpu")


def test_the_generated_sides_share_the_loss_network_weights():
    net = _net()
    x = torch.rand(2, 3, 32, 32)
    own = {t.data_ptr() for t in net.body.state_dict().values()}
    for layer in net.layers:
        sub = net.sub((layer,))
        assert {t.data_ptr() for t in sub.body.state_dict().values()} <= own  # no copy of the prefix
        assert torch.equal(sub(x)[layer], net(x)[layer])


def test_the_estimate_matches_the_tensors_a_run_allocates(tmp_path):
    root = make_sr(tmp_path, n_train=4, n_val=1, test_sets={}, size=48)
    train, val = (load_sr_folder(root / s, 48, 4, "paper") for s in ("train", "val"))
    task = SuperResolution(train, val, 4, "paper", batch=2)
    net = _net()
    plan = training_memory.plan([net], task)
    assert plan.rounds == (plan.taps,) and [t.layer for t in plan.taps] == list(BLOCKS)
    with PeakTensorMemory(device="cpu") as measured:
        training.train_lockstep(net, task, steps=2, val_every=2)
    # an upper bound by design (fp32, the step's gradients counted twice): measured 0.82 of it here
    assert 0.7 < measured.peak / plan.need < 1.1, (measured.peak, plan.need)


def test_taps_that_do_not_fit_together_train_in_rounds_as_in_one_run():
    net, task = LossNetwork("squeezenet1_1", ("E", "S", "M"), weights="random", device="cpu"), Denoise()
    plan = training_memory.plan([net], task)
    one_at_a_time = plan.step + max(t.during(net.device) for t in plan.taps) + 2 * plan.taps[0].after(net.device)
    planned = training_memory.plan([net], task, available=one_at_a_time).rounds
    assert len(planned) > 1 and [c.layer for r in planned for c in r] == ["E", "S", "M"]
    kw = dict(steps=4, val_every=2, seed=3)
    together = training.train_lockstep(net, task, **kw)
    rounds = training.train_lockstep(net, task, memory=one_at_a_time, **kw)
    assert [t.layer for t in rounds] == [t.layer for t in together] == ["E", "S", "M"]
    assert [t.net.layers for t in rounds] == [tuple(c.layer for c in r) for r in planned for _ in r]
    for a, b in zip(rounds, together):
        torch.testing.assert_close(_params(a.model), _params(b.model), rtol=1e-5, atol=1e-6)
        assert a.best_step == b.best_step and [h[0] for h in a.history] == [h[0] for h in b.history]
        assert a.opt.state == {} and all(p.grad is None for p in a.model.parameters())  # released after its round


def test_a_tap_that_does_not_fit_alone_is_a_clear_error():
    net = LossNetwork("squeezenet1_1", ("E", "S"), weights="random", device="cpu")
    with pytest.raises(training_memory.DoesNotFit) as e:
        training.train_lockstep(net, Denoise(), steps=1, memory=1000)
    msg = str(e.value)
    for part in ("denoise:", "2 tap(s) of squeezenet1_1", "available", "one tap alone (squeezenet1_1 E)",
                 "--batch", "--layers"):
        assert part in msg, msg


def test_a_loss_that_reads_values_is_estimated_without_its_step():
    class Reads(Denoise):
        def loss(self, model, noisy, features, target):
            loss = super().loss(model, noisy, features, target)
            return loss if loss.item() >= 0 else -loss  # a value: not on the meta device

    net = LossNetwork("squeezenet1_1", ("E",), weights="random", device="cpu")
    with pytest.warns(UserWarning, match="denoise: its loss does not run on the meta device"):
        plan = training_memory.plan([net], Reads())
    assert plan.step == 0 and plan.need == plan.taps[0].during(net.device)
