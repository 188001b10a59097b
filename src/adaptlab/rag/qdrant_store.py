"""VectorStore on Qdrant: a server or cluster, or in process with `qdrant_url = ":memory:"`.

One collection holds every chunk as a point (id = chunk_id, payload = the Chunk's fields) with two
named vectors: "dense" (cosine) for embeddings and "bm25" (sparse, server-side IDF) for keywords.
The embedder that built the collection is recorded in the collection's metadata.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from adaptlab.config import StoreConfig
from adaptlab.errors import BackendError, ConfigError, StoreMismatchError
from adaptlab.rag.sparse import bm25_document_vector, bm25_query_vector
from adaptlab.rag.store import CollectionInfo, DocVersion, SearchFilter, StoreHit
from adaptlab.types import Chunk

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "bm25"
_UPSERT_BATCH = 256
_SCROLL_PAGE = 1024
_DELETE_BATCH = 100  # (doc_id, doc_hash) pairs per delete filter; keeps request bodies small
_INDEXED_KEYWORDS = ("doc_id", "doc_hash", "tags")
_VERSION_FIELDS = ["doc_id", "doc_hash", "path", "chunk_count"]
_CHUNK_FIELDS = tuple(f.name for f in fields(Chunk))


class QdrantStore:
    def __init__(self, config: StoreConfig, *, client: QdrantClient | None = None) -> None:
        self._collection = config.collection
        self._location = config.qdrant_url or "a QdrantClient passed in"
        self._api_key_env = config.qdrant_api_key_env
        self._client = client if client is not None else connect_qdrant(config)
        self._embedder: str | None = None
        self._dimension: int | None = None

    # ---- collection lifecycle -------------------------------------------------------------

    def open(self, embedder_name: str, dimension: int) -> None:
        with self._backend_errors("opening the collection"):
            if not self._client.collection_exists(self._collection):
                try:
                    self._create(embedder_name, dimension)
                except UnexpectedResponse:
                    # Another process may have created it between our check and our create
                    # (servers answer 409 or 400 for that): then check theirs.
                    if not self._client.collection_exists(self._collection):
                        raise
            self._check(embedder_name, dimension)
        self._embedder, self._dimension = embedder_name, dimension

    def _create(self, embedder_name: str, dimension: int) -> None:
        self._client.create_collection(
            self._collection,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            # The server applies IDF from its own collection statistics, so documents never need
            # re-encoding when the corpus grows.
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={"embedder": embedder_name, "dimension": dimension, "created_by": "adaptlab"},
        )
        with warnings.catch_warnings():
            # Local (in-process) mode accepts payload indexes but warns that they do nothing there.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
            for field in _INDEXED_KEYWORDS:
                self._client.create_payload_index(
                    self._collection, field, field_schema=models.PayloadSchemaType.KEYWORD, wait=True
                )

    def _check(self, embedder_name: str, dimension: int) -> None:
        config = self._client.get_collection(self._collection).config
        vectors = config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if dense is None or SPARSE not in (config.params.sparse_vectors or {}):
            raise StoreMismatchError(
                f"Collection '{self._collection}' at {self._location} was not created by adaptlab (it lacks the "
                f"named vectors '{DENSE}' and '{SPARSE}') — choose another collection name (store.collection) "
                "or delete that collection."
            )
        metadata = config.metadata or {}
        stored_name = metadata.get("embedder")
        stored_dim = int(metadata.get("dimension", dense.size))
        if stored_name is None:
            # Qdrant servers before 1.16 drop collection metadata: only the dimension can be checked.
            if dense.size != dimension:
                raise StoreMismatchError(
                    f"Collection '{self._collection}' at {self._location} holds {dense.size}-d vectors but the "
                    f"configured embedder '{embedder_name}' makes {dimension}-d ones — re-ingest into a new "
                    "collection (store.collection) or switch back the embedder."
                )
            log.warning(
                "Collection '%s' at %s records no embedder name; assuming '%s' built it.",
                self._collection,
                self._location,
                embedder_name,
            )
            return
        if stored_name != embedder_name or stored_dim != dimension or dense.size != dimension:
            raise StoreMismatchError(
                f"Collection '{self._collection}' at {self._location} was built with embedder '{stored_name}' "
                f"({stored_dim}-d) but the configured embedder is '{embedder_name}' ({dimension}-d) — re-ingest "
                "into a new collection (store.collection) or switch back the embedder."
            )

    # ---- writes -----------------------------------------------------------------------------

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        dimension = self._require_open()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(chunks), dimension):
            raise ValueError(
                f"add_chunks got vectors of shape {vectors.shape} for {len(chunks)} chunks of dimension {dimension}"
            )
        with self._backend_errors("writing chunks"):
            for start in range(0, len(chunks), _UPSERT_BATCH):
                stop = start + _UPSERT_BATCH
                points = [_point(chunk, vector)
                          for chunk, vector in zip(chunks[start:stop], vectors[start:stop], strict=True)]
                # Point ids are the deterministic chunk ids, so a re-run overwrites instead of duplicating.
                self._client.upsert(self._collection, points=points, wait=True)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))])
        with self._backend_errors("deleting documents"):
            return self._delete(flt)

    def delete_versions(self, versions: Sequence[tuple[str, str]]) -> int:
        deleted = 0
        with self._backend_errors("deleting document versions"):
            for start in range(0, len(versions), _DELETE_BATCH):
                flt = models.Filter(
                    should=[
                        models.Filter(must=[_equals("doc_id", doc_id), _equals("doc_hash", doc_hash)])
                        for doc_id, doc_hash in versions[start : start + _DELETE_BATCH]
                    ]
                )
                deleted += self._delete(flt)
        return deleted

    def _delete(self, flt: models.Filter) -> int:
        # Qdrant's delete does not report how many points it removed, so count first.
        matched = self._client.count(self._collection, count_filter=flt, exact=True).count
        if matched:
            self._client.delete(self._collection, points_selector=models.FilterSelector(filter=flt), wait=True)
        return matched

    def finalize(self) -> None:
        """Nothing to do: Qdrant indexes new points itself and deletes take effect at once."""

    # ---- reads ------------------------------------------------------------------------------

    def list_versions(self) -> list[DocVersion]:
        groups: dict[tuple[str, str], list[Any]] = {}  # (doc_id, doc_hash) -> [path, chunk_count, rows]
        offset: models.ExtendedPointId | None = None
        with self._backend_errors("listing stored documents"):
            while True:
                records, offset = self._client.scroll(
                    self._collection,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=_VERSION_FIELDS,
                    with_vectors=False,
                )
                for record in records:
                    payload = record.payload or {}
                    key = (payload["doc_id"], payload["doc_hash"])
                    group = groups.setdefault(key, [payload["path"], int(payload["chunk_count"]), 0])
                    group[2] += 1
                if offset is None:
                    break
        return [
            DocVersion(doc_id=doc_id, doc_hash=doc_hash, path=path, rows=rows, chunk_count=chunk_count)
            for (doc_id, doc_hash), (path, chunk_count, rows) in sorted(groups.items())
        ]

    def dense_search(self, vector: np.ndarray, k: int, flt: SearchFilter | None = None, *,
                     with_vectors: bool = True) -> list[StoreHit]:
        dimension = self._require_open()
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != dimension:
            raise ValueError(f"dense_search got a {query.shape[0]}-d vector; the collection holds {dimension}-d")
        # With cosine distance Qdrant's score is the cosine similarity itself.
        return self._search(query.tolist(), DENSE, k, flt, with_vectors=with_vectors)

    def keyword_search(self, query: str, k: int, flt: SearchFilter | None = None, *,
                       with_vectors: bool = False) -> list[StoreHit]:
        indices, values = bm25_query_vector(query)
        if not indices:
            return []
        return self._search(models.SparseVector(indices=indices, values=values), SPARSE, k, flt,
                            with_vectors=with_vectors)

    def _search(
        self,
        query: list[float] | models.SparseVector,
        using: str,
        k: int,
        flt: SearchFilter | None,
        *,
        with_vectors: bool,
    ) -> list[StoreHit]:
        if k <= 0:
            return []
        flt = flt or SearchFilter()
        qdrant_filter = _tags_filter(flt.tags)
        # Qdrant has no glob match, so a path_glob is applied here, after the search: fetch pages
        # of max(10k, 100) ranked points, keep those SearchFilter.matches, and page on (doubling)
        # until k matched or the collection is exhausted. Tags are pushed down to Qdrant.
        page = k if not flt.path_glob else max(k * 10, 100)
        offset = 0
        hits: list[StoreHit] = []
        with self._backend_errors("searching"):
            while True:
                points = self._client.query_points(
                    self._collection,
                    query=query,
                    using=using,
                    query_filter=qdrant_filter,
                    limit=page,
                    offset=offset or None,
                    with_payload=True,
                    with_vectors=[DENSE] if with_vectors else False,
                ).points
                for point in points:
                    chunk = _chunk_from_payload(point.payload or {})
                    if flt.path_glob and not flt.matches(chunk):
                        continue
                    vector = None
                    if with_vectors and isinstance(point.vector, dict) and DENSE in point.vector:
                        vector = np.asarray(point.vector[DENSE], dtype=np.float32)
                    hits.append(StoreHit(chunk=chunk, score=float(point.score), vector=vector))
                if len(hits) >= k or len(points) < page:
                    return hits[:k]
                offset += page
                page = min(page * 2, 10_000)

    def count(self) -> int:
        with self._backend_errors("counting chunks"):
            return self._client.count(self._collection, exact=True).count

    def info(self) -> CollectionInfo:
        embedder, dimension = self._embedder, self._dimension
        if embedder is None or dimension is None:
            # Not opened (e.g. a status command): report what the collection itself records.
            with self._backend_errors("reading the collection"):
                if not self._client.collection_exists(self._collection):
                    raise BackendError(
                        f"Collection '{self._collection}' does not exist at {self._location} — run ingest first "
                        "or check store.collection."
                    )
                config = self._client.get_collection(self._collection).config
            metadata = config.metadata or {}
            vectors = config.params.vectors
            dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
            embedder = str(metadata.get("embedder", "unknown"))
            dimension = int(metadata.get("dimension", dense.size if dense else 0))
        return CollectionInfo(
            embedder=embedder,
            dimension=dimension,
            rows=self.count(),
            backend="qdrant",
            location=self._location,
            index="hnsw",
        )

    # ---- helpers ----------------------------------------------------------------------------

    def _require_open(self) -> int:
        if self._dimension is None:
            raise RuntimeError("QdrantStore.open(embedder_name, dimension) must be called first")
        return self._dimension

    @contextmanager
    def _backend_errors(self, action: str) -> Iterator[None]:
        """Turn the client's transport and HTTP errors into BackendErrors that say what to do."""
        try:
            yield
        except ResponseHandlingException as exc:
            raise BackendError(
                f"Could not reach Qdrant at {self._location} while {action}: {exc.source} — start the server "
                "(e.g. `docker run -p 6333:6333 qdrant/qdrant`) or fix store.qdrant_url "
                "(':memory:' runs Qdrant in process)."
            ) from exc
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                fix = f"set the API key in the environment variable {self._api_key_env} (store.qdrant_api_key_env)"
            else:
                fix = "check the server's log and that its version matches qdrant-client 1.20"
            detail = exc.content.decode("utf-8", "replace")[:300]
            raise BackendError(
                f"Qdrant at {self._location} refused {action}: HTTP {exc.status_code} {exc.reason_phrase} "
                f"{detail} — {fix}."
            ) from exc


