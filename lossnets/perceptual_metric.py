"""PerceptualMetric: a loss network's tap distances for evaluation, per image, per tap, as a spatial map or
an N x M matrix, with running sums that reduce across torch.distributed processes."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from .perceptual import TapDistances

PAIR_BLOCK_ELEMENTS = 1 << 24  # feature elements gathered per side and kernel call in matrix()


@dataclass(frozen=True)
class PerceptualResult:
    """A metric's result: ``value`` (per image, reduced, or N x M), on request ``per_tap`` ``{tap: same shape}``
    and ``per_set`` ``{tap set: same shape}`` (each set of ``layers`` on its own, as the command line's rows;
    tap weights not applied), ``spatial`` (N,1,H,W) on request, ``count`` (images behind a running mean) and
    ``config``, the string that says which distance made these numbers."""
    value: Tensor
    config: str
    per_tap: dict[str, Tensor] | None = None
    spatial: Tensor | None = None
    count: int | None = None
    per_set: dict[str, Tensor] | None = None


class PerceptualMetric(TapDistances):
    """The same distances as :class:`~lossnets.PerceptualLoss`, evaluated under ``torch.inference_mode``.

    ``metric(x0, x1, per_tap=False, spatial=False)``: a :class:`PerceptualResult` of a batch (``reduction``:
    "none" per image, "mean" or "sum"); ``spatial=True`` adds the map at the input's exact size.
    ``metric.matrix(xs, ys)``: N x M distances, every image through the network once.
    ``update(x0, x1)`` / ``compute()`` / ``reset()``: running per-image means kept as sums and counts;
    ``compute()`` all-reduces them across processes when torch.distributed is initialised (every rank calls it).

    Without ``lin`` weights this is the unweighted (baseline) distance at the chosen taps, not LPIPS; LPIPS v0.1
    is ``PerceptualMetric("alexnet", lin="lpips", input_range=(-1, 1))`` or :class:`lossnets.LPIPS`.
    """

    __init__ = TapDistances.init_with(
        "A perceptual metric; by default the LPIPS distance (``distance='lpips'``), one value per image.",
        distance="lpips", reduction="none")

    @torch.inference_mode()
    def forward(self, x0: Tensor, x1: Tensor, per_tap: bool = False, spatial: bool = False) -> PerceptualResult:
        """The distances between ``x0`` and ``x1``, two (N, 3|1, H, W) batches of as many images of one size in
        ``input_range`` (or uint8); ``per_tap``/``spatial``: add the per-tap and per-set values / the (N,1,H,W)
        map at the images' size."""
        f0, f1, taps = self._paired(x0, x1)
        return PerceptualResult(self.reduce(self.total(taps)), self.config,
                                {k: self.reduce(v) for k, v in taps.items()} if per_tap else None,
                                self.spatial_map(f0, f1, x0.shape[2:]) if spatial else None,
                                per_set={k: self.reduce(v) for k, v in self.per_set(taps).items()} if per_tap
                                else None)

    @torch.inference_mode()
    def matrix(self, xs: Tensor, ys: Tensor | None = None, per_tap: bool = False,
               batch_size: int = 64) -> PerceptualResult:
        """N x M distances between every image of ``xs`` and of ``ys`` (default ``xs``), each image through the
        network once (in batches of ``batch_size``); each entry equals the pairwise call's."""
        x, y = self.checked_pair(("xs", "ys"), xs, xs if ys is None else ys, same_count=False)
        fx = self._extract(x, batch_size)
        fy = fx if ys is None else self._extract(y, batch_size)
        n, m = len(xs), len(xs if ys is None else ys)
        i, j = (t.reshape(-1) for t in torch.meshgrid(torch.arange(n), torch.arange(m), indexing="ij"))
        taps = {}
        for k, layer in enumerate(self.layers):
            a, b, lin = fx[layer], fy[layer], self._loaded.lin[k]
            block = max(1, PAIR_BLOCK_ELEMENTS // max(1, a[0].numel()))
            parts = [self._distance(a[i[s:s + block].to(a.device)], b[j[s:s + block].to(b.device)], lin)
                     for s in range(0, n * m, block)]
            taps[layer] = torch.cat(parts).view(n, m)  # never empty: empty batches are refused
        return PerceptualResult(self.total(taps), self.config, taps if per_tap else None,
                                per_set=self.per_set(taps) if per_tap else None)

    def _paired(self, x0: Tensor, x1: Tensor):
        """Both batches' features and their per-tap distances."""
        x, y = self.checked_pair(("x0", "x1"), x0, x1)
        f0, f1 = self.features(x), self.features(y)
        return f0, f1, self.per_tap(f0, f1)

    def _extract(self, images: Tensor, batch_size: int) -> dict[str, Tensor]:
        """Features of many checked images in batches, kept on the network's device."""
        chunks = [self.features(images[s:s + batch_size]) for s in range(0, len(images), batch_size)]
        return {layer: torch.cat([c[layer] for c in chunks]) for layer in self.layers}

    def reset(self) -> None:
        """Forget the running sums: [total, per tap..., count], float64."""
        self._state = torch.zeros(len(self.layers) + 2, dtype=torch.float64)

    @torch.inference_mode()
    def update(self, x0: Tensor, x1: Tensor) -> None:
        """Add a batch's per-image distances to the running sums."""
        _, _, taps = self._paired(x0, x1)
        values = torch.stack([self.total(taps).sum(), *(d.sum() for d in taps.values())]).double()
        self._state = self._state.to(values.device) + torch.cat([values, values.new_tensor([len(x0)])])

    def compute(self) -> PerceptualResult:
        """The mean per image of everything updated, across all processes when torch.distributed is initialised."""
        state = self._state
        if dist.is_available() and dist.is_initialized():
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else state.device
            state = state.to(device, copy=True)
            dist.all_reduce(state)
        count = int(state[-1].item())
        if count == 0:
            raise ValueError("compute() before any update(): no images seen")
        means = (state[:-1] / count).float()
        per_tap = dict(zip(self.layers, means[1:]))
        return PerceptualResult(means[0], self.config, per_tap, count=count, per_set=self.per_set(per_tap))
