"""Unit tests for adaptlab.rag.retrieve: RRF arithmetic, MMR diversity, and Retriever over a stub store."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from adaptlab.config import RetrieveConfig
from adaptlab.rag.retrieve import Reranked, Retriever, maximal_marginal_relevance, reciprocal_rank_fusion
from adaptlab.rag.store import SearchFilter, StoreHit
from adaptlab.testing.fakes import HashEmbedder
from adaptlab.types import Chunk, ScoredChunk


def make_chunk(name: str, text: str | None = None, *, path: str | None = None) -> Chunk:
    text = text if text is not None else f"text of {name}"
    return Chunk(chunk_id=name, doc_id=f"doc-{name}", doc_hash="h", chunk_index=0, chunk_count=1,
                 path=path or f"/docs/{name}.txt", title=name, text=text, index_text=text, char_start=0,
                 char_end=len(text))


def hits(*pairs: tuple[str, float]) -> list[StoreHit]:
    return [StoreHit(make_chunk(name), score) for name, score in pairs]


def unit(vector: Sequence[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


# --------------------------------------------------------------------------- reciprocal rank fusion


def test_rrf_scores_ranks_and_parts() -> None:
    dense = hits(("a", 0.9), ("b", 0.8), ("c", 0.7))
    keyword = hits(("c", 12.0), ("d", 9.0), ("a", 3.0))
    fused = reciprocal_rank_fusion(dense, keyword, dense_weight=0.5, keyword_weight=2.0, rrf_k=10)
    by_id = {s.chunk.chunk_id: s for s in fused}

    assert set(by_id) == {"a", "b", "c", "d"}  # the union of both lists
    assert by_id["a"].score == pytest.approx(0.5 / 11 + 2.0 / 13)
    assert by_id["b"].score == pytest.approx(0.5 / 12)
    assert by_id["c"].score == pytest.approx(0.5 / 13 + 2.0 / 11)
    assert by_id["d"].score == pytest.approx(2.0 / 12)

    assert (by_id["a"].dense_score, by_id["a"].dense_rank) == (0.9, 1)
    assert (by_id["a"].keyword_score, by_id["a"].keyword_rank) == (3.0, 3)
    assert (by_id["b"].keyword_score, by_id["b"].keyword_rank) == (None, None)  # keyword search missed it
    assert (by_id["d"].dense_score, by_id["d"].dense_rank) == (None, None)  # dense search missed it
    assert (by_id["d"].keyword_score, by_id["d"].keyword_rank) == (9.0, 2)

    assert [s.chunk.chunk_id for s in fused] == ["c", "a", "d", "b"]  # sorted by fused score
    assert all(x.score >= y.score for x, y in zip(fused, fused[1:]))


def test_rrf_k_and_weights_change_the_order() -> None:
    dense = hits(("a", 0.9), ("b", 0.8))
    keyword = hits(("b", 5.0), ("a", 1.0))
    # Equal weights, mirrored ranks: a tie, which keeps dense order.
    tied = reciprocal_rank_fusion(dense, keyword, dense_weight=1.0, keyword_weight=1.0, rrf_k=60)
    assert [s.chunk.chunk_id for s in tied] == ["a", "b"]
    assert tied[0].score == pytest.approx(tied[1].score)
    # Keyword weighted up: its top hit wins.
    keyword_heavy = reciprocal_rank_fusion(dense, keyword, dense_weight=1.0, keyword_weight=1.5, rrf_k=60)
    assert [s.chunk.chunk_id for s in keyword_heavy] == ["b", "a"]
    # A smaller k makes rank 1 count for more relative to rank 2.
    small_k = reciprocal_rank_fusion(hits(("a", 0.9)), [], dense_weight=1.0, keyword_weight=1.0, rrf_k=1)
    assert small_k[0].score == pytest.approx(1 / 2)


def test_rrf_one_list_empty_or_weight_zero() -> None:
    dense = hits(("a", 0.9), ("b", 0.5))
    only_dense = reciprocal_rank_fusion(dense, [], dense_weight=1.0, keyword_weight=1.0, rrf_k=10)
    assert [(s.chunk.chunk_id, s.dense_rank, s.keyword_rank) for s in only_dense] == [("a", 1, None), ("b", 2, None)]
    zero = reciprocal_rank_fusion(dense, hits(("b", 1.0)), dense_weight=0.0, keyword_weight=1.0, rrf_k=10)
    assert [s.chunk.chunk_id for s in zero] == ["b", "a"]
    assert zero[1].score == 0.0
    assert reciprocal_rank_fusion([], [], dense_weight=1.0, keyword_weight=1.0, rrf_k=10) == []


# --------------------------------------------------------------------------- maximal marginal relevance


def _scored(names: Sequence[str]) -> list[ScoredChunk]:
    return [ScoredChunk(make_chunk(n), score=1.0 / (i + 1)) for i, n in enumerate(names)]


def test_mmr_prefers_diverse_items_over_duplicates() -> None:
    query = unit([1.0, 0.0, 0.0])
    vectors = np.stack([
        unit([0.95, 0.31, 0.0]),   # a: most relevant
        unit([0.95, 0.31, 0.0]),   # a2: an exact duplicate of a
        unit([0.94, 0.33, 0.01]),  # a3: a near-duplicate of a
        unit([0.80, 0.0, 0.60]),   # b: relevant, and different
    ])
    candidates = _scored(["a", "a2", "a3", "b"])
    picked = maximal_marginal_relevance(query, candidates, vectors, k=2, lam=0.5)
    assert [s.chunk.chunk_id for s in picked] == ["a", "b"]
    # λ = 1 is pure relevance: the duplicates come before the different item.
    relevance_only = maximal_marginal_relevance(query, candidates, vectors, k=3, lam=1.0)
    assert [s.chunk.chunk_id for s in relevance_only] == ["a", "a2", "a3"]


def test_mmr_returns_at_most_k_distinct_items_and_handles_empty() -> None:
    query = unit([1.0, 0.0])
    vectors = np.stack([unit([1.0, 0.1]), unit([0.1, 1.0]), unit([1.0, 0.2])])
    candidates = _scored(["x", "y", "z"])
    picked = maximal_marginal_relevance(query, candidates, vectors, k=10, lam=0.7)
    assert sorted(s.chunk.chunk_id for s in picked) == ["x", "y", "z"]
    assert len(maximal_marginal_relevance(query, candidates, vectors, k=1, lam=0.7)) == 1
    assert maximal_marginal_relevance(query, [], np.zeros((0, 2), dtype=np.float32), k=3, lam=0.7) == []


# --------------------------------------------------------------------------- Retriever over a stub store


class StubStore:
    """Returns fixed hits and records what it was asked."""

    def __init__(self, dense: list[StoreHit], keyword: list[StoreHit]) -> None:
        self.dense = dense
        self.keyword = keyword
        self.dense_calls: list[tuple[int, SearchFilter | None]] = []
        self.keyword_calls: list[tuple[str, int, SearchFilter | None]] = []

    def dense_search(self, vector: np.ndarray, k: int, flt: SearchFilter | None = None, *,
                     with_vectors: bool = True) -> list[StoreHit]:
        assert vector.shape == (16,)
        self.dense_calls.append((k, flt))
        self.dense_vectors_asked = with_vectors
        return [hit if with_vectors else StoreHit(hit.chunk, hit.score) for hit in self.dense[:k]]

    def keyword_search(self, query: str, k: int, flt: SearchFilter | None = None, *,
                       with_vectors: bool = False) -> list[StoreHit]:
        self.keyword_calls.append((query, k, flt))
        self.keyword_vectors_asked = with_vectors
        # As a real store: the stored vector only when asked for.
        return [hit if with_vectors else StoreHit(hit.chunk, hit.score) for hit in self.keyword[:k]]


@pytest.fixture()
def embedder() -> HashEmbedder:
    return HashEmbedder(dimension=16)


def _dense_hits(embedder: HashEmbedder, query: str, texts: dict[str, str]) -> list[StoreHit]:
    """Dense hits with their true cosine scores and vectors, best first (as a real store returns them)."""
    q = embedder.embed([query])[0]
    rows = []
    for name, text in texts.items():
        vector = embedder.embed([text])[0]
        rows.append(StoreHit(make_chunk(name, text), float(vector @ q), vector))
    return sorted(rows, key=lambda h: -h.score)


def test_retriever_fuses_and_cuts_to_top_k(embedder) -> None:
    dense = hits(("a", 0.61), ("b", 0.55), ("c", 0.20))
    keyword = hits(("b", 7.0), ("d", 6.0))
    store = StubStore(dense, keyword)
    config = RetrieveConfig(top_k=2, candidates=7, dense_weight=1.0, keyword_weight=1.0, rrf_k=10)
    flt = SearchFilter(path_glob="/docs/*")
    result = Retriever(store, embedder, config).retrieve("which one", flt=flt)

    assert [s.chunk.chunk_id for s in result.chunks] == ["b", "a"]
    assert result.chunks[0].score == pytest.approx(1 / 12 + 1 / 11)
    assert result.best_dense_score == pytest.approx(0.61)  # best cosine among all dense candidates
    assert result.query == "which one"
    assert result.latency_ms > 0
    assert store.dense_calls == [(7, flt)]
    assert store.keyword_calls == [("which one", 7, flt)]


def test_retriever_top_k_override_raises_candidates(embedder) -> None:
    store = StubStore(hits(*[(f"c{i}", 0.9 - i / 100) for i in range(30)]), [])
    config = RetrieveConfig(top_k=3, candidates=5)
    result = Retriever(store, embedder, config).retrieve("q", top_k=12)
    assert len(result.chunks) == 12
    assert store.dense_calls[0][0] == 12  # never fewer candidates than chunks asked for


def test_retriever_skips_a_search_whose_weight_is_zero(embedder) -> None:
    texts = {"match": "solar panels on the roof", "other": "a recipe for bread"}
    store = StubStore(_dense_hits(embedder, "solar panels", texts), hits(("other", 3.0), ("match", 2.0)))
    no_keyword = Retriever(store, embedder, RetrieveConfig(keyword_weight=0.0)).retrieve("solar panels")
    assert store.keyword_calls == []
    assert [s.chunk.chunk_id for s in no_keyword.chunks] == ["match", "other"]
    assert all(s.keyword_rank is None for s in no_keyword.chunks)


class CountingEmbedder:
    """Counts the texts it embeds: keyword-only retrieval must embed the query and nothing else."""

    def __init__(self, inner: HashEmbedder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_retriever_measures_relevance_from_stored_vectors_when_dense_search_is_off(embedder) -> None:
    match = make_chunk("match", "solar panels on the roof")
    other = make_chunk("other", "a recipe for bread")
    stored = {c.chunk_id: embedder.embed([c.index_text])[0] for c in (match, other)}
    store = StubStore([], [StoreHit(other, 4.0, stored["other"]), StoreHit(match, 2.0, stored["match"])])
    counting = CountingEmbedder(embedder)
    result = Retriever(store, counting, RetrieveConfig(dense_weight=0.0)).retrieve(  # type: ignore[arg-type]
        "solar panels")
    assert store.dense_calls == [] and store.keyword_vectors_asked
    assert counting.texts == ["solar panels"]  # the hits' stored vectors, not a model call per hit
    query = embedder.embed(["solar panels"])[0]
    expected = max(float(vector @ query) for vector in stored.values())
    assert result.best_dense_score == pytest.approx(expected, abs=1e-5)
    assert result.best_dense_score > 0.5  # the chunk sharing both words is close to the query
    mmr = Retriever(store, counting, RetrieveConfig(dense_weight=0.0, mmr=True)).retrieve("solar panels")  # type: ignore[arg-type]
    assert counting.texts == ["solar panels"] * 2 and len(mmr.chunks) == 2


def test_retriever_asks_for_dense_vectors_only_for_mmr(embedder) -> None:
    texts = {"match": "solar panels on the roof", "near": "solar panels on a roof", "other": "a recipe for bread"}
    store = StubStore(_dense_hits(embedder, "solar panels", texts), [])
    plain = Retriever(store, embedder, RetrieveConfig(top_k=2)).retrieve("solar panels")
    assert store.dense_vectors_asked is False
    assert plain.best_dense_score == pytest.approx(store.dense[0].score)
    counting = CountingEmbedder(embedder)
    diverse = Retriever(store, counting, RetrieveConfig(top_k=2, mmr=True)).retrieve(  # type: ignore[arg-type]
        "solar panels")
    assert store.dense_vectors_asked is True
    assert counting.texts == ["solar panels"] and len(diverse.chunks) == 2  # MMR used the stored vectors


def test_retriever_with_nothing_found(embedder) -> None:
    result = Retriever(StubStore([], []), embedder, RetrieveConfig()).retrieve("anything")
    assert result.chunks == ()
    assert result.best_dense_score is None


def test_retriever_mmr_drops_duplicates_and_embeds_keyword_only_hits(embedder) -> None:
    texts = {
        "dup1": "solar panels on the roof produce power",
        "dup2": "solar panels on the roof produce power",
        "dup3": "solar panels on the roof produce power today",
        "diff": "solar energy prices fell sharply",
    }
    dense = _dense_hits(embedder, "solar panels power", texts)
    keyword_only = StoreHit(make_chunk("kw", "wind turbines and solar farms"), 5.0)  # no vector: must be embedded
    store = StubStore(dense, [keyword_only])
    config = RetrieveConfig(top_k=3, mmr=True, mmr_lambda=0.3)
    result = Retriever(store, embedder, config).retrieve("solar panels power")
    ids = [s.chunk.chunk_id for s in result.chunks]
    assert len(ids) == 3
    assert len({i for i in ids if i.startswith("dup")}) == 1  # one of the identical texts, not all of them
    assert {"diff", "kw"} <= set(ids)

    plain = Retriever(store, embedder, RetrieveConfig(top_k=3)).retrieve("solar panels power")
    assert sum(s.chunk.chunk_id.startswith("dup") for s in plain.chunks) >= 2  # without MMR duplicates crowd in


class ReverseReranker:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def rerank(self, query: str, candidates: Sequence[ScoredChunk]) -> Reranked:
        self.seen.append(query)
        return Reranked(list(reversed(candidates)))


def test_retriever_applies_reranker_before_cutting(embedder) -> None:
    store = StubStore(hits(("a", 0.9), ("b", 0.8), ("c", 0.7)), [])
    reranker = ReverseReranker()
    result = Retriever(store, embedder, RetrieveConfig(top_k=2), reranker=reranker).retrieve("q")
    assert reranker.seen == ["q"]
    assert [s.chunk.chunk_id for s in result.chunks] == ["c", "b"]
