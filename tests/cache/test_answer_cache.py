"""The answer cache with the real MiniLM embedder: key isolation, semantic matches, the guard, TTL, bypass."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptlab.cache.answer_cache import AnswerCache
from adaptlab.cache.redis_backend import RedisCacheBackend
from adaptlab.cache.sqlite_backend import SqliteCacheBackend
from adaptlab.types import Answer, Chunk, ScoredChunk, Usage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def answer(text: str, *, refused: bool = False, doc_hash: str | None = None) -> Answer:
    retrieved = ()
    if doc_hash:
        chunk = Chunk(chunk_id="c1", doc_id="d1", doc_hash=doc_hash, chunk_index=0, chunk_count=1,
                      path="/docs/a.txt", title="A", text="text", index_text="text", char_start=0, char_end=4)
        retrieved = (ScoredChunk(chunk, 0.9),)
    return Answer(text=text, refused=refused, usage=Usage(500, 40), model="m", retrieved=retrieved,
                  search_results=retrieved)


@pytest.fixture
def cache(tmp_path: Path, minilm):
    clock = Clock()
    answer_cache = AnswerCache(SqliteCacheBackend(tmp_path / "cache.db"), embedder=minilm, clock=clock)
    answer_cache.clock = clock  # the tests move time forward
    yield answer_cache
    answer_cache.close()


def store(cache, question: str, text: str, *, context: str = "ctx", ttl: int = 0, **kwargs) -> bool:
    return cache.store(context, question, answer(text, **kwargs), ttl_seconds=ttl, retrieves=True, semantic=True)


def look(cache, question: str, *, context: str = "ctx", guard: bool = True, threshold: float = 0.85):
    return cache.lookup(context, question, semantic=True, threshold=threshold, guard=guard)


def test_exact_hit_ignores_case_spacing_and_trailing_punctuation(cache) -> None:
    store(cache, "What is the incubation period of COVID-19?", "About 5 days.")
    hit = cache.lookup("ctx", "  what is the incubation period of covid-19 ", semantic=False, threshold=1,
                       guard=True)
    assert hit.status == "exact" and hit.entry.answer["text"] == "About 5 days."
    assert (hit.entry.prompt_tokens, hit.entry.completion_tokens) == (500, 40)  # what each hit saves


def test_another_context_never_sees_the_answer(cache) -> None:
    """Model, adapter, system prompt and parameters are all in the context: no cross-serving."""
    store(cache, "What is the incubation period of COVID-19?", "About 5 days.", context="model-a")
    assert look(cache, "What is the incubation period of COVID-19?", context="model-b").status == "miss"
    assert look(cache, "What is the incubation period of COVID-19?", context="model-a").status == "exact"


def test_a_paraphrase_is_a_semantic_hit(cache) -> None:
    store(cache, "What are the symptoms of COVID-19?", "Fever, cough, fatigue.")
    hit = look(cache, "Which symptoms does COVID-19 cause?")
    assert hit.status == "semantic" and hit.similarity >= 0.85
    assert hit.matched_question == "What are the symptoms of COVID-19?"


def test_the_guard_refuses_an_opposite_question_that_embeds_close(cache) -> None:
    store(cache, "Is ibuprofen safe for COVID-19 patients?", "Yes, current evidence says so.")
    unguarded = look(cache, "Is ibuprofen not safe for COVID-19 patients?", guard=False)
    assert unguarded.status == "semantic" and unguarded.similarity > 0.9  # the known failure of plain caches
    guarded = look(cache, "Is ibuprofen not safe for COVID-19 patients?")
    assert guarded.status == "miss" and guarded.rejected and "negation" in guarded.rejected


def test_entries_expire_after_their_ttl(cache) -> None:
    store(cache, "What is MERS?", "A coronavirus disease.", ttl=60)
    assert look(cache, "What is MERS?").status == "exact"
    cache.clock.now += 61
    assert look(cache, "What is MERS?").status == "miss"


def test_refusals_of_retrieving_strategies_are_not_stored(cache) -> None:
    assert not store(cache, "Who won the 2030 world cup?", "I don't know.", refused=True)
    assert look(cache, "Who won the 2030 world cup?").status == "miss"


def test_invalidation_by_source_reaches_the_semantic_index(cache) -> None:
    store(cache, "What are the symptoms of COVID-19?", "Fever, cough, fatigue.", doc_hash="v1")
    assert look(cache, "Which symptoms does COVID-19 cause?").status == "semantic"
    assert cache.invalidate_sources(["v1"]) == 1
    assert look(cache, "Which symptoms does COVID-19 cause?").status == "miss"
    assert look(cache, "What are the symptoms of COVID-19?").status == "miss"


def test_a_second_process_sees_new_entries_semantically(tmp_path: Path, minilm) -> None:
    """Two caches on one file (two server processes): the memory index reloads when the file changes."""
    first = AnswerCache(SqliteCacheBackend(tmp_path / "cache.db"), embedder=minilm)
    second = AnswerCache(SqliteCacheBackend(tmp_path / "cache.db"), embedder=minilm)
    assert look(second, "Which symptoms does COVID-19 cause?").status == "miss"  # loads an empty index
    store(first, "What are the symptoms of COVID-19?", "Fever, cough, fatigue.")
    assert look(second, "Which symptoms does COVID-19 cause?").status == "semantic"


def test_unreachable_redis_is_bypassed_with_one_warning(minilm) -> None:
    warnings: list[str] = []
    cache = AnswerCache(RedisCacheBackend("redis://127.0.0.1:1/0", timeout_s=0.2), embedder=minilm,
                        warn=warnings.append)
    assert look(cache, "What is MERS?").status == "bypass"
    assert not store(cache, "What is MERS?", "A coronavirus disease.")
    assert look(cache, "What is MERS?").status == "bypass"
    assert len(warnings) == 1 and "bypassed" in warnings[0] and "127.0.0.1:1" in warnings[0]


def test_redis_backend_serves_semantic_hits(redis_url: str, minilm) -> None:
    import uuid

    cache = AnswerCache(RedisCacheBackend(redis_url, prefix=f"test:{uuid.uuid4().hex}:"), embedder=minilm)
    try:
        store(cache, "What are the symptoms of COVID-19?", "Fever, cough, fatigue.", ttl=3600)
        assert look(cache, "Which symptoms does COVID-19 cause?").status == "semantic"
        assert look(cache, "what are the symptoms of covid-19").status == "exact"
    finally:
        cache.clear()


def test_an_ambiguous_match_between_two_cached_answers_is_refused(cache) -> None:
    store(cache, "How long is the incubation period of COVID-19?", "About 5 days.")
    store(cache, "How long is the incubation period of the flu?", "About 2 days.")
    question = "How long is the incubation period?"
    plain = cache.lookup("ctx", question, semantic=True, threshold=0.5, guard=False, ambiguity_margin=0.0)
    assert plain.status == "semantic"  # picks one of the two: a coin flip between different answers
    careful = cache.lookup("ctx", question, semantic=True, threshold=0.5, guard=False, ambiguity_margin=0.2)
    assert careful.status == "miss" and careful.rejected.startswith("ambiguous")


def test_the_guard_never_falls_back_to_a_less_similar_entry(cache) -> None:
    store(cache, "Is ibuprofen safe for COVID-19 patients?", "Yes.")
    store(cache, "Is paracetamol not safe for COVID-19 patients?", "It is safe.")
    # Nearest is the ibuprofen question (rejected: negation); the paracetamol one is not allowed to answer.
    found = look(cache, "Is ibuprofen not safe for COVID-19 patients?", threshold=0.5)
    assert found.status == "miss" and "negation" in found.rejected


def test_qdrant_semantic_index_shared_by_two_caches(tmp_path: Path, minilm) -> None:
    """The Qdrant index (here in process) serves semantic hits and forgets invalidated entries."""
    from qdrant_client import QdrantClient

    from adaptlab.cache.semantic import QdrantSemanticIndex

    client = QdrantClient(":memory:")
    backend = SqliteCacheBackend(tmp_path / "cache.db")
    index = QdrantSemanticIndex(client, "cache_vectors", minilm.dimension)
    cache = AnswerCache(backend, embedder=minilm, index=index)
    store(cache, "What are the symptoms of COVID-19?", "Fever, cough, fatigue.", doc_hash="v1", ttl=3600)
    other = AnswerCache(SqliteCacheBackend(tmp_path / "cache.db"), embedder=minilm,
                        index=QdrantSemanticIndex(client, "cache_vectors", minilm.dimension))
    assert look(other, "Which symptoms does COVID-19 cause?").status == "semantic"
    assert look(other, "Which symptoms does COVID-19 cause?", context="another").status == "miss"
    assert cache.invalidate_sources(["v1"]) == 1
    assert look(other, "Which symptoms does COVID-19 cause?").status == "miss"
