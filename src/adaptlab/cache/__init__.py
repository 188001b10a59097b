"""Answer caching: exact and semantic caches keyed by everything that changes an answer, invalidated when the
documents an answer was built from change; plus the measurements that say whether a cache pays (sweep, analyze,
provider prompt caching)."""
