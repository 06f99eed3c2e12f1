"""lossnets.engine: registry of architectures and taps, truncating compiler, runtime, profiler."""
from .loss_network import LossNetwork
from .registry import LAYERS, Architecture, Tap, all_taps, architectures, get_architecture, resolve_archs
from .weights import WeightsNotFoundError

__all__ = ["LossNetwork", "LAYERS", "Architecture", "Tap", "all_taps", "architectures", "get_architecture",
           "resolve_archs", "WeightsNotFoundError"]
