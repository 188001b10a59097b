"""Nearest cached question, per context: an in-memory matrix by default, a Qdrant collection to share.

A cache holds few entries (thousands, not millions): one matrix product over them costs microseconds, while a
vector database's per-query floor is milliseconds (DESIGN.md). The memory index is loaded from the cache
backend and reloaded when the backend's version counter says another process changed it.
"""

from __future__ import annotations

import threading
import uuid
from typing import Protocol

import numpy as np

from adaptlab.cache.entry import CacheBackend

CANDIDATES = 5  # the guard may reject the nearest; the next ones above the threshold still get a chance


class SemanticIndex(Protocol):
    def nearest(self, context: str, vector: np.ndarray, now: float) -> list[tuple[str, float]]:
        """Up to CANDIDATES (key, cosine) of the context's entries, most similar first."""

    def added(self, context: str, key: str, vector: np.ndarray, expires_at: float | None) -> None: ...

    def removed(self, keys: list[str]) -> None: ...


class MemorySemanticIndex:
    def __init__(self, backend: CacheBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._version: int | None = None
        self._contexts: dict[str, tuple[list[str], np.ndarray]] = {}

    def nearest(self, context: str, vector: np.ndarray, now: float) -> list[tuple[str, float]]:
        keys, matrix = self._load(context, now)
        if not keys:
            return []
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-scores)[:CANDIDATES]
        return [(keys[i], float(scores[i])) for i in top]

    def added(self, context: str, key: str, vector: np.ndarray, expires_at: float | None) -> None:
        # Our own write bumped the version by one: append instead of reloading everything. Anything else
        # (another process wrote too) leaves the index stale and the next lookup reloads it.
        with self._lock:
            version = self._backend.version()
            loaded = self._contexts.get(context)
            if self._version is not None and version == self._version + 1 and loaded is not None:
                keys, matrix = loaded
                row = np.asarray(vector, dtype=np.float32)[None, :]
                if key in keys:
                    matrix = matrix.copy()
                    matrix[keys.index(key)] = row[0]
                else:
                    keys, matrix = keys + [key], (np.vstack([matrix, row]) if len(keys) else row)
                self._contexts[context] = (keys, matrix)
                self._version = version
            else:
                self._version = None

    def removed(self, keys: list[str]) -> None:
        with self._lock:
            self._version = None

    def _load(self, context: str, now: float) -> tuple[list[str], np.ndarray]:
        with self._lock:
            version = self._backend.version()
            if version != self._version:
                self._contexts.clear()
                self._version = version
            if context not in self._contexts:
                self._contexts[context] = self._backend.vectors(context, now)
            return self._contexts[context]


class QdrantSemanticIndex:
    """Cached-question vectors in a Qdrant collection (payload: context, key, expiry), for a cache shared by
    several servers; the entries themselves stay in the SQLite/Redis backend."""

    def __init__(self, client, collection: str, dimension: int) -> None:
        from qdrant_client import models

        self._client, self._collection, self._models = client, collection, models
        if not client.collection_exists(collection):
            client.create_collection(collection, vectors_config=models.VectorParams(
                size=dimension, distance=models.Distance.COSINE))
            client.create_payload_index(collection, "context", models.PayloadSchemaType.KEYWORD)

    def nearest(self, context: str, vector: np.ndarray, now: float) -> list[tuple[str, float]]:
        models = self._models
        alive = models.Filter(must=[models.FieldCondition(key="context", match=models.MatchValue(value=context)),
                                    models.FieldCondition(key="expires_at", range=models.Range(gt=now))])
        points = self._client.query_points(self._collection, query=np.asarray(vector, np.float32).tolist(),
                                           query_filter=alive, limit=CANDIDATES, with_payload=["key"]).points
        return [(p.payload["key"], float(p.score)) for p in points]

    def added(self, context: str, key: str, vector: np.ndarray, expires_at: float | None) -> None:
        payload = {"context": context, "key": key, "expires_at": expires_at if expires_at is not None else 1e18}
        self._client.upsert(self._collection, points=[self._models.PointStruct(
            id=_point_id(key), vector=np.asarray(vector, np.float32).tolist(), payload=payload)])

    def removed(self, keys: list[str]) -> None:
        if keys:
            self._client.delete(self._collection, points_selector=self._models.PointIdsList(
                points=[_point_id(k) for k in keys]))


def _point_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "adaptlab-cache:" + key))
