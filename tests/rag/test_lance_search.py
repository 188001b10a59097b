"""LanceStore searches read each hit's payload from one chunk_json column: the hits, scores and vectors must be
exactly those of the column-by-column read (still used for tables written before the column existed), filters
must agree with SearchFilter.matches, and with_vectors=False leaves the vectors out and nothing else."""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pytest

from adaptlab.config import StoreConfig
from adaptlab.rag.lance_store import _CHUNK_JSON, LanceStore, _schema
from adaptlab.rag.store import SearchFilter, StoreHit
from adaptlab.types import Chunk

DIM = 24
EMBEDDER = "test:random-24"
FILTERS = [
    None,
    SearchFilter(tags=("hot",)),
    SearchFilter(tags=("hot", "cold")),
    SearchFilter(path_glob="/docs/a*/*.md"),  # pushed into SQL LIKE
    SearchFilter(path_glob="/docs/[ab]1*/*"),  # [...] class: filtered in Python after the search
    SearchFilter(path_glob="/docs/b*", tags=("cold",)),
]


def _chunks(count: int) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = []
    for i in range(count):
        # Payload values JSON must carry exactly: quotes, newlines, non-ASCII, None and empty tuples.
        text = f'chunk {i}: "quoted"\nnaïve café — 東京 {"x" * (i % 7)}'
        tags = [(), ("hot",), ("cold", "hot"), ("cold",)][i % 4]
        chunks.append(Chunk(
            chunk_id=f"c{i}", doc_id=f"d{i // 3}", doc_hash=f"h{i % 2}", chunk_index=i % 3, chunk_count=3,
            path=f"/docs/{'ab'[i % 2]}{i % 13}/file {i // 3}.md", title=f"Title {i // 3}", text=text,
            index_text=f"Title {i // 3}\n{text}", char_start=i * 10, char_end=i * 10 + len(text),
            page=None if i % 5 == 0 else i % 9, tags=tags,
        ))
    return chunks, vectors


def _open(directory: Path, *, legacy: bool) -> LanceStore:
    """A store in `directory`; legacy: its table has the schema from before chunk_json (as an old project's)."""
    if legacy:
        schema = _schema(EMBEDDER, DIM)
        old_schema = schema.remove(schema.get_field_index(_CHUNK_JSON))
        lancedb.connect(str(directory)).create_table("chunks", schema=old_schema)
    store = LanceStore(StoreConfig(index="flat"), directory)  # exact search: both tables rank alike
    store.open(EMBEDDER, DIM)
    return store


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[LanceStore, LanceStore, list[Chunk], np.ndarray]:
    chunks, vectors = _chunks(300)
    packed = _open(tmp_path_factory.mktemp("packed"), legacy=False)
    legacy = _open(tmp_path_factory.mktemp("legacy"), legacy=True)
    for store in (packed, legacy):
        store.add_chunks(chunks[:150], vectors[:150])
        store.add_chunks(chunks[150:], vectors[150:])  # two fragments
        store.finalize()
    assert packed._has_chunk_json and _CHUNK_JSON in packed.table.schema.names
    assert not legacy._has_chunk_json and _CHUNK_JSON not in legacy.table.schema.names
    return packed, legacy, chunks, vectors


def _same(a: list[StoreHit], b: list[StoreHit]) -> None:
    assert [h.chunk for h in a] == [h.chunk for h in b]
    assert [h.score for h in a] == [h.score for h in b]  # bit-identical, not approximately
    for x, y in zip(a, b, strict=True):
        assert (x.vector is None) == (y.vector is None)
        if x.vector is not None:
            np.testing.assert_array_equal(x.vector, y.vector)


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("k", [1, 10, 50])
def test_dense_search_from_chunk_json_equals_the_column_read_and_exact_search(stores, flt, k) -> None:
    packed, legacy, chunks, vectors = stores
    by_id = {chunk.chunk_id: i for i, chunk in enumerate(chunks)}
    for query_row in (3, 200):
        query = vectors[query_row] * 0.8 + vectors[query_row + 1] * 0.2
        query /= np.linalg.norm(query)
        hits = packed.dense_search(query, k, flt)
        _same(hits, legacy.dense_search(query, k, flt))
        # Against brute force over the chunks SearchFilter.matches: same chunks, in order, with their cosine.
        allowed = [i for i, chunk in enumerate(chunks) if flt is None or flt.matches(chunk)]
        exact = sorted(allowed, key=lambda i: -float(vectors[i] @ query))[:k]
        assert [by_id[h.chunk.chunk_id] for h in hits] == exact
        for hit in hits:
            assert hit.chunk == chunks[by_id[hit.chunk.chunk_id]]  # the payload round-trips exactly
            assert isinstance(hit.chunk.tags, tuple)
            assert hit.vector is not None
            np.testing.assert_allclose(hit.vector, vectors[by_id[hit.chunk.chunk_id]], atol=1e-6)
            assert hit.score == pytest.approx(float(hit.vector @ query), abs=1e-5)


def test_dense_search_without_vectors_changes_nothing_else(stores) -> None:
    packed, legacy, _, vectors = stores
    for store in (packed, legacy):
        for flt in FILTERS:
            full = store.dense_search(vectors[7], 20, flt)
            bare = store.dense_search(vectors[7], 20, flt, with_vectors=False)
            assert all(hit.vector is None for hit in bare)
            assert [(h.chunk, h.score) for h in bare] == [(h.chunk, h.score) for h in full]


@pytest.mark.parametrize("with_vectors", [False, True])
@pytest.mark.parametrize("flt", FILTERS)
def test_keyword_search_from_chunk_json_equals_the_column_read(stores, flt, with_vectors) -> None:
    packed, legacy, chunks, _ = stores
    hits = packed.keyword_search("Title 17 café", 20, flt, with_vectors=with_vectors)
    assert hits, "the query's words are in the chunks"
    _same(hits, legacy.keyword_search("Title 17 café", 20, flt, with_vectors=with_vectors))
    assert all(flt is None or flt.matches(hit.chunk) for hit in hits)
    assert all(hit.chunk in chunks for hit in hits)


def test_searches_on_an_empty_table(tmp_path) -> None:
    store = _open(tmp_path, legacy=False)
    assert store.dense_search(np.ones(DIM, dtype=np.float32) / np.sqrt(DIM), 5) == []
    assert store.keyword_search("anything", 5, with_vectors=True) == []


class _SyncOnly:
    """A LanceDB table without the AsyncTable inside it: dense_search must fall back to the sync query API."""

    def __init__(self, table) -> None:
        self._inner = table

    def __getattr__(self, name: str):
        if name == "_table":
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.mark.parametrize("flt", FILTERS)
def test_sync_query_fallback_returns_the_same_hits(stores, flt) -> None:
    packed, legacy, _, vectors = stores
    for store in (packed, legacy):
        expected = store.dense_search(vectors[40], 10, flt)
        table = store._table
        store._table = _SyncOnly(table)
        try:
            _same(store.dense_search(vectors[40], 10, flt), expected)
        finally:
            store._table = table
