"""A writer process for the race test: fills ids [0, n) of a cache, computing its first batch while the other
writer computes the same one (a barrier), and saves what it got and its counters."""
from __future__ import annotations

import cache_helpers as h
import torch

from lossnets.cache import FeatureCache

LAYERS = ("L",)


def fill(url: str, n: int, barrier, out_path: str) -> None:
    def load_together(names):  # both processes past their lookups and computing the same items
        if barrier is not None:
            barrier.wait(timeout=120)
        return h.load_images(names)

    torch.set_num_threads(1)
    cache = FeatureCache(url, cache_policy="always", chunk_items=4, batch_size=4, hot_bytes=0, progress=False)
    out = cache.get_or_compute(h.make_net(layers=LAYERS), "synthetic", h.ids(0, n), load_together,
                               preprocessing=h.PREP)
    torch.save({"features": out, "stats": cache.stats()}, out_path)
