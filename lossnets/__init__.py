"""lossnets: a compute engine for deep perceptual loss research."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lossnets")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

from lossnets.engine import LossNetwork, architectures, get_architecture  # noqa: E402
from lossnets.perceptual_loss import PerceptualLoss  # noqa: E402
from lossnets.perceptual_metric import PerceptualMetric, PerceptualResult  # noqa: E402

__all__ = ["LossNetwork", "PerceptualLoss", "PerceptualMetric", "PerceptualResult", "architectures",
           "get_architecture", "__version__"]
