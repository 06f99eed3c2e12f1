"""The hot tier: a bounded in-memory LRU of feature tensors, bounded by bytes."""
from __future__ import annotations

from collections import OrderedDict

import torch


class HotTier:
    """LRU by bytes over ``(entry, item) -> Tensor``, kept on ``device`` (pinned host memory if ``pin``)."""

    def __init__(self, max_bytes: int = 256 << 20, device="cpu", pin: bool = False):
        self.max_bytes, self.device, self.pin = int(max_bytes), torch.device(device), pin
        self.bytes = 0
        self._items: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[str, str]) -> torch.Tensor | None:
        t = self._items.get(key)
        if t is not None:
            self._items.move_to_end(key)
        return t

    def put(self, key: tuple[str, str], t: torch.Tensor) -> None:
        nbytes = t.numel() * t.element_size()
        if nbytes > self.max_bytes:
            return
        t = t.detach().to(self.device).clone(memory_format=torch.contiguous_format)
        if self.pin and t.device.type == "cpu":
            t = t.pin_memory()
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.numel() * old.element_size()
        self._items[key] = t
        self.bytes += nbytes
        while self.bytes > self.max_bytes:
            _, ev = self._items.popitem(last=False)
            self.bytes -= ev.numel() * ev.element_size()

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
