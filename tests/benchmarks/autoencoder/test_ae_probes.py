"""Benchmark 4 downstream MLPs: the batched program equals MLPs trained one by one, and learns."""
import pytest
import torch

from lossnets.benchmarks.autoencoder.probes import (HIDDEN_SIZES, MLPStack, build_mlp, fit_probes, mlp_name,
                                                     train_probe_alone, train_probes)

pytestmark = pytest.mark.usefixtures("one_thread")


def clusters(sets: int, n: int, dim: int, noise: float, seed: int = 0):
    """(embeddings (sets, n, dim), labels) around 10 fixed centres per set, the same labels for every set."""
    centres = torch.randn(sets, 10, dim, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    return centres[:, labels] + noise * torch.randn(sets, n, dim, generator=g), labels


def test_stack_starts_as_the_seeded_mlps():
    stack = MLPStack(3, 8, seed=5)
    x = torch.randn(3, 4, 8)
    out = stack(x)
    assert out.shape == (len(HIDDEN_SIZES), 3, 4, 10)
    for k, hidden in enumerate(HIDDEN_SIZES):
        for e in range(3):
            torch.testing.assert_close(out[k, e], build_mlp(8, hidden, seed=5)(x[e]))
    assert stack.theta.numel() == 3 * sum(p.numel() for h in HIDDEN_SIZES for p in build_mlp(8, h).parameters())


@pytest.mark.parametrize("protocol", ["paper", "standard"])
def test_batched_equals_one_by_one(protocol):
    # the last epochs of a small noisy problem, where the best epoch differs between MLPs
    splits = [clusters(2, n, 6, 2.0, seed) for n, seed in ((150, 0), (60, 1), (60, 2))]
    opts = dict(protocol=protocol, epochs=4, batch=32, seed=7)
    fitted = fit_probes(*splits[:2], **opts)
    results = train_probes(*splits, **opts)
    for e in range(2):
        alone_split = [(x[e], y) for x, y in splits]
        for k, hidden in enumerate(HIDDEN_SIZES):
            score, model = train_probe_alone(*alone_split, hidden, **opts)
            assert results[e].mlps[k] == score  # best validation accuracy, its epoch and its test accuracy
            for p, q in zip(fitted.stack.mlp(k, e).parameters(), model.parameters()):
                torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5)
        best = max(results[e].mlps, key=lambda s: s.best_val_accuracy)
        assert results[e].chosen == best.mlp and results[e].accuracy == best.test_accuracy
    assert len({s.best_epoch for r in results for s in r.mlps}) > 1


def test_separable_problem_reaches_high_accuracy():
    splits = [clusters(3, n, 16, 0.3, seed) for n, seed in ((600, 0), (150, 1), (150, 2))]
    results = train_probes(*splits, epochs=15, batch=64)
    assert [len(r.mlps) for r in results] == [7, 7, 7]
    assert [s.mlp for s in results[0].mlps] == ["linear", "32", "64", "32-32", "64-32", "64-64", "128-128"]
    assert all(r.accuracy > 0.95 for r in results)
    assert all(1 <= s.best_epoch <= 15 for r in results for s in r.mlps)


def test_bad_input():
    x, y = clusters(2, 20, 4, 1.0)
    with pytest.raises(ValueError, match="protocol"):
        train_probes((x, y), (x, y), (x, y), protocol="hinge")
    with pytest.raises(ValueError, match=r"val: expected embeddings \(E, N, D\)"):
        train_probes((x, y), (x, y[:5]), (x, y))
    with pytest.raises(ValueError, match="differ in sets or size"):
        train_probes((x, y), (x[:1], y), (x, y))
    assert mlp_name(()) == "linear" and mlp_name((64, 32)) == "64-32"
