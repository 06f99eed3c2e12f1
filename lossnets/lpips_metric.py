"""LPIPS: a one-line drop-in for the lpips package's ``lpips.LPIPS`` (v0.1), on lossnets' engine and kernels."""
from __future__ import annotations

from torch import Tensor

from lossnets.engine.lin_weights import LPIPS_VERSION
from lossnets.engine.tap_sets import LPIPS_PRESET

from .input_contract import InputContract
from .perceptual import TapDistances


class LPIPS(TapDistances):
    """``lossnets.LPIPS(net="alex")`` computes what ``lpips.LPIPS(net="alex")`` computes: LPIPS v0.1 (Zhang et
    al. 2018), the lpips package's taps of alexnet, vgg16 or squeezenet1_1 with the lin weights shipped in that
    package (which must be installed), images in [-1, 1] (or [0, 1] with ``normalize=True``), differentiable
    (usable as a loss). ``model(in0, in1)`` is (N, 1, 1, 1), or (N, 1, H, W) with ``spatial=True``.
    """

    def __init__(self, net: str = "alex", version: str = LPIPS_VERSION, lpips: bool = True, spatial: bool = False,
                 model_path: str | None = None, *, weights: str = "imagenet", seed: int = 0,
                 range_check: str = "error", range_margin: float = 0.25, amp: str | None = None,
                 compile: bool = False):
        """As lpips.LPIPS: ``net`` "alex", "vgg" or "squeeze" (or alexnet, vgg16, squeezenet1_1); ``version``
        "0.1" only; ``lpips=False``: all channel weights 1 (lpips's baseline); ``spatial``: return the map;
        ``model_path``: a lin weights file in lpips's format instead of v0.1's.

        lossnets' own: ``weights`` of the backbone ("imagenet": torchvision's, which lpips also uses;
        "random" seeded by ``seed``; or a state_dict file), the input checks ``range_check`` and
        ``range_margin`` (see lossnets.input_contract), ``amp`` and ``compile`` (see PerceptualMetric).
        """
        if version != LPIPS_VERSION:
            raise ValueError(f"lossnets.LPIPS is LPIPS v{LPIPS_VERSION} only (lpips's default), "
                             f"got version={version!r}")
        super().__init__(net, LPIPS_PRESET, weights, distance="lpips", reduction="none",
                         lin=(model_path or "lpips") if lpips else None, input_range=(-1, 1),
                         range_check=range_check, range_margin=range_margin, amp=amp, compile=compile, seed=seed)
        self.spatial = spatial
        self._unit_contract = InputContract((0, 1), range_check, range_margin)

    def forward(self, in0: Tensor, in1: Tensor, retPerLayer: bool = False, normalize: bool = False):  # noqa: N803
        """LPIPS between ``in0`` and ``in1`` (N, 3, H, W) in [-1, 1], or in [0, 1] with ``normalize=True``:
        (N, 1, 1, 1), or the (N, 1, H, W) map with ``spatial``; ``retPerLayer=True``: (value, [per tap, same
        shape]), as lpips."""
        x, y = self.checked_pair(("in0", "in1"), in0, in1, contract=self._unit_contract if normalize else None)
        f0, f1 = self.features(x), self.features(y)
        if self.spatial:
            layers = list(self.spatial_per_tap(f0, f1, in0.shape[2:]).values())
        else:
            layers = [d.view(-1, 1, 1, 1) for d in self.per_tap(f0, f1).values()]
        value = sum(layers)
        return (value, layers) if retPerLayer else value
