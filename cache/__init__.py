"""lossnets.cache: content-addressed feature store (hot tier in memory, zarr on disk or object store)."""
from .feature_cache import CacheWarning, FeatureCache, open_cache
from .keys import EntryKey, entry_keys
from .policy import FLOPS_PER_BYTE_THRESHOLD, prefix_flops_per_byte, should_cache

__all__ = ["CacheWarning", "FeatureCache", "open_cache", "EntryKey", "entry_keys", "FLOPS_PER_BYTE_THRESHOLD",
           "prefix_flops_per_byte", "should_cache"]
