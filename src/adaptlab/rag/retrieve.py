"""Hybrid retrieval: dense and BM25 searches fused by weighted reciprocal rank fusion, optional MMR.

Fusion is done here, not inside a backend, so LanceDB and Qdrant rank identically for the same hits.
Naive equal-weight fusion did not beat BM25 alone on COVID-QA in earlier measurements, so the weights are
settings to tune with the harness, not constants.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from adaptlab.config import RetrieveConfig
from adaptlab.embed.base import Embedder
from adaptlab.rag.store import SearchFilter, StoreHit, VectorStore
from adaptlab.types import ScoredChunk, Usage


@dataclass(frozen=True)
class Reranked:
    chunks: list[ScoredChunk]  # the candidates, reordered
    usage: Usage = Usage()  # model tokens the reranking spent (priced with the answer)


@dataclass(frozen=True)
class Rewritten:
    queries: tuple[str, ...]  # extra queries to search beside the question (never the question itself)
    usage: Usage = Usage()  # model tokens the rewriting spent (priced with the answer)


class Reranker(Protocol):
    """Reorders fused candidates: rag/rerank.py's generator judge ships (no cross-encoder weights exist offline)."""

    def rerank(self, query: str, candidates: Sequence[ScoredChunk]) -> Reranked: ...


class QueryRewriter(Protocol):
    """Extra queries searched beside the question (rag/rewrite.py: HyDE or rephrasings by the generator)."""

    def rewrite(self, query: str) -> Rewritten: ...


@dataclass(frozen=True)
class RetrievalResult:
    query: str
    chunks: tuple[ScoredChunk, ...]
    best_dense_score: float | None  # highest cosine similarity of any chunk: the relevance signal for refusal
    latency_ms: float
    rewrites: tuple[str, ...] = ()  # the extra queries a QueryRewriter added (searched and fused with `query`)
    usage: Usage = Usage()  # model tokens the rewriter and the reranker spent on this retrieval


def reciprocal_rank_fusion(
    dense: Sequence[StoreHit], keyword: Sequence[StoreHit], *, dense_weight: float, keyword_weight: float,
    rrf_k: int,
) -> list[ScoredChunk]:
    """score(chunk) = Σ_lists weight / (rrf_k + rank), ranks 1-based; ties keep dense order first."""
    return fuse_ranked_lists([dense], [keyword], dense_weight=dense_weight, keyword_weight=keyword_weight,
                             rrf_k=rrf_k)


def fuse_ranked_lists(
    dense_lists: Sequence[Sequence[StoreHit]], keyword_lists: Sequence[Sequence[StoreHit]], *, dense_weight: float,
    keyword_weight: float, rrf_k: int,
) -> list[ScoredChunk]:
    """Reciprocal rank fusion over any number of dense and keyword lists (one pair per searched query). A chunk's
    dense/keyword score and rank are those of the first list that found it: the question's own, when it did."""
    entries: dict[str, dict] = {}
    for lists, weight, kind in ((dense_lists, dense_weight, "dense"), (keyword_lists, keyword_weight, "keyword")):
        for hits in lists:
            for rank, hit in enumerate(hits, start=1):
                entry = entries.setdefault(hit.chunk.chunk_id, {"chunk": hit.chunk, "score": 0.0})
                entry["score"] += weight / (rrf_k + rank)
                if f"{kind}_rank" not in entry:
                    entry.update({f"{kind}_score": hit.score, f"{kind}_rank": rank})
    fused = [ScoredChunk(**entry) for entry in entries.values()]
    return sorted(fused, key=lambda c: -c.score)


def maximal_marginal_relevance(
    query_vector: np.ndarray, candidates: Sequence[ScoredChunk], vectors: np.ndarray, k: int, lam: float
) -> list[ScoredChunk]:
    """Greedy MMR: pick the candidate maximising lam·sim(query) − (1−lam)·max sim(already picked)."""
    if not candidates:
        return []
    relevance = vectors @ query_vector
    similarity = vectors @ vectors.T
    picked: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(picked) < k:
        def mmr_score(i: int) -> float:
            redundancy = max((similarity[i, j] for j in picked), default=0.0)
            return lam * relevance[i] - (1 - lam) * redundancy

        best = max(remaining, key=mmr_score)
        picked.append(best)
        remaining.remove(best)
    return [candidates[i] for i in picked]


class Retriever:
    def __init__(self, store: VectorStore, embedder: Embedder, config: RetrieveConfig,
                 reranker: Reranker | None = None, rewriter: QueryRewriter | None = None) -> None:
        self._store = store
        self._embedder = embedder
        self._config = config
        self._reranker = reranker
        self._rewriter = rewriter

    def retrieve(self, query: str, *, top_k: int | None = None, flt: SearchFilter | None = None) -> RetrievalResult:
        started = time.perf_counter()
        config = self._config
        k = top_k or config.top_k
        rewritten = self._rewriter.rewrite(query) if self._rewriter is not None else Rewritten(())
        rewrites = rewritten.queries
        queries = [query, *rewrites]
        query_vectors = self._embedder.embed(queries)
        query_vector = query_vectors[0]
        candidates = max(config.candidates, k)
        dense_lists, keyword_lists = [], []
        for text, vector in zip(queries, query_vectors, strict=True):
            # Dense hits' vectors serve MMR only: without it, skip fetching and converting them.
            dense_lists.append(self._store.dense_search(vector, candidates, flt, with_vectors=config.mmr)
                               if config.dense_weight > 0 else [])
            # Without dense search the keyword hits bring their stored vectors: relevance and MMR need them.
            keyword_lists.append(self._store.keyword_search(text, candidates, flt, with_vectors=not dense_lists[-1])
                                 if config.keyword_weight > 0 else [])
        fused = fuse_ranked_lists(dense_lists, keyword_lists, dense_weight=config.dense_weight,
                                  keyword_weight=config.keyword_weight, rrf_k=config.rrf_k)
        # The refusal signal is the question's own similarity: a HyDE passage resembles chunks of any subject.
        dense = dense_lists[0]
        all_hits = [hit for hits in (*dense_lists, *keyword_lists) for hit in hits]
        reranked = self._reranker.rerank(query, fused) if self._reranker is not None else Reranked(fused)
        fused = reranked.chunks
        if config.mmr:
            pool = fused[: max(k * 4, 20)]
            vectors = self._vectors_for(pool, all_hits)
            chosen = maximal_marginal_relevance(query_vector, pool, vectors, k, config.mmr_lambda)
        else:
            chosen = fused[:k]
        best_dense = max((hit.score for hit in dense), default=None)
        if best_dense is None and chosen:  # dense search off: the relevance of what was retrieved, from its vectors
            best_dense = float(np.max(self._vectors_for(chosen, all_hits) @ query_vector))
        return RetrievalResult(query, tuple(chosen), best_dense, (time.perf_counter() - started) * 1000, rewrites,
                               rewritten.usage + reranked.usage)

    def _vectors_for(self, pool: Sequence[ScoredChunk], hits: Sequence[StoreHit]) -> np.ndarray:
        known = {hit.chunk.chunk_id: hit.vector for hit in hits if hit.vector is not None}
        missing = [c for c in pool if c.chunk.chunk_id not in known]
        if missing:  # hits a store returned without vectors (keyword hits beside dense search): embed them once
            for chunk, vector in zip(missing, self._embedder.embed([c.chunk.index_text for c in missing]), strict=True):
                known[chunk.chunk.chunk_id] = vector
        return np.stack([known[c.chunk.chunk_id] for c in pool]).astype(np.float32)
