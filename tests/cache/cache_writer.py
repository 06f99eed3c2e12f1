"""Writer subprocess for the crash and concurrency tests: fill ids [start, stop) of a cache, slowly if asked."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cache_helpers as h  # noqa: E402
import torch  # noqa: E402

from lossnets.cache import FeatureCache  # noqa: E402

if __name__ == "__main__":
    url, start, stop, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

    def slow_load(names):
        time.sleep(delay)
        return h.load_images(names)

    torch.set_num_threads(1)
    net = h.make_net()
    cache = FeatureCache(url, cache_policy="always", chunk_items=4, batch_size=4, progress=False)
    print("ready", flush=True)
    cache.get_or_compute(net, "synthetic", h.ids(start, stop), slow_load, preprocessing=h.PREP)
    print("done", flush=True)
