"""A strategy behind the answer cache: hits return the stored answer, misses ask the wrapped strategy.

The harness sees `cache_status` on every answer, so it measures hit rate, quality on hits vs misses and latency;
every hit is logged with the tokens it saved, for the cost model.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adaptlab.cache.answer_cache import AnswerCache, Lookup
from adaptlab.cache.entry import answer_from_dict
from adaptlab.cache.keys import fingerprint
from adaptlab.config import AdaptlabConfig, CachedStrategyConfig
from adaptlab.logs import CallLog
from adaptlab.strategies.base import AnswerStream, AskOptions, CacheProbe, CacheReach, Strategy, text_at_once
from adaptlab.types import Answer, Standalone, TextDelta, Turn

if TYPE_CHECKING:
    from adaptlab.project import Project


@dataclass(frozen=True)
class _Miss:
    """A look-up's outcome, with the context (the tenant's) the miss's answer is stored under."""

    lookup: Lookup
    context: str


class CachedStrategy:
    kind = "cached"
    # One answer at a time: a later question may be served from an earlier one's answer, so the order of the
    # answers is part of the result.
    parallel_answers: int | None = 1

    def __init__(self, name: str, inner: Strategy, cache: AnswerCache, context: str, *, semantic: bool,
                 threshold: float, guard: bool, ttl_seconds: int, ambiguity_margin: float = 0.0,
                 log: CallLog | None = None) -> None:
        self.name = name
        self.inner = inner
        self.retrieves = inner.retrieves
        self.context = context
        self._cache = cache
        self._semantic, self._threshold, self._guard, self._ttl = semantic, threshold, guard, ttl_seconds
        self._margin = ambiguity_margin
        self._log = log

    @property
    def semantic_cache(self) -> bool:
        return self._semantic

    @property
    def cache_reach(self) -> CacheReach:
        return "local" if self._cache.backend.name == "sqlite" else "remote"

    def answer(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> Answer:
        options = options or AskOptions()
        if not options.is_default:
            # Entries were stored for the evaluated retrieval and sampling: a filtered or resized search, or a
            # client's own sampling, is answered fresh.
            return replace(self.inner.answer(query, seed=seed, options=options), cache_status="none")
        if probe is None or probe.state is None:
            probe = self.probe_cache(query, tenant=options.tenant)
        if probe.hit is not None:
            return probe.hit
        miss = probe.state
        return self._store_miss(query, miss, self.inner.answer(query, seed=seed), started=probe.started)

    def probe_cache(self, query: str, *, exact_only: bool = False, tenant: str = "") -> CacheProbe:
        """The cached answer (cache_status "hit"), or a miss carrying the lookup for the miss path.

        exact_only: skip the semantic search (no embedding: microseconds). The server answers exact hits on its
        event loop and sends the rest to a lookup thread; a miss in this mode is not logged, since the full
        lookup that follows logs it. tenant: the look-up (and the miss's store) is confined to this tenant's
        entries — another context fingerprint, so neither the exact nor the semantic search can cross it."""
        started = time.perf_counter()
        context = self._context_of(tenant)
        lookup = self._cache.lookup(context, query, semantic=self._semantic and not exact_only,
                                    threshold=self._threshold, guard=self._guard, ambiguity_margin=self._margin)
        if lookup.entry is None:
            # An exact-only miss is not a finished look-up when the semantic search is still to come.
            return CacheProbe(None, None if exact_only and self._semantic else _Miss(lookup, context), started)
        answer = answer_from_dict(lookup.entry.answer, latency_ms=(time.perf_counter() - started) * 1000)
        self._record(lookup, answer, saved=(lookup.entry.prompt_tokens, lookup.entry.completion_tokens))
        return CacheProbe(answer, _Miss(lookup, context), started)

    def stream(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> AnswerStream:
        """A hit streams at once, in one piece; a miss streams the wrapped strategy's answer as it is generated
        and is stored in the cache once it is whole."""
        options = options or AskOptions()
        if not options.is_default:
            for event in self.inner.stream(query, seed=seed, options=options):
                yield replace(event, cache_status="none") if isinstance(event, Answer) else event
            return
        if probe is None or probe.state is None:
            probe = self.probe_cache(query, tenant=options.tenant)
        if probe.hit is not None:
            yield from text_at_once(probe.hit)
            return
        for event in self.inner.stream(query, seed=seed):
            if isinstance(event, TextDelta):
                yield event
            else:
                yield self._store_miss(query, probe.state, event, started=probe.started)

    @property
    def sampling_applied(self) -> frozenset[str]:
        return self.inner.sampling_applied

    def standalone(self, question: str, history: Sequence[Turn]) -> Standalone:
        return self.inner.standalone(question, history)  # the key is the standalone question: never a bare follow-up

    def _context_of(self, tenant: str) -> str:
        return fingerprint({"context": self.context, "tenant": tenant}) if tenant else self.context

    def _store_miss(self, query: str, miss: _Miss, answer: Answer, *, started: float) -> Answer:
        """Store the wrapped strategy's answer after a miss (the second half of `answer`)."""
        lookup = miss.lookup
        stored = self._cache.store(miss.context, query, answer, ttl_seconds=self._ttl, retrieves=self.retrieves,
                                   semantic=self._semantic, embedding=lookup.embedding)
        # "none": the cache was bypassed
        status: Literal["miss", "none"] = "miss" if lookup.status == "miss" else "none"
        answer = replace(answer, cache_status=status, latency_ms=(time.perf_counter() - started) * 1000)
        self._record(lookup, answer, saved=(0, 0), stored=stored)
        return answer

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "wraps": self.inner.name, "mode": "semantic" if self._semantic else "exact",
            "threshold": self._threshold if self._semantic else None, "guard": self._guard if self._semantic else None,
            "ambiguity_margin": self._margin if self._semantic else None,
            "ttl_seconds": self._ttl, "backend": self._cache.backend.name,
            "context": self.context[:16], "inner": self.inner.describe(),
        }

    def seen_questions(self) -> list[str]:
        return self.inner.seen_questions()

    def _record(self, lookup: Lookup, answer: Answer, *, saved: tuple[int, int], stored: bool = False) -> None:
        if self._log is None:
            return
        self._log.record("cache", model=answer.model, prompt_tokens=saved[0], completion_tokens=saved[1],
                         latency_ms=lookup.lookup_ms, strategy=self.name, wraps=self.inner.name,
                         status=lookup.status, similarity=lookup.similarity, rejected=lookup.rejected,
                         matched=lookup.matched_question, stored=stored)


def cache_context(config: AdaptlabConfig, inner_name: str, inner: Strategy) -> str:
    """Fingerprint of everything besides the question that changes the wrapped strategy's answer.

    Files are fingerprinted by content (few-shot set, schema, adapter): retraining into the same path or
    editing the examples must not serve old answers. For a cached strategy, its wrapped strategy's files."""
    section = config.strategies[inner_name]
    if isinstance(section, CachedStrategyConfig):
        section = config.strategies[section.wraps]
    generator = config.generator
    parts: dict[str, Any] = {
        "strategy": inner.describe(),
        "generator": {"backend": generator.backend, "model_path": generator.model_path, "model": generator.model,
                      "base_url": generator.base_url if generator.backend == "openai" else "",
                      "temperature": generator.temperature, "repeat_penalty": generator.repeat_penalty,
                      "seed": generator.seed, "n_ctx": generator.n_ctx},
        "files": {field: _file_sha256(config.resolve_path(value))
                  for field in ("few_shot_path", "json_schema_path", "adapter")
                  if (value := getattr(section, field, ""))},
    }
    if inner.retrieves:
        parts["index"] = {"embedder": config.embedder.model_dump(), "chunk": config.chunk.model_dump(),
                          "retrieve": config.retrieve.model_dump(), "answer": config.answer.model_dump(),
                          "store": {"backend": config.store.backend, "collection": config.store.collection}}
    return fingerprint(parts)


def build_cached(project: Project, name: str, section: CachedStrategyConfig, inner: Strategy) -> CachedStrategy:
    settings = project.config.cache
    return CachedStrategy(
        name, inner, project.cache, cache_context(project.config, section.wraps, inner),
        semantic=section.mode == "semantic",
        threshold=section.threshold if section.threshold is not None else settings.semantic_threshold,
        guard=section.guard if section.guard is not None else settings.guard,
        ttl_seconds=section.ttl_seconds if section.ttl_seconds is not None else settings.ttl_seconds,
        ambiguity_margin=settings.ambiguity_margin, log=project.logger,
    )


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"
