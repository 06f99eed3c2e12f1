"""lossnets.cache: content-addressed feature store."""
