"""Incremental indexing against the real stores (LanceDB on disk, Qdrant in process): add, update, delete,
scoping, bad files, and repair after crashes. The hash embedder keeps these fast; retrieval quality is
tested with the real model in test_covid_retrieval.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import make_project

from adaptlab.config import StoreConfig
from adaptlab.rag.chunk import Chunker
from adaptlab.rag.index import ingest, load_documents
from adaptlab.rag.lance_store import LanceStore
from adaptlab.rag.qdrant_store import QdrantStore
from adaptlab.rag.store import SearchFilter
from adaptlab.testing.fakes import HashEmbedder

PARAGRAPH = (
    "Coronaviruses are enveloped RNA viruses. They infect birds and mammals. Some cause mild colds in people. "
    "Others, such as SARS-CoV and MERS-CoV, cause severe respiratory disease. "
)


@pytest.fixture(params=["lancedb", "qdrant"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


def _project(tmp_path: Path, backend: str, embedder, **sections):
    store_cfg = StoreConfig(backend=backend, qdrant_url=":memory:" if backend == "qdrant" else "")
    store = QdrantStore(store_cfg) if backend == "qdrant" else LanceStore(store_cfg, tmp_path / "home" / "lancedb")
    store.open(embedder.name, embedder.dimension)
    project = make_project(tmp_path / "home", embedder=embedder, store=store, chunk={"size_tokens": 64,
                                                                                     "overlap_tokens": 8},
                           **sections)
    return project


def _ingest(project, *paths, tags=()):
    return ingest([str(p) for p in paths], project.config, store=project.store, embedder=project.embedder,
                  tags=tags)


def _write_corpus(folder: Path, count: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(count):
        path = folder / f"doc{index}.md"
        path.write_text(f"# Document {index}\n\n" + PARAGRAPH * (index + 2) + f"\n\nUnique marker word{index}.\n")
        files.append(path)
    return files


def _assert_exact(project, expected_paths: set[str]) -> None:
    """The store holds exactly one complete version of each expected document, nothing else."""
    versions = project.store.list_versions()
    assert {v.path for v in versions} == expected_paths
    assert len({v.doc_id for v in versions}) == len(versions), "a document has two versions stored"
    for version in versions:
        assert version.rows == version.chunk_count, f"partial or duplicated version of {version.path}"
    assert project.store.count() == sum(v.chunk_count for v in versions)


def test_first_ingest_then_unchanged(tmp_path, backend, embedder):
    project = _project(tmp_path, backend, embedder)
    files = _write_corpus(tmp_path / "docs")
    report = _ingest(project, tmp_path / "docs")
    assert len(report.added) == 5 and not report.updated and not report.removed and not report.problems
    assert report.chunks_written == report.total_chunks == project.store.count() > 5
    _assert_exact(project, {str(f.resolve()) for f in files})

    again = _ingest(project, tmp_path / "docs")
    assert len(again.unchanged) == 5 and not again.added and not again.updated
    assert again.chunks_written == 0 and again.chunks_deleted == 0
    assert again.total_chunks == report.total_chunks


def test_change_and_delete_propagate(tmp_path, backend, embedder):
    project = _project(tmp_path, backend, embedder)
    files = _write_corpus(tmp_path / "docs")
    _ingest(project, tmp_path / "docs")
    old_hash = {v.path: v.doc_hash for v in project.store.list_versions()}

    files[1].write_text("# Document 1\n\nRewritten: bats are a reservoir of coronaviruses.\n")
    files[3].unlink()
    report = _ingest(project, tmp_path / "docs")
    assert report.updated == [str(files[1].resolve())]
    assert report.removed == [str(files[3].resolve())]
    assert len(report.unchanged) == 3 and not report.added
    expected = {str(f.resolve()) for i, f in enumerate(files) if i != 3}
    _assert_exact(project, expected)
    new_hash = {v.path: v.doc_hash for v in project.store.list_versions()}
    assert new_hash[str(files[1].resolve())] != old_hash[str(files[1].resolve())]
    # The old text of doc1 and everything of doc3 is gone from both searches.
    hits = project.store.keyword_search("word3", 10)
    assert all("word3" not in h.chunk.text for h in hits)
    hits = project.store.keyword_search("reservoir", 10)
    assert hits and hits[0].chunk.path == str(files[1].resolve())


def test_deletions_are_scoped_to_the_given_paths(tmp_path, backend, embedder):
    project = _project(tmp_path, backend, embedder)
    a = _write_corpus(tmp_path / "a", 2)
    b = _write_corpus(tmp_path / "b", 3)
    _ingest(project, tmp_path / "a")
    report = _ingest(project, tmp_path / "b")
    assert not report.removed, "ingesting folder b must not remove folder a's documents"
    _assert_exact(project, {str(f.resolve()) for f in a + b})
    # A single file given explicitly is its own scope too.
    b[0].unlink()
    report = _ingest(project, tmp_path / "b")
    assert report.removed == [str(b[0].resolve())]


def test_file_that_turns_bad_keeps_its_indexed_chunks(tmp_path, backend, embedder):
    project = _project(tmp_path, backend, embedder)
    files = _write_corpus(tmp_path / "docs", 3)
    _ingest(project, tmp_path / "docs")
    files[0].write_bytes(b"\xff\xfe\x00binary\x00garbage")
    report = _ingest(project, tmp_path / "docs")
    assert [p.path for p in report.problems] == [str(files[0].resolve())]
    assert not report.removed
    _assert_exact(project, {str(f.resolve()) for f in files})


def test_jsonl_records_are_documents(tmp_path, backend, embedder):
    project = _project(tmp_path, backend, embedder, ingest={"json_text_field": "body"})
    path = tmp_path / "faq.jsonl"
    records = [{"id": f"q{i}", "title": f"FAQ {i}", "body": f"Answer number {i}. " + PARAGRAPH, "tags": ["faq"]}
               for i in range(4)]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    report = _ingest(project, path)
    assert len(report.added) == 4
    path.write_text("\n".join(json.dumps(r) for r in records[:3]) + "\n")
    report = _ingest(project, path)
    assert report.removed == [f"{path.resolve()}#q3"] and len(report.unchanged) == 3
    hits = project.store.keyword_search("number", 10, SearchFilter(tags=("faq",)))
    assert hits and all(h.chunk.tags == ("faq",) for h in hits)


def test_tags_and_path_filters(tmp_path, backend, embedder):
    project = _project(tmp_path, backend, embedder)
    _write_corpus(tmp_path / "public", 2)
    _write_corpus(tmp_path / "internal", 2)
    _ingest(project, tmp_path / "public", tags=("public",))
    _ingest(project, tmp_path / "internal", tags=("internal",))
    vector = embedder.embed(["coronaviruses"])[0]
    hits = project.store.dense_search(vector, 20, SearchFilter(tags=("internal",)))
    assert hits and all("internal" in h.chunk.path and h.chunk.tags == ("internal",) for h in hits)
    hits = project.store.keyword_search("coronaviruses", 20, SearchFilter(path_glob="*/public/*"))
    assert hits and all("/public/" in h.chunk.path for h in hits)
    hits = project.store.dense_search(vector, 20, SearchFilter(path_glob="*/doc[1]*"))
    assert hits and all(h.chunk.path.endswith("doc1.md") for h in hits)


def test_keyword_hits_bring_their_stored_vectors_only_when_asked(tmp_path, backend, embedder):
    """Keyword-only retrieval scores relevance from these vectors instead of re-embedding every hit."""
    project = _project(tmp_path, backend, embedder)
    _write_corpus(tmp_path / "docs", 3)
    _ingest(project, tmp_path / "docs")
    assert all(h.vector is None for h in project.store.keyword_search("coronaviruses", 5))
    hits = project.store.keyword_search("coronaviruses", 5, with_vectors=True)
    assert hits
    for hit in hits:
        assert hit.vector is not None
        np.testing.assert_allclose(hit.vector, embedder.embed([hit.chunk.index_text])[0], atol=1e-5)


def test_repairs_stale_and_partial_versions_left_by_a_crash(tmp_path, backend, embedder):
    """States a kill -9 can leave: the new version written but the old not yet deleted, and (for backends
    whose batches are not atomic) part of a version written."""
    project = _project(tmp_path, backend, embedder)
    files = _write_corpus(tmp_path / "docs", 3)
    _ingest(project, tmp_path / "docs")
    chunker = Chunker(project.config.chunk, embedder)
    # Crash state 1: doc0 changed on disk, new version fully written, old one still there.
    files[0].write_text("# Document 0\n\nA new version about pangolins. " + PARAGRAPH)
    (doc0,), _, _ = load_documents([files[0]], project.config)
    new_chunks = chunker.chunk(doc0)
    project.store.add_chunks(new_chunks, embedder.embed([c.index_text for c in new_chunks]))
    # Crash state 2: doc1 changed on disk, only the first chunk of its new version written.
    files[1].write_text("# Document 1\n\n" + "Fresh text about ferrets and transmission. " * 40)
    (doc1,), _, _ = load_documents([files[1]], project.config)
    partial = chunker.chunk(doc1)
    assert len(partial) > 1
    project.store.add_chunks(partial[:1], embedder.embed([partial[0].index_text]))

    report = _ingest(project, tmp_path / "docs")
    assert sorted(report.updated) == sorted([str(files[0].resolve()), str(files[1].resolve())])
    _assert_exact(project, {str(f.resolve()) for f in files})
    chunk_ids = [c for c in _all_chunk_ids(project)]
    assert len(chunk_ids) == len(set(chunk_ids)), "duplicate chunks after repair"


def _all_chunk_ids(project) -> list[str]:
    store = project.store
    if isinstance(store, LanceStore):
        return store.table.search().select(["chunk_id"]).limit(None).to_arrow().column("chunk_id").to_pylist()
    points, ids, offset = [], [], None
    while True:
        points, offset = store._client.scroll(store._collection, limit=256, offset=offset,
                                              with_payload=["chunk_id"])
        ids.extend(p.payload["chunk_id"] for p in points)
        if offset is None:
            return ids


def test_embedder_mismatch_is_refused(tmp_path, embedder):
    from adaptlab.errors import StoreMismatchError

    project = _project(tmp_path, "lancedb", embedder)
    _write_corpus(tmp_path / "docs", 1)
    _ingest(project, tmp_path / "docs")
    other = LanceStore(project.config.store, tmp_path / "home" / "lancedb")
    with pytest.raises(StoreMismatchError, match="hash-64.*64-d.*other-model.*384-d"):
        other.open("other-model", 384)


def test_every_chunk_is_an_exact_slice_with_location(tmp_path, embedder):
    project = _project(tmp_path, "lancedb", embedder)
    files = _write_corpus(tmp_path / "docs", 2)
    _ingest(project, tmp_path / "docs")
    texts = {str(f.resolve()): f.read_text().rstrip() for f in files}
    hits = project.store.dense_search(np.ones(embedder.dimension, dtype=np.float32) / 8, 50)
    assert hits
    counts = Counter(h.chunk.doc_id for h in hits)
    for hit in hits:
        chunk = hit.chunk
        assert texts[chunk.path][chunk.char_start:chunk.char_end] == chunk.text
        assert chunk.title.startswith("Document")
        assert chunk.chunk_count >= counts[chunk.doc_id]
