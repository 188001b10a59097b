"""Open the configured answer cache ([cache] in adaptlab.toml)."""

from __future__ import annotations

from pathlib import Path

from adaptlab.cache.answer_cache import AnswerCache
from adaptlab.cache.entry import CacheBackend
from adaptlab.config import AdaptlabConfig
from adaptlab.errors import BackendError
from adaptlab.extras import require
from adaptlab.types import IngestReport


def open_cache(config: AdaptlabConfig, home: Path, *, embedder=None) -> AnswerCache:
    """embedder: an Embedder, or a zero-argument function returning one (loaded at the first semantic lookup)."""
    settings = config.cache
    backend: CacheBackend
    if settings.backend == "redis":
        require("redis", "redis", "cache.backend = 'redis'")
        from adaptlab.cache.redis_backend import RedisCacheBackend

        backend = RedisCacheBackend(settings.redis_url, settings.redis_prefix)
    else:
        from adaptlab.cache.sqlite_backend import SqliteCacheBackend

        backend = SqliteCacheBackend(config.resolve_path(settings.path) if settings.path else home / "cache.db")
    index = None
    if settings.semantic_index == "qdrant" and embedder is not None:
        require("qdrant_client", "qdrant", "cache.semantic_index = 'qdrant'")
        from adaptlab.cache.semantic import QdrantSemanticIndex
        from adaptlab.rag.qdrant_store import connect_qdrant

        if not hasattr(embedder, "embed"):
            embedder = embedder()  # Qdrant needs the dimension to create its collection
        index = QdrantSemanticIndex(connect_qdrant(config.store), settings.qdrant_collection, embedder.dimension)
    return AnswerCache(backend, embedder=embedder, index=index)


def invalidate_after_ingest(project, report: IngestReport) -> str | None:
    """Delete cached answers built from document versions an ingest replaced or deleted.

    Returns a warning when that could not be done (Redis down): those entries would be stale."""
    if not report.retired_doc_hashes:
        return None
    settings = project.config.cache
    if settings.backend == "sqlite":
        path = project.config.resolve_path(settings.path) if settings.path else project.home / "cache.db"
        if not path.exists():
            return None  # no cache has ever been written: nothing can be stale
    try:
        report.cache_entries_invalidated = project.cache.invalidate_sources(report.retired_doc_hashes)
    except BackendError as exc:
        changed = " ".join(report.updated + report.removed)
        return (f"{exc} Cached answers built from the changed documents could not be invalidated; when the cache "
                f"is reachable run: adaptlab cache clear --source <path> for each of: {changed}")
    return None
