"""Build the configured vector store: one factory per `store.backend` (not yet opened for an embedder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adaptlab.config import AdaptlabConfig
from adaptlab.extras import require
from adaptlab.rag.store import VectorStore


def _lancedb(config: AdaptlabConfig, home: Path) -> VectorStore:
    from adaptlab.rag.lance_store import LanceStore

    return LanceStore(config.store, home / "lancedb", threads=config.runtime.threads)


def _qdrant(config: AdaptlabConfig, home: Path) -> VectorStore:
    require("qdrant_client", "qdrant", "store.backend = 'qdrant'")
    from adaptlab.rag.qdrant_store import QdrantStore

    return QdrantStore(config.store)


STORES: dict[str, Callable[[AdaptlabConfig, Path], VectorStore]] = {"lancedb": _lancedb, "qdrant": _qdrant}


def create_store(config: AdaptlabConfig, home: Path) -> VectorStore:
    return STORES[config.store.backend](config, home)
