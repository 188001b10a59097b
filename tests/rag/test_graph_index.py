"""The in-process graph index beside a LanceDB table (rag/graph_index.py): it answers unfiltered dense searches
like exact search, follows every add and delete at finalize() without a rebuild, is never used for a table
version it does not match (a write not yet finalized, another process writing), and recovers from a lost or
half-written sidecar. Real LanceDB and real usearch throughout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adaptlab.config import StoreConfig
from adaptlab.rag.graph_index import GraphIndex, GraphSettings, TableRows
from adaptlab.rag.lance_store import LanceStore
from adaptlab.rag.store import SearchFilter
from adaptlab.types import Chunk

DIM = 32
EMBEDDER = "test:random-32"
GRAPH = "in-process HNSW graph"


def _chunks(start: int, stop: int, seed: int = 5) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(seed + start)
    vectors = rng.standard_normal((stop - start, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(chunk_id=f"c{i}", doc_id=f"d{i // 4}", doc_hash="h", chunk_index=i % 4, chunk_count=4,
                    path=f"/docs/{i // 4}.txt", title=f"Doc {i // 4}", text=f"text {i} — café", index_text=f"text {i}",
                    char_start=0, char_end=6, page=i % 3 or None, tags=("hot",) if i % 10 == 0 else ())
              for i in range(start, stop)]
    return chunks, vectors


def _store(directory: Path, **settings) -> LanceStore:
    store = LanceStore(StoreConfig(exact_below=100, **{"read_consistency_s": 0, **settings}), directory)
    store.open(EMBEDDER, DIM)
    return store


def _exact_ids(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    return [ids[i] for i in np.argsort(-(vectors @ query))[:k]]


def test_unfiltered_search_matches_exact_search_with_whole_chunks(tmp_path):
    chunks, vectors = _chunks(0, 400)
    store = _store(tmp_path)
    store.add_chunks(chunks, vectors)
    store.finalize()
    assert store.info().index.startswith(GRAPH)
    ids = [c.chunk_id for c in chunks]
    by_id = {c.chunk_id: c for c in chunks}
    for row in range(0, 400, 37):
        query = vectors[row] + 0.05 * vectors[(row + 1) % 400]
        query /= np.linalg.norm(query)
        hits = store.dense_search(query, 10)
        assert [h.chunk.chunk_id for h in hits] == _exact_ids(vectors, ids, query, 10)
        for hit in hits:
            assert hit.chunk == by_id[hit.chunk.chunk_id]  # the whole Chunk, exactly as written
            assert hit.vector is not None and np.allclose(hit.vector, vectors[int(hit.chunk.chunk_id[1:])], atol=2e-3)
            assert hit.score == pytest.approx(float(vectors[int(hit.chunk.chunk_id[1:])] @ query), abs=2e-3)
        assert all(h.vector is None for h in store.dense_search(query, 5, with_vectors=False))
    # A filter is answered by LanceDB, and agrees with SearchFilter.matches.
    flt = SearchFilter(tags=("hot",))
    filtered = store.dense_search(vectors[0], 5, flt)
    assert filtered and all(flt.matches(h.chunk) for h in filtered)


def test_adds_and_deletes_reach_the_graph_at_finalize_without_a_rebuild(tmp_path, caplog):
    store = _store(tmp_path)
    chunks, vectors = _chunks(0, 300)
    store.add_chunks(chunks, vectors)
    store.finalize()
    new_chunks, new_vectors = _chunks(300, 360)
    store.add_chunks(new_chunks, new_vectors)
    # Before finalize the graph does not match the table: the search falls back to LanceDB and sees the new rows.
    assert store.dense_search(new_vectors[3], 1)[0].chunk.chunk_id == "c303"
    assert not store.info().index.startswith(GRAPH)
    deleted = store.delete_documents(["d0", "d1"])  # c0..c7
    assert deleted == 8
    with caplog.at_level("INFO", logger="adaptlab.rag.graph_index"):
        store.finalize()
    assert "added=60, removed=8, rebuilt=False" in caplog.text
    assert store.info().index.startswith(GRAPH)
    assert store.dense_search(new_vectors[3], 1)[0].chunk.chunk_id == "c303"
    for row in range(8):
        assert all(h.chunk.doc_id not in ("d0", "d1") for h in store.dense_search(vectors[row], 10))
    # A reopened store (a new process) uses the saved graph at once.
    reopened = _store(tmp_path)
    assert reopened.info().index.startswith(GRAPH)
    assert reopened.dense_search(new_vectors[10], 1)[0].chunk.chunk_id == "c310"


def test_a_reader_follows_another_writers_finalize(tmp_path):
    writer = _store(tmp_path)
    chunks, vectors = _chunks(0, 200)
    writer.add_chunks(chunks, vectors)
    writer.finalize()
    reader = _store(tmp_path)  # read_consistency_s = 0: sees each new version at once
    assert reader.info().index.startswith(GRAPH)
    more, more_vectors = _chunks(200, 260)
    writer.add_chunks(more, more_vectors)
    # The writer has not finalized: the reader's graph is behind the table, so LanceDB answers (and finds c250).
    assert reader.dense_search(more_vectors[50], 1)[0].chunk.chunk_id == "c250"
    assert not reader.info().index.startswith(GRAPH)
    writer.finalize()
    assert reader.dense_search(more_vectors[50], 1)[0].chunk.chunk_id == "c250"
    assert reader.info().index.startswith(GRAPH)  # reloaded the writer's graph


@pytest.mark.parametrize("damage", ["payload lost", "state half-written", "graph file lost"])
def test_a_damaged_sidecar_is_rebuilt_at_the_next_finalize(tmp_path, damage, caplog):
    store = _store(tmp_path)
    chunks, vectors = _chunks(0, 200)
    store.add_chunks(chunks, vectors)
    store.finalize()
    sidecar = tmp_path / "chunks.graph"
    state = json.loads((sidecar / "state.json").read_text())
    if damage == "payload lost":
        (sidecar / "payload.sqlite").unlink()
        for extra in sidecar.glob("payload.sqlite-*"):
            extra.unlink()
    elif damage == "state half-written":
        (sidecar / "state.json").write_text('{"format": 1, "table_ver')
    else:
        (sidecar / state["graph_file"]).unlink()
    fresh = _store(tmp_path)
    with caplog.at_level("INFO", logger="adaptlab.rag.graph_index"):
        fresh.finalize()
    assert "rebuilt=True" in caplog.text
    hits = fresh.dense_search(vectors[42], 3)
    assert hits[0].chunk == chunks[42]
    assert fresh.info().index.startswith(GRAPH)


def test_no_graph_below_exact_below_or_when_off(tmp_path):
    small = _store(tmp_path / "small")
    chunks, vectors = _chunks(0, 150)
    small.add_chunks(chunks, vectors)
    small.finalize()
    assert small.info().index.startswith(GRAPH)
    small.delete_documents([f"d{i}" for i in range(20)])  # 150 → 70 rows, under exact_below = 100
    small.finalize()
    assert not small.info().index.startswith(GRAPH)
    assert not list((tmp_path / "small" / "chunks.graph").glob("graph-*"))
    assert small.dense_search(vectors[120], 1)[0].chunk.chunk_id == "c120"

    off = _store(tmp_path / "off", graph="off")
    off.add_chunks(chunks, vectors)
    off.finalize()
    assert not off.info().index.startswith(GRAPH)
    assert not (tmp_path / "off" / "chunks.graph").exists()


def test_an_empty_table_and_duplicate_chunk_ids(tmp_path):
    """sync's own edge cases, with a table reader standing in for LanceDB (the logic under test is the diff)."""
    chunks, vectors = _chunks(0, 6)
    texts = {c.chunk_id: json.dumps({"id": c.chunk_id}) for c in chunks}
    index = {c.chunk_id: v for c, v in zip(chunks, vectors, strict=True)}

    def reader(listing: list[str]) -> TableRows:
        def read(row_ids):
            ids = [listing[r] for r in row_ids]
            return ids, np.stack([index[i] for i in ids]), [texts[i] for i in ids]
        return TableRows(chunk_ids=listing, row_ids=np.arange(len(listing)), read=read)

    graph = GraphIndex(tmp_path / "g", GraphSettings(dimension=DIM, embedder=EMBEDDER, connectivity=16,
                                                    expansion_search=64, threads=1))
    empty = graph.sync(reader([]), table_version=1)
    assert (empty.rows, empty.added) == (0, 0)
    assert graph.search(vectors[0], 3, 1, with_vectors=False, decode=lambda t: t) == []
    twice = graph.sync(reader(["c0", "c1", "c1", "c2"]), table_version=2)  # c1 listed twice: indexed once
    assert (twice.rows, twice.added) == (3, 3)
    hits = graph.search(vectors[1], 1, 2, with_vectors=True, decode=lambda t: t)
    assert hits is not None and hits[0].chunk == texts["c1"] and hits[0].vector is not None
    assert graph.search(vectors[1], 1, 3, with_vectors=False, decode=lambda t: t) is None  # another version


def test_an_unreadable_payload_falls_back_to_lancedb(tmp_path, caplog):
    """A reader that cannot open the graph's payload table (here: a folder where the file should be; in life, an
    index folder it may not write) answers from LanceDB, with one warning, instead of failing."""
    store = _store(tmp_path)
    chunks, vectors = _chunks(0, 200)
    store.add_chunks(chunks, vectors)
    store.finalize()
    sidecar = tmp_path / "chunks.graph"
    for path in sidecar.glob("payload.sqlite*"):
        path.unlink()
    (sidecar / "payload.sqlite").mkdir()
    reader = _store(tmp_path)
    with caplog.at_level("WARNING", logger="adaptlab.rag.graph_index"):
        first = reader.dense_search(vectors[7], 1)
        second = reader.dense_search(vectors[9], 1)
    assert first[0].chunk == chunks[7] and second[0].chunk == chunks[9]
    assert caplog.text.count("searches use LanceDB's index") == 1
