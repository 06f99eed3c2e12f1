"""lossnets.cache: content-addressed feature store (hot tier in memory, zarr on disk or object store) and
the per-pair statistics stored beside it."""
from .entry_tier import CacheWarning
from .feature_cache import FeatureCache, open_cache
from .keys import EntryKey, entry_keys
from .pair_stats import StatisticsStore, pair_id
from .policy import FLOPS_PER_BYTE_THRESHOLD, prefix_flops_per_byte, should_cache

__all__ = ["CacheWarning", "FeatureCache", "open_cache", "EntryKey", "entry_keys", "StatisticsStore", "pair_id",
           "FLOPS_PER_BYTE_THRESHOLD", "prefix_flops_per_byte", "should_cache"]
