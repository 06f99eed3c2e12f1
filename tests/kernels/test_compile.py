"""The custom ops trace under torch.compile without graph breaks (CPU) and keep their gradients."""
import torch

from lossnets.kernels import feature_mse, perceptual_distance


def _loss(f0, f1, w, f, g):
    per_channel = perceptual_distance(f0, f1, w, per_channel=True)[:, ::2].sum()  # an (N, C) upstream gradient
    return perceptual_distance(f0, f1, w).sum() + per_channel + feature_mse(f, g) + feature_mse(f, g, "none").sum()


def _inputs():
    gen = torch.Generator().manual_seed(4)
    f0 = torch.randn(2, 7, 5, 3, generator=gen, requires_grad=True)
    f1 = torch.randn(2, 7, 5, 3, generator=gen).to(memory_format=torch.channels_last).requires_grad_()
    w = torch.rand(7, generator=gen, requires_grad=True)
    f, g = (torch.randn(2, 4, 3, 3, generator=gen, requires_grad=True) for _ in range(2))
    return f0, f1, w, f, g


def test_no_graph_break():
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(_loss)(*_inputs())
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_fullgraph_compile_matches_eager():
    torch._dynamo.reset()
    inputs = _inputs()
    eager = _loss(*inputs)
    eager_grads = torch.autograd.grad(eager, inputs)
    # aot_eager traces the fake and autograd registrations like inductor does, without a C++ build
    compiled = torch.compile(_loss, fullgraph=True, backend="aot_eager")(*inputs)
    torch.testing.assert_close(compiled, eager)
    for a, b in zip(torch.autograd.grad(compiled, inputs), eager_grads):
        torch.testing.assert_close(a, b)
