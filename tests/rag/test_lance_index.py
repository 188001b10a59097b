"""LanceDB with a real vector index: searches for many candidates work (HNSW's ef is raised to fit), results
match exact search, and finalize() again keeps the index."""

from __future__ import annotations

import numpy as np
import pytest

from adaptlab.config import StoreConfig
from adaptlab.rag.lance_store import LanceStore
from adaptlab.rag.store import SearchFilter
from adaptlab.types import Chunk


def _chunks(count: int, dim: int, rng) -> tuple[list[Chunk], np.ndarray]:
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(chunk_id=f"c{i}", doc_id=f"d{i // 4}", doc_hash="h", chunk_index=i % 4, chunk_count=4,
                    path=f"/docs/{i // 4}.txt", title="t", text=f"text {i}", index_text=f"text {i}",
                    char_start=0, char_end=6, tags=("hot",) if i % 10 == 0 else ())
              for i in range(count)]
    return chunks, vectors


@pytest.mark.parametrize("index", ["ivf_hnsw_sq", "ivf_sq"])
def test_indexed_search_for_many_candidates_matches_exact(tmp_path, index):
    rng = np.random.default_rng(3)
    chunks, vectors = _chunks(1200, 32, rng)
    # graph off: this tests LanceDB's own index, which filtered searches and readers of a table in writing use
    store = LanceStore(StoreConfig(index=index, exact_below=0, graph="off"), tmp_path / "db")
    store.open("test-embedder", 32)
    store.add_chunks(chunks, vectors)
    store.finalize()
    assert store.info().index != "exact (brute force)"
    recalls = []
    for query in vectors[:20] + 0.01:
        query = query / np.linalg.norm(query)
        hits = store.dense_search(query, 50)  # more than ef's default: must not fail
        assert len(hits) == 50
        exact = set(np.argsort(-(vectors @ query))[:50])
        recalls.append(len({int(h.chunk.chunk_id[1:]) for h in hits} & exact) / 50)
        assert hits[0].vector is not None and hits[0].score == pytest.approx(float(hits[0].vector @ query), abs=0.02)
    assert np.mean(recalls) >= 0.9
    filtered = store.dense_search(vectors[0], 20, SearchFilter(tags=("hot",)))
    assert filtered and all(h.chunk.tags == ("hot",) for h in filtered)
    store.finalize()  # the second optimize must keep the index usable
    assert len(store.dense_search(vectors[5], 50)) == 50
