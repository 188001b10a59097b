"""What one cache entry holds, and the protocol every cache backend (SQLite, Redis) implements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from adaptlab.types import Answer, Chunk, Citation, ScoredChunk, Usage


class CacheUnavailable(Exception):
    """The backend cannot be reached (Redis down): the caller bypasses the cache instead of failing."""


@dataclass(frozen=True)
class SourceRef:
    """A document version an answer was built from: its content hash invalidates the entry when it changes."""

    doc_hash: str
    path: str


@dataclass
class CacheEntry:
    key: str  # exact key: hash of context + normalised question
    context: str  # fingerprint of everything besides the question that changes the answer
    question: str  # as first asked (the semantic guard compares it with new questions)
    answer: dict[str, Any]  # answer_to_dict(...)
    created_at: float  # unix seconds
    expires_at: float | None  # unix seconds; None: never (source changes still invalidate)
    sources: tuple[SourceRef, ...] = ()
    embedding: np.ndarray | None = None  # float32, L2-normalised; None in an exact-only cache
    prompt_tokens: int = 0  # what the answer cost when it was generated: saved on every hit
    completion_tokens: int = 0

    def alive(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class CacheStats:
    backend: str
    location: str
    entries: int
    contexts: int
    with_sources: int
    expired: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class CacheBackend(Protocol):
    name: str
    location: str

    def get(self, key: str, now: float) -> CacheEntry | None:
        """The entry if present and not expired (`sources` may be left empty: only invalidation needs them)."""

    def get_many(self, keys: Iterable[str], now: float) -> list[CacheEntry]:
        """The live entries among `keys` (semantic candidates)."""

    def put(self, entry: CacheEntry) -> None:
        """Insert or replace the entry under entry.key."""

    def vectors(self, context: str, now: float) -> tuple[list[str], np.ndarray]:
        """Keys and embeddings of the live entries of one context, for the in-memory semantic index."""

    def version(self) -> int:
        """A counter that changes whenever entries are added or removed (by any process)."""

    def delete_for_sources(self, doc_hashes: Iterable[str]) -> list[str]:
        """Delete every entry built from one of these document versions; returns the deleted keys."""

    def delete_for_path(self, path: str) -> list[str]:
        """Delete every entry built from any version of the document at `path` (or a file under it)."""

    def clear(self) -> list[str]:
        """Delete everything; returns the deleted keys."""

    def stats(self, now: float) -> CacheStats: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------- answer (de)serialising


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """Everything a hit must give back, including retrieval results (the harness scores them on hits too)."""
    return {
        "text": answer.text, "refused": answer.refused, "model": answer.model,
        "usage": [answer.usage.prompt_tokens, answer.usage.completion_tokens],
        "citations": [asdict(c) for c in answer.citations],
        "retrieved": [_scored_to_dict(s) for s in answer.retrieved],
        "search_results": [_scored_to_dict(s) for s in answer.search_results],
    }


def answer_from_dict(data: dict[str, Any], *, latency_ms: float) -> Answer:
    """The cached answer as a hit: no tokens were spent on it."""
    return Answer(
        text=data["text"], refused=bool(data.get("refused")), model=data.get("model", ""),
        citations=tuple(Citation(**{**c, "heading_path": tuple(c.get("heading_path", ()))})
                        for c in data.get("citations", [])),
        retrieved=tuple(_scored_from_dict(s) for s in data.get("retrieved", [])),
        search_results=tuple(_scored_from_dict(s) for s in data.get("search_results", [])),
        usage=Usage(0, 0), latency_ms=latency_ms, cache_status="hit",
    )


def _scored_to_dict(scored: ScoredChunk) -> dict[str, Any]:
    data = asdict(scored)
    data["chunk"]["tags"] = list(scored.chunk.tags)
    return data


def _scored_from_dict(data: dict[str, Any]) -> ScoredChunk:
    chunk = dict(data["chunk"])
    chunk["tags"] = tuple(chunk.get("tags", ()))
    chunk["heading_path"] = tuple(chunk.get("heading_path", ()))  # JSON gave a list; entries before it: none
    return ScoredChunk(**{**data, "chunk": Chunk(**chunk)})


def sources_of(answer: Answer) -> tuple[SourceRef, ...]:
    """The document versions an answer was built from: every chunk the model was given."""
    seen: dict[str, SourceRef] = {}
    for scored in answer.retrieved:
        seen.setdefault(scored.chunk.doc_hash, SourceRef(scored.chunk.doc_hash, scored.chunk.path))
    return tuple(seen.values())
