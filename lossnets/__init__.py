"""lossnets: a compute engine for deep perceptual loss research.

The public names are imported on first use (PEP 562), so that ``import lossnets`` (and with it the command
line's start-up: ``lossnets --help``, ``lossnets list``) does not import torch.
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lossnets")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

_PUBLIC = {  # name -> module that defines it
    "LossNetwork": "lossnets.engine", "architectures": "lossnets.engine", "get_architecture": "lossnets.engine",
    "PerceptualLoss": "lossnets.perceptual_loss", "PerceptualMetric": "lossnets.perceptual_metric",
    "PerceptualResult": "lossnets.perceptual_metric", "LPIPS": "lossnets.lpips_metric",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'lossnets' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
