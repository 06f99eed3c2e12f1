"""lossnets.engine: registry of architectures and taps, truncating compiler, runtime, profiler.

The names below are imported on first use (PEP 562), so that the torch-free parts (catalog.py: the registry's
data files) can be imported without torch.
"""
from importlib import import_module

_PUBLIC = {  # name -> module that defines it
    "LossNetwork": "loss_network", "WeightsNotFoundError": "weights", **dict.fromkeys(
        ("LAYERS", "Architecture", "Tap", "all_taps", "architectures", "get_architecture", "resolve_archs"),
        "registry"),
    **dict.fromkeys(("expand_layers", "relative_depth"), "catalog"),
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'lossnets.engine' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
