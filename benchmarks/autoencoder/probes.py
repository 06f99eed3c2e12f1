"""The downstream MLPs of Benchmark 4: every MLP of a lockstep group trained together as one batched program.

For E embedding sets (one per autoencoder of the group) and the seven hidden-size specs of Pihlgren et al.
(``HIDDEN_SIZES``: LeakyReLU between layers, a linear output of 10) there are E x 7 MLPs. Each trains on its own
autoencoder's embeddings; all see the same batch order. ``paper`` minimises the MSE against one-hot labels (the
published procedure), ``standard`` the cross-entropy. Adam, one step for all MLPs per batch; after every epoch
each MLP keeps its weights if its validation accuracy beat its best so far (the earliest best epoch wins). The
score of an autoencoder is the test accuracy of its MLP with the best validation accuracy (the first in
``HIDDEN_SIZES`` order on a tie).

How they are batched (``MLPStack``): all parameters live in one flat tensor; each forward views it as per-layer
weights stacked over the E sets and multiplies with ``torch.baddbmm``. The first layers of all seven specs read
the same input, so they are one (E, dim, 394) matrix; the deeper layers are one bmm per spec and layer. One flat
tensor makes the optimiser step one fused Adam kernel (Adam is elementwise, so this equals per-MLP Adam) and
keeping each MLP's best weights one ``torch.where``. ``torch.func.stack_module_state`` + ``vmap`` would need the
same grouping by spec (vmap stacks only modules of one shape) and leaves ~30 parameter tensors and more, smaller
ops per step; it was 1.5-2x slower than this on a 2-core CPU (``benchmarks/speed/autoencoder_probes.py``). On a
CPU the batched program is bound by its matrix products (2.5-4x faster than one by one there); on a GPU, where
each MLP's step is a few dozen tiny kernel launches, the fewer launches should matter far more (not measured).

``train_probe_alone`` trains one MLP by itself, the plain way: the reference the batched program must equal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..training import check_protocol

HIDDEN_SIZES: tuple[tuple[int, ...], ...] = ((), (32,), (64,), (32, 32), (64, 32), (64, 64), (128, 128))
CLASSES = 10
EVAL_CHUNK = 8192  # embeddings per forward when measuring accuracy

Split = tuple[torch.Tensor, torch.Tensor]  # (embeddings, int64 labels (N,))


def mlp_name(hidden: Sequence[int]) -> str:
    """``linear`` for no hidden layer, else the hidden sizes joined by dashes (``64-32``)."""
    return "-".join(map(str, hidden)) or "linear"


def build_mlp(dim: int, hidden: Sequence[int], classes: int = CLASSES, seed: int = 0) -> nn.Sequential:
    """Linear layers with LeakyReLU between, initialised from (seed, hidden) without touching the global random
    state: MLPs of one spec start alike whatever autoencoder they probe."""
    sizes = [dim, *hidden, classes]
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence([seed, len(hidden), *hidden]).generate_state(1)[0]))
        for cin, cout in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(cin, cout), nn.LeakyReLU()]
    return nn.Sequential(*layers[:-1])


class MLPStack(nn.Module):
    """``groups`` x len(``hidden``) MLPs in one flat parameter; (E,B,dim) -> logits (K,E,B,classes).

    ``owner[i]`` is the MLP (k * E + e) that element i of ``theta`` belongs to.
    """

    def __init__(self, groups: int, dim: int, hidden: Sequence[Sequence[int]] = HIDDEN_SIZES,
                 classes: int = CLASSES, seed: int = 0):
        super().__init__()
        self.groups, self.hidden, self.classes = groups, [tuple(h) for h in hidden], classes
        mlps = [[m for m in build_mlp(dim, h, classes, seed) if isinstance(m, nn.Linear)] for h in self.hidden]
        self.widths = [layers[0].out_features for layers in mlps]
        first_owner = torch.repeat_interleave(torch.arange(len(mlps)), torch.tensor(self.widths))
        pieces = [(torch.cat([layers[0].weight.T for layers in mlps], 1), first_owner),
                  (torch.cat([layers[0].bias for layers in mlps]).unsqueeze(0), first_owner)]
        for k, layers in enumerate(mlps):
            for lin in layers[1:]:
                pieces += [(lin.weight.T, torch.tensor(k)), (lin.bias.unsqueeze(0), torch.tensor(k))]
        e = torch.arange(groups).view(-1, 1, 1)
        self.shapes = [(groups, *w.shape) for w, _ in pieces]
        self.theta = nn.Parameter(torch.cat([w.detach().expand(groups, *w.shape).reshape(-1) for w, _ in pieces]))
        self.register_buffer("owner", torch.cat([(k * groups + e).expand(s).reshape(-1)
                                                 for (_, k), s in zip(pieces, self.shapes)]), persistent=False)

    def _weights(self) -> list[torch.Tensor]:
        return [p.view(s) for p, s in zip(self.theta.split([int(np.prod(s)) for s in self.shapes]), self.shapes)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = iter(self._weights())
        weight, bias = next(w), next(w)
        firsts = torch.baddbmm(bias, x, weight).split(self.widths, -1)
        out = []
        for h, hidden in zip(firsts, self.hidden):
            for _ in hidden:
                weight, bias = next(w), next(w)
                h = torch.baddbmm(bias, F.leaky_relu(h), weight)
            out.append(h)
        return torch.stack(out)

    def mlp(self, k: int, e: int) -> nn.Sequential:
        """A copy of MLP k (spec ``hidden[k]``) of embedding set e as a plain ``build_mlp`` module."""
        model = build_mlp(self.shapes[0][1], self.hidden[k], self.classes)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        w = self._weights()
        cols = slice(sum(self.widths[:k]), sum(self.widths[:k + 1]))
        pairs = [(w[0][e, :, cols], w[1][e, 0, cols])]
        at = 2 + 2 * sum(len(h) for h in self.hidden[:k])
        pairs += [(w[at + 2 * j][e], w[at + 2 * j + 1][e, 0]) for j in range(len(self.hidden[k]))]
        with torch.no_grad():
            for lin, (weight, bias) in zip(linears, pairs):
                lin.weight.copy_(weight.T)
                lin.bias.copy_(bias)
        return model.to(self.theta.device)


@dataclass
class MLPScore:
    """One MLP: its best validation accuracy, the test accuracy of its weights from that epoch (1-based)."""
    mlp: str
    best_val_accuracy: float
    test_accuracy: float
    best_epoch: int


@dataclass
class ProbeResult:
    """One autoencoder's score: the test accuracy of its MLP with the best validation accuracy."""
    chosen: str
    accuracy: float
    mlps: list[MLPScore] = field(default_factory=list)


