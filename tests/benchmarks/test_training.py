"""The shared training engine: lockstep equals separate training, collapse isolated, best checkpoint by the
score in the task's direction, cached targets equal computed ones."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from lossnets import LossNetwork
from lossnets.benchmarks import training
from lossnets.benchmarks.data.photos import photo_patches

ARCH = "squeezenet1_1"  # the smallest loss network: quick on a CPU
SIZE = 32

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(layers, seed=0):
    return LossNetwork(ARCH, layers=layers, weights="random", seed=seed, device="cpu")


class Denoise(training.Task):
    """A toy task: a 3x3 conv learns to undo additive noise through the loss network's features."""
    name = "denoise"

    def __init__(self, n=8, batch=3, scores=None, higher_is_better=True):
        self.images = torch.from_numpy(np.stack(photo_patches(n, SIZE, seed=0))).permute(0, 3, 1, 2).contiguous()
        self.batch, self.scores, self.higher_is_better = batch, scores, higher_is_better
        self.key = training.CacheKey("toy-denoise", {"size": SIZE})

    def build_model(self, seed, device):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return nn.Conv2d(3, 3, 3, padding=1).to(device)

    def batches(self, seed):
        sampler = training.BatchSampler(len(self.images), self.batch, seed)
        gen = torch.Generator().manual_seed(seed)
        while True:
            idx = sampler.next()
            clean = self.images[idx]
            noisy = clean.float() / 255 + 0.1 * torch.randn(clean.shape, generator=gen)
            yield training.Batch(noisy, clean, [f"im{i}" for i in idx.tolist()], self.key)

    def loss(self, model, noisy, features, target):
        return training.feature_loss(features(model(noisy).float()), target)

    def validate(self, model, trainee):
        if self.scores is not None:  # a scripted score per validation
            return self.scores[len(trainee.history)]
        with torch.no_grad():
            out = model(self.images[:4].float() / 255)
        training.check_output(out)
        return -float((out - self.images[:4].float() / 255).square().mean())


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()])


def test_lockstep_equals_separate_training():
    kw = dict(steps=5, val_every=2, seed=3)
    both = training.train_lockstep(_net(("E", "S")), Denoise(), **kw)
    for t in both:
        (alone,) = training.train_lockstep(_net((t.layer,)), Denoise(), **kw)
        assert alone.layer == t.layer
        torch.testing.assert_close(_params(t.model), _params(alone.model), rtol=1e-5, atol=1e-6)
        assert t.best_step == alone.best_step
        assert [h[0] for h in t.history] == [h[0] for h in alone.history] == [0, 2, 4, 5]
    assert not torch.equal(_params(both[0].model), _params(both[1].model))


def test_several_loss_networks_share_the_batches():
    nets = [_net(("E",)), _net(("E",), seed=1)]
    trainees = training.train_lockstep(nets, Denoise(), steps=2)
    assert [t.net for t in trainees] == nets and all(t.ok for t in trainees)
    with pytest.raises(ValueError, match="no loss networks"):
        training.train_lockstep([], Denoise(), steps=1)


def test_a_nan_loss_collapses_one_model_and_the_others_go_on(monkeypatch):
    real = training.feature_loss

    def loss(f, g):  # the S tap of squeezenet has 128 channels: make its loss NaN
        return real(f, g) * (math.nan if f.shape[1] == 128 else 1.0)

    monkeypatch.setattr(training, "feature_loss", loss)
    e, s = training.train_lockstep(_net(("E", "S")), Denoise(), steps=3, val_every=1)
    assert e.ok and e.best_step > 0 and e.best_state is not None
    assert s.status == "collapsed: NaN loss at step 1" and s.best_state is None
    assert len(s.history) == 1 and len(e.history) == 4


def test_a_constant_output_is_a_collapse():
    class Dead(Denoise):
        def build_model(self, seed, device):
            model = super().build_model(seed, device)
            nn.init.zeros_(model.weight)
            nn.init.zeros_(model.bias)
            return model

    (t,) = training.train_lockstep(_net(("E",)), Dead(), steps=2)
    assert t.status == "collapsed: constant output" and t.history == [(0, t.history[0][1], t.history[0][2])]


@pytest.mark.parametrize("higher, best", [(True, 3), (False, 4)])
def test_best_checkpoint_follows_the_score_direction(higher, best):
    scores = [0.0, 5.0, 3.0, 7.0, 1.0, 4.0]  # step 0 (never kept), then steps 1..5
    (t,) = training.train_lockstep(_net(("E",)), Denoise(scores=scores, higher_is_better=higher), steps=5,
                                   val_every=1)
    assert t.best_step == best and t.best_score == scores[best]
    assert [h[2] for h in t.history] == scores and t.initial_score == 0.0


def test_a_non_finite_score_is_a_collapse():
    (t,) = training.train_lockstep(_net(("E",)), Denoise(scores=[0.0, 1.0, math.inf]), steps=2, val_every=1)
    assert t.status == "collapsed: non-finite validation score" and t.best_state is None


def test_cached_targets_equal_computed_ones(tmp_path):
    from lossnets.cache import FeatureCache
    net = _net(("E", "S"))
    task = Denoise()
    cache = FeatureCache(tmp_path / "cache", cache_policy="always", dtype="fp32", progress=False)
    cached, direct = training.TargetFeatures(net, cache), training.TargetFeatures(net)
    batch = next(task.batches(0))
    ids = batch.ids[:2] + batch.ids[:1]  # a repeated image in one batch
    target = torch.cat([batch.target[:2], batch.target[:1]])
    for _ in range(2):  # computed and stored, then read back
        got = cached(target, ids, batch.key)
        want = direct(target)
        for k in net.layers:
            torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
            assert got[k].dtype == torch.float32
    st = cache.stats()
    assert st["computed"] == 2 and st["hot_hits"] + st["disk_hits"] > 0
    assert not training.TargetFeatures(net, FeatureCache(tmp_path / "c2", cache_policy="never")).cached(SIZE)
    trainees = training.train_lockstep(net, task, steps=4, cache=cache)
    assert all(t.ok for t in trainees)


def test_fp16_autocast_trains_with_a_grad_scaler():
    net = LossNetwork(ARCH, layers=("E",), weights="random", device="cpu", amp="fp16")
    (t,) = training.train_lockstep(net, Denoise(), steps=3)
    assert isinstance(t.scaler, torch.amp.GradScaler) and t.ok and math.isfinite(t.last_loss)
    # the scaler stepped: it skips the steps whose fp16 gradients overflow and lowers its scale
    assert t.scaler.get_scale() < 2.0 ** 16 and t.best_state is not None
