"""The vector-store protocol every backend implements, and what crosses it.

A store holds chunks with their vector and their keyword-indexed text. It must:
- refuse a collection built by another embedder (name or dimension) with StoreMismatchError;
- make `add_chunks` idempotent (chunk ids are deterministic) so a re-run after a crash never duplicates;
- answer `list_versions` so the indexer can reconcile files with what is stored (no orphans, no partials).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from adaptlab.types import Chunk


@dataclass(frozen=True)
class SearchFilter:
    """Metadata filter applied inside the store. Empty filter = everything."""

    path_glob: str | None = None  # fnmatch-style glob on Chunk.path, e.g. "*/reports/*.pdf"
    tags: tuple[str, ...] = ()  # chunk must carry at least one of these tags

    def is_empty(self) -> bool:
        return not self.path_glob and not self.tags

    def matches(self, chunk: Chunk) -> bool:
        """Reference semantics (backends may push the filter down but must agree with this)."""
        if self.path_glob and not fnmatch.fnmatchcase(chunk.path, self.path_glob):
            return False
        if self.tags and not set(self.tags) & set(chunk.tags):
            return False
        return True


@dataclass(frozen=True)
class StoreHit:
    """One search result from a store. For dense search `score` is cosine similarity; for keyword, BM25."""

    chunk: Chunk
    score: float
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class DocVersion:
    """What the store holds for one (document, version): the indexer compares it to the files on disk."""

    doc_id: str
    doc_hash: str
    path: str
    rows: int  # chunks stored for this version
    chunk_count: int  # chunks this version should have; rows < chunk_count means a partial write


@dataclass(frozen=True)
class CollectionInfo:
    embedder: str
    dimension: int
    rows: int
    backend: str
    location: str
    index: str


class VectorStore(Protocol):
    def open(self, embedder_name: str, dimension: int) -> None:
        """Create the collection, or open it and check it was built by this embedder (else StoreMismatchError)."""

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Write chunks with their (L2-normalised) vectors. Atomic or idempotent; never duplicates."""

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of these documents; returns chunks deleted."""

    def delete_versions(self, versions: Sequence[tuple[str, str]]) -> int:
        """Delete the chunks of these (doc_id, doc_hash) pairs; returns chunks deleted."""

    def list_versions(self) -> list[DocVersion]:
        """Every (doc_id, doc_hash) stored, with row counts."""

    def dense_search(self, vector: np.ndarray, k: int, flt: SearchFilter | None = None, *,
                     with_vectors: bool = True) -> list[StoreHit]:
        """Top-k chunks by cosine similarity; with_vectors: each hit with its stored vector (MMR needs them; a
        caller that does not can save fetching and converting them)."""

    def keyword_search(self, query: str, k: int, flt: SearchFilter | None = None, *,
                       with_vectors: bool = False) -> list[StoreHit]:
        """Top-k chunks by BM25 over Chunk.index_text; with_vectors: each hit with its stored vector (keyword-only
        retrieval needs them for relevance and MMR; re-embedding the text would cost a model call per hit)."""

    def finalize(self) -> None:
        """After a batch of writes: update indexes, compact, drop old versions."""

    def info(self) -> CollectionInfo:
        """Embedder name, dimension, row count, where the data lives and which index serves queries."""

    def count(self) -> int:
        """Number of stored chunks."""
