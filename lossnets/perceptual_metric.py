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
    """A metric's result: ``value`` (per image, reduced, or N x M), ``per_tap`` ``{tap: same shape}`` on
    request, ``spatial`` (N,1,H,W) on request, ``count`` (images behind a running mean) and ``config``, the
    string that says which distance made these numbers."""
    value: Tensor
    config: str
    per_tap: dict[str, Tensor] | None = None
    spatial: Tensor | None = None
    count: int | None = None


class PerceptualMetric(TapDistances):
    """The same distances as :class:`~lossnets.PerceptualLoss`, evaluated under ``torch.inference_mode``.

    ``metric(x, y, per_tap=False, spatial=False)``: a :class:`PerceptualResult` of a batch (``reduction``:
    "none" per image, "mean" or "sum"); ``spatial=True`` adds the map at the input's exact size.
    ``metric.matrix(xs, ys)``: N x M distances, every image through the network once.
    ``update(x, y)`` / ``compute()`` / ``reset()``: running per-image means kept as sums and counts;
    ``compute()`` all-reduces them across processes when torch.distributed is initialised (every rank calls it).
    Default ``distance="lpips"``; options as :class:`~lossnets.perceptual.TapDistances`.
    """

    def __init__(self, arch: str, layers=None, weights: str = "imagenet", *, distance: str = "lpips",
                 reduction: str = "none", **options):
        super().__init__(arch, layers, weights, distance=distance, reduction=reduction, **options)
        self.reset()

    @torch.inference_mode()
    def forward(self, x: Tensor, y: Tensor, per_tap: bool = False, spatial: bool = False) -> PerceptualResult:
        fx, fy, taps = self._paired(x, y)
        return PerceptualResult(self.reduce(self.total(taps)), self.config,
                                {k: self.reduce(v) for k, v in taps.items()} if per_tap else None,
                                self.spatial(fx, fy, x.shape[2:]) if spatial else None)

    @torch.inference_mode()
    def matrix(self, xs: Tensor, ys: Tensor | None = None, per_tap: bool = False,
               batch_size: int = 64) -> PerceptualResult:
        """N x M distances between every image of ``xs`` and of ``ys`` (default ``xs``), each image through the
        network once (in batches of ``batch_size``); each entry equals the pairwise call's."""
        fx = self._extract(xs, batch_size)
        fy = fx if ys is None else self._extract(ys, batch_size)
        n, m = len(xs), len(xs if ys is None else ys)
        i, j = (t.reshape(-1) for t in torch.meshgrid(torch.arange(n), torch.arange(m), indexing="ij"))
        taps = {}
        for k, layer in enumerate(self.layers):
            a, b, lin = fx[layer], fy[layer], self._loaded.lin[k]
            block = max(1, PAIR_BLOCK_ELEMENTS // max(1, a[0].numel()))
            parts = [self._distance(a[i[s:s + block].to(a.device)], b[j[s:s + block].to(b.device)], lin)
                     for s in range(0, n * m, block)]
            taps[layer] = torch.cat(parts).view(n, m) if parts else a.new_zeros(n, m)
        return PerceptualResult(self.total(taps), self.config, taps if per_tap else None)

    def _paired(self, x: Tensor, y: Tensor):
        """Both batches' features and their per-tap distances."""
        if x.shape != y.shape:
            raise ValueError(f"the two batches differ in shape: {tuple(x.shape)} and {tuple(y.shape)}")
        fx, fy = self.features(x), self.features(y)
        return fx, fy, self.per_tap(fx, fy)

    def _extract(self, images: Tensor, batch_size: int) -> dict[str, Tensor]:
        """Features of many images in batches, kept on the network's device."""
        if not len(images):
            raise ValueError("matrix() needs at least one image on each side")
        chunks = [self.features(images[s:s + batch_size]) for s in range(0, len(images), batch_size)]
        return {layer: torch.cat([c[layer] for c in chunks]) for layer in self.layers}

    def reset(self) -> None:
        """Forget the running sums: [total, per tap..., count], float64."""
        self._state = torch.zeros(len(self.layers) + 2, dtype=torch.float64)

    @torch.inference_mode()
    def update(self, x: Tensor, y: Tensor) -> None:
        """Add a batch's per-image distances to the running sums."""
        _, _, taps = self._paired(x, y)
        values = torch.stack([self.total(taps).sum(), *(d.sum() for d in taps.values())]).double()
        self._state = self._state.to(values.device) + torch.cat([values, values.new_tensor([len(x)])])

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
        return PerceptualResult(means[0], self.config, dict(zip(self.layers, means[1:])), count=count)