def connect_qdrant(config: StoreConfig) -> QdrantClient:
    url = config.qdrant_url
    if not url:
        raise ConfigError(
            "store.qdrant_url is empty — set it to your Qdrant server, e.g. http://127.0.0.1:6333, "
            "or ':memory:' to run Qdrant in process."
        )
    if url == ":memory:":
        return QdrantClient(":memory:")
    try:
        # The client connects lazily; an unreachable server surfaces on the first call (see open()).
        return QdrantClient(url=url, api_key=os.environ.get(config.qdrant_api_key_env) or None)
    except Exception as exc:  # bad URL syntax and the like: the client raises assorted types
        raise BackendError(
            f"Cannot connect to Qdrant at {url}: {exc} — fix store.qdrant_url (e.g. http://127.0.0.1:6333)."
        ) from exc


def _point(chunk: Chunk, vector: np.ndarray) -> models.PointStruct:
    named: dict[str, Any] = {DENSE: vector.tolist()}
    indices, values = bm25_document_vector(chunk.index_text)
    if indices:  # a chunk with no indexable words simply has no keyword vector
        named[SPARSE] = models.SparseVector(indices=indices, values=values)
    payload = asdict(chunk)
    payload["tags"] = list(chunk.tags)
    payload["heading_path"] = list(chunk.heading_path)
    return models.PointStruct(id=chunk.chunk_id, vector=named, payload=payload)


def _chunk_from_payload(payload: dict[str, Any]) -> Chunk:
    values: dict[str, Any] = {name: payload.get(name) for name in _CHUNK_FIELDS}
    values["tags"] = tuple(values["tags"] or ())
    # Points written before chunk locations existed lack those keys: they read as None / () (the defaults).
    values["heading_path"] = tuple(values["heading_path"] or ())
    return Chunk(**values)


def _equals(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _tags_filter(tags: Sequence[str]) -> models.Filter | None:
    if not tags:
        return None
    return models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=list(tags)))])