def probe_losses(logits: torch.Tensor, labels: torch.Tensor, protocol: str) -> torch.Tensor:
    """Per-MLP mean loss of logits (..., B, C) against labels (B,): MSE to one-hot (``paper``) or cross-entropy."""
    if protocol == "paper":
        return (logits - F.one_hot(labels, logits.shape[-1]).to(logits.dtype)).pow(2).mean((-2, -1))
    flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.expand(*logits.shape[:-1]).reshape(-1),
                           reduction="none")
    return flat.view(logits.shape[:-1]).mean(-1)


@torch.no_grad()
def accuracy(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of correct argmax predictions per model for embeddings (..., N, D), in float64."""
    pred = torch.cat([model(x[..., i:i + EVAL_CHUNK, :]).argmax(-1) for i in range(0, x.shape[-2], EVAL_CHUNK)], -1)
    return (pred == labels).sum(-1, dtype=torch.float64) / len(labels)


def epoch_batches(n: int, batch: int, generator: torch.Generator, device=None) -> tuple[torch.Tensor, ...]:
    """One epoch's shuffled batches of indices on ``device`` (the last one may be short), drawn on the CPU so that
    every device sees the same order."""
    return torch.randperm(n, generator=generator).to(device).split(batch)


def _check_splits(splits: dict[str, Split], dims: int) -> None:
    for name, (x, y) in splits.items():
        if x.dim() != dims or y.dim() != 1 or x.shape[-2] != len(y) or len(y) == 0:
            shape = "(E, N, D)" if dims == 3 else "(N, D)"
            raise ValueError(f"{name}: expected embeddings {shape} and N int64 labels, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")
    if len({x.shape[:-2] + x.shape[-1:] for x, _ in splits.values()}) > 1:
        raise ValueError(f"train, val and test embeddings differ in sets or size: "
                         f"{ {k: tuple(x.shape) for k, (x, _) in splits.items()} }")


def _on(split: Split, device) -> Split:
    return split[0].to(device, torch.float32), split[1].to(device, torch.int64)


@dataclass
class FittedProbes:
    """A trained ``MLPStack`` holding each MLP's weights from its best epoch; (K, E) tensors of its best validation
    accuracy and that epoch (1-based)."""
    stack: MLPStack
    best_val_accuracy: torch.Tensor
    best_epoch: torch.Tensor


def fit_probes(train: Split, val: Split, *, protocol: str = "paper", epochs: int = 100, batch: int = 256,
               lr: float = 1e-3, seed: int = 0, hidden: Sequence[Sequence[int]] = HIDDEN_SIZES,
               device=None) -> FittedProbes:
    """Train every MLP of ``hidden`` on each of E embedding sets at once, keeping each MLP's best epoch.

    ``train``, ``val``: (embeddings (E, N, D), labels (N,)), the same images embedded by each of the E
    autoencoders. ``seed`` sets the MLPs' initial weights and the batch order.
    """
    check_protocol(protocol)
    _check_splits({"train": train, "val": val}, 3)
    device = torch.device(device) if device is not None else train[0].device
    (xt, yt), (xv, yv) = _on(train, device), _on(val, device)
    stack = MLPStack(xt.shape[0], xt.shape[-1], hidden, seed=seed).to(device)
    opt = torch.optim.Adam(stack.parameters(), lr=lr, fused=True)
    best = stack.theta.detach().clone()
    best_val = torch.full((len(stack.hidden), stack.groups), -1.0, dtype=torch.float64, device=device)
    best_epoch = torch.zeros_like(best_val, dtype=torch.int64)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        for idx in epoch_batches(len(yt), batch, generator, device):
            loss = probe_losses(stack(xt[:, idx]), yt[idx], protocol).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        acc = accuracy(stack, xv, yv)
        improved = acc > best_val
        best_val = torch.where(improved, acc, best_val)
        best_epoch = torch.where(improved, epoch, best_epoch)
        with torch.no_grad():
            best = torch.where(improved.flatten()[stack.owner], stack.theta, best)
    with torch.no_grad():
        stack.theta.copy_(best)
    return FittedProbes(stack, best_val, best_epoch)


def train_probes(train: Split, val: Split, test: Split, *, protocol: str = "paper", epochs: int = 100,
                 batch: int = 256, lr: float = 1e-3, seed: int = 0, hidden: Sequence[Sequence[int]] = HIDDEN_SIZES,
                 device=None) -> list[ProbeResult]:
    """``fit_probes`` on train and val, then each MLP's test accuracy; one ``ProbeResult`` per embedding set."""
    _check_splits({"train": train, "test": test}, 3)
    fitted = fit_probes(train, val, protocol=protocol, epochs=epochs, batch=batch, lr=lr, seed=seed, hidden=hidden,
                        device=device)
    stack = fitted.stack
    test_acc = accuracy(stack, *_on(test, stack.theta.device)).cpu()
    best_val, best_epoch = fitted.best_val_accuracy.cpu(), fitted.best_epoch.cpu()
    results = []
    for e in range(stack.groups):
        mlps = [MLPScore(mlp_name(h), best_val[k, e].item(), test_acc[k, e].item(), int(best_epoch[k, e]))
                for k, h in enumerate(stack.hidden)]
        chosen = int(best_val[:, e].argmax())
        results.append(ProbeResult(mlps[chosen].mlp, mlps[chosen].test_accuracy, mlps))
    return results


def train_probe_alone(train: Split, val: Split, test: Split, hidden: Sequence[int], *, protocol: str = "paper",
                      epochs: int = 100, batch: int = 256, lr: float = 1e-3, seed: int = 0,
                      device=None) -> tuple[MLPScore, nn.Sequential]:
    """One MLP on one embedding set (embeddings (N, D)), trained by itself as ``train_probes`` trains each of its
    MLPs; returns its score and its weights from the best validation epoch."""
    check_protocol(protocol)
    _check_splits({"train": train, "val": val, "test": test}, 2)
    device = torch.device(device) if device is not None else train[0].device
    (xt, yt), (xv, yv), (xs, ys) = (_on(s, device) for s in (train, val, test))
    model = build_mlp(xt.shape[-1], hidden, seed=seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    best_val, best_epoch, best_state = -1.0, 0, None
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        for idx in epoch_batches(len(yt), batch, generator, device):
            loss = probe_losses(model(xt[idx]), yt[idx], protocol)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        acc = accuracy(model, xv, yv).item()
        if acc > best_val:
            best_val, best_epoch = acc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return MLPScore(mlp_name(hidden), best_val, accuracy(model, xs, ys).item(), best_epoch), model
