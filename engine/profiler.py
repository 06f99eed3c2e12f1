"""Profiler: per loss network the parameters, depth, MACs/FLOPs, tap size, throughput and peak memory."""
from __future__ import annotations

import time
import weakref
from pathlib import Path

import pandas as pd
import torch
from torch import fx, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from .catalog import expand_layers
from .forms import cut
from .loss_network import LossNetwork
from .registry import architectures, get_architecture, meta_model, resolve_archs, zoo
from .truncate import truncate

_MATMUL_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
_MATMUL_FUNCTIONS = (torch.conv2d, torch.nn.functional.conv2d, torch.nn.functional.linear, torch.matmul)


def depth(gm: fx.GraphModule) -> int:
    """Longest chain of convolutions/linear layers from the input to any output of the graph."""
    modules = dict(gm.named_modules())
    longest: dict[fx.Node, int] = {}
    for node in gm.graph.nodes:
        inputs = [longest[a] for a in node.all_input_nodes]
        d = max(inputs, default=0)
        if node.op == "call_module":  # leaf modules (torchvision.ops blocks) are sequential chains
            d += sum(isinstance(m, _MATMUL_MODULES) for m in modules[node.target].modules())
        elif node.op == "call_function" and node.target in _MATMUL_FUNCTIONS:
            d += 1
        longest[node] = d
    return max((longest[n] for n in gm.graph.nodes if n.op == "output"), default=0)


def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (torch.utils.flop_counter; FLOPs = 2 x MACs)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


def net_size(arch, size: int) -> int:
    """The side a loss network runs at for ``size`` x ``size`` images: its model's fixed size where it has one (ViT,
    MaxViT: LossNetwork resizes the images to it, for random weights the builder's 224), else ``size``."""
    return arch.fixed_size or size


def macs_to_taps(arch_name: str, layers, size: int = 224) -> int:
    """MACs for ``size`` x ``size`` images of one pass of the network cut at all of ``layers`` (letters or module
    paths; a tap set's cost), on the meta device (a fixed-size model at its own size, see net_size)."""
    arch = get_architecture(arch_name)
    taps = [arch.resolve(layer) for layer in layers]
    prefix = truncate(meta_model(arch), {t.module: t.layer for t in taps})
    side = net_size(arch, size)
    return count_macs(prefix, torch.empty(1, 3, side, side, device="meta"))


def static_profile(arch_name: str, layer: str, size: int = 224) -> dict:
    """Everything that needs no weights: params to the tap, depth, MACs for ``size`` x ``size`` images (at
    ``net_size``, the side the network runs at), tap shape."""
    arch = get_architecture(arch_name)
    full = meta_model(arch)
    tap = arch.resolve(layer)
    prefix = cut(full, [tap])
    side = net_size(arch, size)
    x = torch.empty(1, 3, side, side, device="meta")
    macs = count_macs(prefix, x)
    out = prefix(x)[tap.layer]
    return {
        "arch": arch.name, "layer": tap.layer, "module": tap.module, "form": tap.form,
        "params": sum(p.numel() for p in prefix.parameters()),
        "params_total": sum(p.numel() for p in full.parameters()),
        "depth": depth(prefix), "macs": macs, "flops": 2 * macs,
        "channels": out.shape[1], "features": out[0].numel(), "net_size": side,
    }


class PeakTensorMemory(TorchDispatchMode):
    """Peak bytes of live tensor storage created inside the mode (for devices without an allocator API, and the
    meta device: a dry run's memory without allocating it)."""

    def __init__(self, baseline: int = 0, device: str | None = None):
        super().__init__()
        self.live = self.peak = baseline
        self.device = device  # count only storages on this device type (None: every device)
        self._seen: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self._seen.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata  # the storage itself (its data pointer is 0 on the meta device)
                if key not in self._seen and self.device in (None, storage.device.type):
                    self._seen.add(key)
                    self.live += storage.nbytes()
                    weakref.finalize(t, self._free, key, storage.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def measure(net: LossNetwork, size: int, batch: int, min_time: float = 0.5, min_iters: int = 3) -> dict:
    """Images per second and peak memory (MiB) of the forward pass on the network's device."""
    x = torch.rand(batch, 3, size, size, device=net.device)
    sync = torch.cuda.synchronize if net.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        net(x)  # warm-up (and compilation)
        if net.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(net.device)
            base = torch.cuda.memory_allocated(net.device)
            net(x)
            sync()
            peak = torch.cuda.max_memory_allocated(net.device) - base
        else:
            with PeakTensorMemory() as mode:
                net(x)
            peak = mode.peak
        n, start = 0, time.perf_counter()
        while n < min_iters or time.perf_counter() - start < min_time:
            net(x)
            n += 1
        sync()
        elapsed = time.perf_counter() - start
    return {"images_per_s": n * batch / elapsed, "peak_memory_mib": peak / 2**20}


def profile(archs=None, layers=("E", "S", "M", "L"), size: int = 224, batch: int = 32, device=None,
            amp=None, compile: bool = False, progress: bool = True) -> pd.DataFrame:
    """One row per loss network: static figures plus measured throughput and peak memory (``layers``: see
    engine.expand_layers, ``blocks`` and ``stages`` expand per architecture)."""
    cells = [(a, layer) for a in resolve_archs(archs) for layer in expand_layers(a, layers)]
    rows = []
    for a, layer in tqdm(cells, desc="profile", disable=not progress):
        row = static_profile(a, layer, size)
        net = LossNetwork(a, layers=(layer,), weights="random", device=device, amp=amp, compile=compile)
        row.update(measure(net, size, batch), size=size, batch=batch, device=str(net.device),
                   amp=amp or "none", compiled=compile)
        rows.append(row)
    return pd.DataFrame(rows)


MANY = 20  # more architectures than this in one plot: coloured and labelled by family


def arch_color(arch: str, by_family: bool = False):
    """One colour per architecture of the study (tab20, the paper's order), the same in every plot; the zoo's others,
    and every architecture where ``by_family``, take their family's colour (tab20b)."""
    import matplotlib

    names = list(architectures())
    if arch in names and not by_family:
        return matplotlib.colormaps["tab20"](names.index(arch) % 20)
    families = sorted({a.family for a in zoo().values()})
    family = zoo()[arch].family if arch in zoo() else ""
    return matplotlib.colormaps["tab20b"]((families.index(family) if family in families else hash(arch)) % 20)


def legend_labels(archs) -> dict[str, str]:
    """Legend entry per architecture: its name where a plot has at most MANY, else its family's name on the first
    of each family (the others unlabelled), to go with arch_color(..., by_family=True)."""
    archs = list(dict.fromkeys(archs))
    if len(archs) <= MANY:
        return {a: a for a in archs}
    out, seen = {}, set()
    for a in archs:
        family = zoo()[a].family if a in zoo() else a
        out[a] = "_nolegend_" if family in seen else family
        seen.add(family)
    return out


def plot_macs(df: pd.DataFrame, path: str | Path) -> Path:
    """PNG of MACs per tap for every architecture, log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    labels = legend_labels(df["arch"])
    for arch, g in df.groupby("arch", sort=False):
        ax.plot(g["layer"], g["macs"], marker="o", label=labels[arch], color=arch_color(arch, len(labels) > MANY))
    ax.set_yscale("log")
    ax.set_xlabel("tap")
    ax.set_ylabel(f"MACs at {int(df['size'].iloc[0])}x{int(df['size'].iloc[0])}" if "size" in df else "MACs")
    ax.set_title("Cost of each loss network up to its tap")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
