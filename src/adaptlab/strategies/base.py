"""The Strategy protocol: everything `ask`, the harness, the bench, the cost model and the server know about a
strategy. A caller that needs more extends this protocol; none casts to a concrete strategy."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from adaptlab.rag.store import SearchFilter
from adaptlab.types import Answer, Sampling, Standalone, TextDelta, Turn

# What Strategy.stream yields: pieces of the answer's text as they are produced, then the whole Answer.
AnswerEvent = TextDelta | Answer
# A generator, so that a reader who stops early (a client hung up) can close it and end the generation.
AnswerStream = Generator[AnswerEvent, None, None]

# Where a strategy's cache look-up goes: nowhere (no cache), this machine (SQLite: an exact look-up takes
# microseconds), or over the network (Redis: never waited on by the server's event loop).
CacheReach = Literal["none", "local", "remote"]


@dataclass(frozen=True)
class AskOptions:
    """Per-call changes to how a strategy answers; the defaults answer exactly as configured (and as evaluated).

    top_k / flt change what a retrieving strategy searches; sampling, how the model generates. A cached strategy
    answers calls with such changes from its wrapped strategy, bypassing the cache: its entries were stored for the
    evaluated settings."""

    top_k: int | None = None
    flt: SearchFilter | None = None
    sampling: Sampling = Sampling()
    tenant: str = ""  # whose cached answers may be served (a cached strategy's cache is scoped per tenant)

    @property
    def is_default(self) -> bool:
        return self.top_k is None and (self.flt is None or self.flt.is_empty()) and self.sampling.is_default


@dataclass(frozen=True)
class CacheProbe:
    """A cache look-up's outcome: the cached answer on a hit. On a miss, `state` carries what the look-up
    computed (the question's embedding) for `answer(..., probe=)` to reuse; callers treat it as opaque."""

    hit: Answer | None
    state: Any = None
    started: float = field(default_factory=time.perf_counter)  # the answer's latency counts from here


class Strategy(Protocol):
    name: str  # the [strategies.NAME] it was built from
    kind: str  # "prompt" | "rag" | "finetuned" | "finetuned_rag" | "cached"
    retrieves: bool  # answers carry search results and citations (retrieval metrics and AskOptions apply)

    @property
    def cache_reach(self) -> CacheReach:
        """Where this strategy's cache look-up goes ("none" without a cache)."""

    @property
    def semantic_cache(self) -> bool:
        """A full look-up embeds the question (not free: the server runs it off the event loop)."""

    @property
    def parallel_answers(self) -> int | None:
        """How many answers this strategy may compute at once: 1 for a local llama.cpp model (one request per
        process) and for a cached strategy (an answer may come from an earlier one); None when its model is an
        endpoint, so the caller's concurrency decides."""

    @property
    def sampling_applied(self) -> frozenset[str]:
        """The Sampling fields this strategy applies when a caller sets them ("max_tokens", "temperature", "top_p",
        "stop", "json_schema"); the rest are ignored (a strategy with its own JSON schema keeps it)."""

    def standalone(self, question: str, history: Sequence[Turn]) -> Standalone:
        """`question` made standalone from the earlier turns of its conversation (`[conversation] condense`), for
        retrieval and the cache key; itself when `history` is empty. Callers answer the returned question."""

    def answer(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> Answer:
        """Answer one query: text, citations, token usage, latency, cache status.

        seed: sampling seed for this call (the harness varies it across `--repeats`); None keeps the config's.
        options: per-call changes (`adaptlab ask --top-k/--filter`; a served client's sampling and tenant).
        probe: the miss of an earlier `probe_cache` of this query, so the look-up is not repeated."""

    def stream(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> AnswerStream:
        """`answer`, streamed: the text in pieces as the model produces it (a cache hit or a refusal: in one
        piece, at once), then the whole Answer — the same answer `answer` returns, its text the pieces joined.
        What needs the whole text (citations, refusal detection, the cache store) is done before the Answer."""

    def probe_cache(self, query: str, *, exact_only: bool = False, tenant: str = "") -> CacheProbe:
        """Look the query up in this strategy's answer cache without calling the model or writing the cache
        (a hit is logged as the answer served). exact_only: skip the semantic search — no embedding, microseconds
        on a local cache. tenant: whose answers the look-up may find (and a miss's answer is stored for): ""
        shares the cache among all callers. A strategy without a cache answers a miss at once."""

    def describe(self) -> dict[str, Any]:
        """Parameters that identify this strategy's behaviour (recorded with every eval run)."""

    def seen_questions(self) -> list[str]:
        """Questions this strategy was shown (few-shot examples, training data): the held-out check compares
        eval questions against them."""


SAMPLING_FIELDS = frozenset({"max_tokens", "temperature", "top_p", "stop", "json_schema"})


class Uncached:
    """The cache half of the protocol for strategies that have no cache of their own."""

    cache_reach: CacheReach = "none"
    semantic_cache = False

    def probe_cache(self, query: str, *, exact_only: bool = False, tenant: str = "") -> CacheProbe:
        return CacheProbe(None)


def timed_stream(events: Iterable[AnswerEvent], started: float | None = None) -> Iterator[AnswerEvent]:
    """The events, the final Answer carrying first_token_ms: from `started` (perf_counter; default now) to the
    first piece of text, or to the Answer itself when no text came."""
    started = time.perf_counter() if started is None else started
    first_token_ms: float | None = None
    for event in events:
        if first_token_ms is None:
            first_token_ms = (time.perf_counter() - started) * 1000
        yield event if isinstance(event, TextDelta) else replace(event, first_token_ms=first_token_ms)


def final_answer(events: Iterable[AnswerEvent]) -> Answer:
    """The Answer that ends a stream (the pieces before it are its text)."""
    answer: Answer | None = None
    for event in events:
        if isinstance(event, Answer):
            answer = event
    if answer is None:
        raise RuntimeError("a strategy's stream ended without its Answer")
    return answer


def with_standalone(answer: Answer, standalone: Standalone | None) -> Answer:
    """A follow-up's answer (serve and the harness alike): it says which standalone question it answers, and the
    rewrite's tokens are part of what it cost (a cache hit still made the rewrite). None: not a follow-up."""
    if standalone is None:
        return answer
    return replace(answer, usage=answer.usage + standalone.usage, standalone_question=standalone.question)


def text_at_once(answer: Answer) -> Iterator[AnswerEvent]:
    """A finished answer as a stream (a cache hit, a refusal): its whole text in one piece, then the answer."""
    if answer.text:
        yield TextDelta(answer.text)
    yield answer
