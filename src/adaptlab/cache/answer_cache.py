"""The answer cache: exact lookup, then semantic lookup with the guard; storing, invalidating, clearing.

Rules that keep it from serving a wrong or stale answer:
- every lookup is confined to one context fingerprint (model, adapter, prompt, parameters, index config);
- a semantic match must pass the guard (negation, numbers, named entities) when the guard is on;
- an ambiguous match is refused: when another cached question is within `ambiguity_margin` of the best one
  and its answer differs, the new question could paraphrase either, so neither is served;
- an entry records the document versions it was built from, and re-ingesting a changed or deleted document
  deletes exactly those entries (`invalidate_sources`);
- refusals of retrieving strategies are not stored: "nothing relevant found" goes stale as soon as a relevant
  document is added, and no source hash would catch that.
An unreachable backend (Redis down) is bypassed with one warning; answers are still served, and the backend
is tried again RETRY_SECONDS later (not on every request: each try would wait for a connect timeout).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from adaptlab.cache.entry import (
    CacheBackend,
    CacheEntry,
    CacheStats,
    CacheUnavailable,
    answer_to_dict,
    sources_of,
)
from adaptlab.cache.guard import guard_rejection
from adaptlab.cache.keys import exact_key
from adaptlab.cache.semantic import MemorySemanticIndex, SemanticIndex
from adaptlab.errors import BackendError
from adaptlab.types import Answer

RETRY_SECONDS = 30.0


@dataclass
class Lookup:
    status: Literal["exact", "semantic", "miss", "bypass"]
    entry: CacheEntry | None = None
    similarity: float | None = None  # of the semantic match, or of the best candidate on a miss
    matched_question: str | None = None
    rejected: str | None = None  # why the guard refused the best candidate above the threshold
    embedding: np.ndarray | None = None  # the question's vector: reused when the answer is stored
    lookup_ms: float = 0.0


def _warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class AnswerCache:
    def __init__(self, backend: CacheBackend, *, embedder=None, index: SemanticIndex | None = None,
                 clock: Callable[[], float] = time.time, warn: Callable[[str], None] = _warn_stderr) -> None:
        self.backend = backend
        self._embedder = embedder
        self._index = index if index is not None else MemorySemanticIndex(backend)
        self._clock = clock
        self._warn = warn
        self._warned = False
        self._down_until = 0.0  # monotonic time before which the backend is not tried again
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    # ------------------------------------------------------------------------------------------ lookup

    def lookup(self, context: str, question: str, *, semantic: bool, threshold: float,
               guard: bool, ambiguity_margin: float = 0.0) -> Lookup:
        started = time.perf_counter()
        if not self.available:
            return Lookup("bypass")
        now = self._clock()
        try:
            entry = self.backend.get(exact_key(context, question), now)
            if entry is not None:
                return Lookup("exact", entry, 1.0, entry.question, lookup_ms=_ms(started))
            if not semantic:
                return Lookup("miss", lookup_ms=_ms(started))
            vector = self._embed(question)
            # The nearest live entry is the only one that may answer: if the guard refuses it, falling back to
            # a less similar entry would only raise the odds of a wrong answer. Entries within the margin below
            # it are rivals: a rival with another answer makes the match ambiguous.
            alive: list[tuple[CacheEntry, float]] = []
            best: float | None = None
            for key, score in self._index.nearest(context, vector, now):
                best = score if best is None else best
                if score < threshold or (alive and score < alive[0][1] - ambiguity_margin):
                    break
                candidate = self.backend.get(key, now)
                if candidate is not None:  # None: expired or deleted since the index loaded
                    alive.append((candidate, score))
            rejected: str | None = None
            if alive:
                chosen, score = alive[0]
                rival = next((c for c, _ in alive[1:] if c.answer.get("text") != chosen.answer.get("text")), None)
                rejected = guard_rejection(question, chosen.question) if guard else None
                if rejected is None and rival is not None:
                    rejected = (f"ambiguous: {rival.question!r} is within {ambiguity_margin} of "
                                f"{chosen.question!r} and has another answer")
                if rejected is None:
                    return Lookup("semantic", chosen, score, chosen.question, embedding=vector,
                                  lookup_ms=_ms(started))
            return Lookup("miss", similarity=best, rejected=rejected, embedding=vector, lookup_ms=_ms(started))
        except CacheUnavailable as exc:
            self._bypass(str(exc))
            return Lookup("bypass", lookup_ms=_ms(started))

    # ------------------------------------------------------------------------------------------- store

    def store(self, context: str, question: str, answer: Answer, *, ttl_seconds: int, retrieves: bool,
              semantic: bool, embedding: np.ndarray | None = None) -> bool:
        """Keep `answer` for `question`; False when it must not be cached or the backend is down."""
        if not self.available or (answer.refused and retrieves) or not answer.text.strip():
            return False
        now = self._clock()
        if semantic and embedding is None:
            embedding = self._embed(question)
        entry = CacheEntry(
            key=exact_key(context, question), context=context, question=question, answer=answer_to_dict(answer),
            created_at=now, expires_at=now + ttl_seconds if ttl_seconds else None, sources=sources_of(answer),
            embedding=embedding if semantic else None, prompt_tokens=answer.usage.prompt_tokens,
            completion_tokens=answer.usage.completion_tokens,
        )
        try:
            self.backend.put(entry)
            if entry.embedding is not None:
                self._index.added(context, entry.key, entry.embedding, entry.expires_at)
        except CacheUnavailable as exc:
            self._bypass(str(exc))
            return False
        return True

    # ------------------------------------------------------------------------------------ invalidation

    def invalidate_sources(self, doc_hashes: Iterable[str]) -> int:
        """Delete the entries built from these document versions (changed or deleted on re-ingest)."""
        return self._deleted(lambda b: b.delete_for_sources(doc_hashes))

    def clear(self, *, source: str | None = None) -> int:
        """Delete the entries built from the document(s) at `source`, or everything."""
        return self._deleted(lambda b: b.delete_for_path(source) if source else b.clear())

    def stats(self) -> CacheStats | None:
        try:
            return self.backend.stats(self._clock())
        except CacheUnavailable as exc:
            self._bypass(str(exc))
            return None

    def close(self) -> None:
        self.backend.close()

    # ---------------------------------------------------------------------------------------- helpers

    def _deleted(self, work: Callable[[CacheBackend], list[str]]) -> int:
        # Unlike lookups, a deletion that cannot run is an error: silently keeping entries would serve stale
        # answers once the backend is back.
        try:
            keys = work(self.backend)
        except CacheUnavailable as exc:
            raise BackendError(f"{exc}; nothing was deleted from the answer cache — start the server (or fix "
                               f"cache.redis_url) and run `adaptlab cache clear` again.") from exc
        self._index.removed(keys)
        return len(keys)

    def _embed(self, question: str) -> np.ndarray:
        if self._embedder is None:
            raise RuntimeError("semantic caching needs an embedder")  # a wiring bug, not user input
        if not hasattr(self._embedder, "embed"):  # a provider: load the model only when first needed
            self._embedder = self._embedder()
        return np.asarray(self._embedder.embed([question])[0], dtype=np.float32)

    def _bypass(self, reason: str) -> None:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_SECONDS
            if self._warned:
                return
            self._warned = True
        self._warn(f"answer cache bypassed — {reason}. Answers are still served, uncached.")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
