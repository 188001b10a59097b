"""QdrantStore against in-process Qdrant (":memory:"), with hand-made chunks and random unit vectors."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from adaptlab.config import StoreConfig
from adaptlab.errors import BackendError, ConfigError, StoreMismatchError
from adaptlab.rag.qdrant_store import QdrantStore
from adaptlab.rag.sparse import (
    DEFAULT_AVG_LEN,
    bm25_document_vector,
    bm25_query_vector,
    term_id,
    tokenize,
)
from adaptlab.rag.store import DocVersion, SearchFilter
from adaptlab.types import Chunk

DIM = 16
EMBEDDER = "test:random-16"
FILLER = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron"


def make_chunk(
    doc_id: str,
    index: int,
    *,
    doc_hash: str = "h1",
    count: int = 1,
    path: str | None = None,
    text: str | None = None,
    tags: tuple[str, ...] = (),
    page: int | None = None,
) -> Chunk:
    text = text if text is not None else f"{FILLER} {doc_id} part {index}"
    return Chunk(
        chunk_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}:{doc_hash}:{index}")),
        doc_id=doc_id,
        doc_hash=doc_hash,
        chunk_index=index,
        chunk_count=count,
        path=path or f"docs/{doc_id}.md",
        title=doc_id.title(),
        text=text,
        index_text=f"{doc_id.title()}\n{text}",
        char_start=index * 100,
        char_end=index * 100 + len(text),
        page=page,
        tags=tags,
    )


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def config(collection: str = "chunks") -> StoreConfig:
    return StoreConfig(backend="qdrant", qdrant_url=":memory:", collection=collection)


@pytest.fixture()
def client() -> QdrantClient:
    return QdrantClient(":memory:")


@pytest.fixture()
def store(client: QdrantClient) -> QdrantStore:
    store = QdrantStore(config(), client=client)
    store.open(EMBEDDER, DIM)
    return store


# ---- open / embedder checks -----------------------------------------------------------------


def test_open_twice_with_same_embedder(client: QdrantClient) -> None:
    QdrantStore(config(), client=client).open(EMBEDDER, DIM)
    again = QdrantStore(config(), client=client)
    again.open(EMBEDDER, DIM)
    info = again.info()
    assert (info.embedder, info.dimension, info.rows) == (EMBEDDER, DIM, 0)
    assert (info.backend, info.location, info.index) == ("qdrant", ":memory:", "hnsw")


def test_embedder_is_recorded_in_collection_metadata(store: QdrantStore, client: QdrantClient) -> None:
    metadata = client.get_collection("chunks").config.metadata
    assert metadata is not None
    assert metadata["embedder"] == EMBEDDER and metadata["dimension"] == DIM


def test_mismatched_dimension_is_refused(store: QdrantStore, client: QdrantClient) -> None:
    with pytest.raises(StoreMismatchError) as raised:
        QdrantStore(config(), client=client).open(EMBEDDER, DIM * 2)
    message = str(raised.value)
    assert f"'{EMBEDDER}' ({DIM}-d)" in message and f"({DIM * 2}-d)" in message
    assert "store.collection" in message


def test_mismatched_embedder_name_is_refused(store: QdrantStore, client: QdrantClient) -> None:
    with pytest.raises(StoreMismatchError, match="configured embedder is 'other:model'"):
        QdrantStore(config(), client=client).open("other:model", DIM)


def test_foreign_collection_is_refused(client: QdrantClient) -> None:
    client.create_collection("chunks", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    with pytest.raises(StoreMismatchError, match="not created by adaptlab"):
        QdrantStore(config(), client=client).open(EMBEDDER, DIM)


def test_collection_without_metadata_checks_dimension_only(client: QdrantClient) -> None:
    # What a Qdrant server older than 1.16 leaves: the named vectors but no collection metadata.
    client.create_collection(
        "chunks",
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    QdrantStore(config(), client=client).open(EMBEDDER, DIM)
    with pytest.raises(StoreMismatchError, match=f"holds {DIM}-d vectors"):
        QdrantStore(config(), client=client).open(EMBEDDER, DIM + 1)


def test_unreachable_server_raises_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []

    def quiet_client(**kwargs: object) -> QdrantClient:
        # The real client checks the server version in a background thread and warns when it
        # cannot; skip that so the warning does not land in another test.
        made.append(kwargs)
        return QdrantClient(**kwargs, check_compatibility=False)  # type: ignore[arg-type]

    monkeypatch.setattr("adaptlab.rag.qdrant_store.QdrantClient", quiet_client)
    monkeypatch.setenv("QDRANT_API_KEY", "secret")
    url = "https://127.0.0.1:1"  # nothing listens on port 1 (https: no insecure-API-key warning)
    store = QdrantStore(StoreConfig(backend="qdrant", qdrant_url=url))
    assert made == [{"url": url, "api_key": "secret"}]
    with pytest.raises(BackendError, match="127.0.0.1:1") as raised:
        store.open(EMBEDDER, DIM)
    assert "store.qdrant_url" in str(raised.value)


def test_empty_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="store.qdrant_url"):
        QdrantStore(StoreConfig(backend="qdrant"))


def test_memory_url_runs_in_process() -> None:
    store = QdrantStore(config())
    store.open(EMBEDDER, DIM)
    assert store.count() == 0


# ---- writes ---------------------------------------------------------------------------------


def test_add_twice_does_not_duplicate(store: QdrantStore) -> None:
    chunks = [make_chunk("a", i, count=3) for i in range(3)]
    vectors = unit_vectors(3)
    store.add_chunks(chunks, vectors)
    store.add_chunks(chunks, vectors)
    assert store.count() == 3


def test_add_checks_vector_shape(store: QdrantStore) -> None:
    with pytest.raises(ValueError, match="shape"):
        store.add_chunks([make_chunk("a", 0)], np.zeros((1, DIM + 1), dtype=np.float32))


def test_payload_round_trips_exactly(store: QdrantStore) -> None:
    chunks = [
        make_chunk("a", 0, count=2, tags=("x", "y"), page=3),
        make_chunk("a", 1, count=2, page=None),
    ]
    vectors = unit_vectors(2)
    store.add_chunks(chunks, vectors)
    for chunk, vector in zip(chunks, vectors):
        (hit,) = store.dense_search(vector, 1)
        assert hit.chunk == chunk
        assert isinstance(hit.chunk.tags, tuple)


def test_chunk_without_words_is_stored(store: QdrantStore) -> None:
    chunk = make_chunk("blank", 0, text="... --- ...")
    store.add_chunks([chunk], unit_vectors(1))
    assert store.count() == 1
    assert store.keyword_search("blank", 5)[0].chunk == chunk  # the title in index_text is a word


# ---- searches -------------------------------------------------------------------------------


def test_dense_search_finds_planted_chunk_with_its_vector(store: QdrantStore) -> None:
    chunks = [make_chunk(f"d{i}", 0) for i in range(50)]
    vectors = unit_vectors(50, seed=1)
    store.add_chunks(chunks, vectors)
    hits = store.dense_search(vectors[17], 5)
    assert len(hits) == 5
    assert hits[0].chunk == chunks[17]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    for hit in hits:
        assert hit.vector is not None and hit.vector.shape == (DIM,)
        stored = vectors[chunks.index(hit.chunk)]
        np.testing.assert_allclose(hit.vector, stored, atol=1e-5)
        assert hit.score == pytest.approx(float(stored @ vectors[17]), abs=1e-5)
    bare = store.dense_search(vectors[17], 5, with_vectors=False)  # what the Retriever asks for without MMR
    assert [h.chunk for h in bare] == [h.chunk for h in hits]
    assert [h.score for h in bare] == pytest.approx([h.score for h in hits], abs=1e-6)  # local mode's float noise
    assert all(hit.vector is None for hit in bare)


def test_keyword_search_finds_rare_word(store: QdrantStore) -> None:
    chunks = [make_chunk(f"k{i}", 0) for i in range(30)]
    chunks[12] = make_chunk("k12", 0, text=f"{FILLER} the zymurgy of brewing")
    store.add_chunks(chunks, unit_vectors(30))
    hits = store.keyword_search("What is zymurgy?", 3)
    assert hits[0].chunk == chunks[12]
    assert hits[0].score > 0
    assert hits[0].vector is None
    assert all(hit.chunk == chunks[12] or hit.score < hits[0].score for hit in hits)


def test_keyword_search_with_only_stop_words_returns_nothing(store: QdrantStore) -> None:
    store.add_chunks([make_chunk("a", 0)], unit_vectors(1))
    assert store.keyword_search("the of and", 5) == []


def test_tag_filter(store: QdrantStore) -> None:
    chunks = [make_chunk(f"t{i}", 0, tags=("red",) if i % 3 == 0 else ("blue", "green")) for i in range(30)]
    vectors = unit_vectors(30, seed=2)
    store.add_chunks(chunks, vectors)
    flt = SearchFilter(tags=("red",))
    dense = store.dense_search(vectors[1], 100, flt)  # vectors[1] is a blue chunk's
    keyword = store.keyword_search("alpha part", 100, flt)
    expected = {c.chunk_id for c in chunks if flt.matches(c)}
    assert {h.chunk.chunk_id for h in dense} == expected
    assert {h.chunk.chunk_id for h in keyword} == expected
    either = store.dense_search(vectors[1], 100, SearchFilter(tags=("red", "green")))
    assert len(either) == 30


def test_path_glob_filter(store: QdrantStore) -> None:
    chunks = [make_chunk(f"p{i}", 0, path=f"{'reports' if i < 5 else 'notes'}/p{i}.md") for i in range(20)]
    vectors = unit_vectors(20, seed=3)
    store.add_chunks(chunks, vectors)
    flt = SearchFilter(path_glob="reports/*.md")
    hits = store.dense_search(vectors[15], 3, flt)
    assert len(hits) == 3
    assert all(hit.chunk.path.startswith("reports/") for hit in hits)
    keyword = store.keyword_search("alpha", 10, flt)
    assert {h.chunk.chunk_id for h in keyword} == {c.chunk_id for c in chunks[:5]}


def test_path_glob_pages_past_the_oversample(store: QdrantStore) -> None:
    # 300 chunks, the one matching the glob is the farthest from the query: a single oversampled
    # fetch (max(10k, 100) = 100) would miss it, so the store has to page on.
    vectors = unit_vectors(300, seed=4)
    query = vectors[0]
    far = int(np.argmin(vectors @ query))
    chunks = [make_chunk(f"g{i}", 0, path="wanted/x.md" if i == far else f"other/{i}.md") for i in range(300)]
    store.add_chunks(chunks, vectors)
    hits = store.dense_search(query, 1, SearchFilter(path_glob="wanted/*"))
    assert [h.chunk for h in hits] == [chunks[far]]


def test_combined_tag_and_glob_filter_agrees_with_reference(store: QdrantStore) -> None:
    chunks = [
        make_chunk(f"c{i}", 0, path=f"{'a' if i % 2 else 'b'}/c{i}.md", tags=("t",) if i % 3 else ())
        for i in range(24)
    ]
    vectors = unit_vectors(24, seed=5)
    store.add_chunks(chunks, vectors)
    flt = SearchFilter(path_glob="a/*", tags=("t",))
    hits = store.dense_search(vectors[0], 50, flt)
    assert {h.chunk.chunk_id for h in hits} == {c.chunk_id for c in chunks if flt.matches(c)}


# ---- versions and deletes -------------------------------------------------------------------


def test_list_versions_groups_rows(store: QdrantStore) -> None:
    chunks = [make_chunk("a", i, count=3) for i in range(3)]
    chunks += [make_chunk("a", i, doc_hash="h2", count=2) for i in range(2)]
    chunks += [make_chunk("b", 0, count=4, path="docs/b.txt")]  # a partial write: 1 of 4 rows
    store.add_chunks(chunks, unit_vectors(len(chunks)))
    assert store.list_versions() == [
        DocVersion(doc_id="a", doc_hash="h1", path="docs/a.md", rows=3, chunk_count=3),
        DocVersion(doc_id="a", doc_hash="h2", path="docs/a.md", rows=2, chunk_count=2),
        DocVersion(doc_id="b", doc_hash="h1", path="docs/b.txt", rows=1, chunk_count=4),
    ]


def test_list_versions_pages_through_scroll(store: QdrantStore) -> None:
    chunks = [make_chunk(f"doc{i // 2}", i % 2, count=2) for i in range(2100)]
    store.add_chunks(chunks, unit_vectors(len(chunks)))
    versions = store.list_versions()
    assert len(versions) == 1050
    assert all(v.rows == 2 for v in versions)


def test_delete_versions_removes_exactly_one_version(store: QdrantStore) -> None:
    chunks = [make_chunk("a", i, count=3) for i in range(3)]
    chunks += [make_chunk("a", i, doc_hash="h2", count=2) for i in range(2)]
    chunks += [make_chunk("b", i, count=2) for i in range(2)]
    store.add_chunks(chunks, unit_vectors(len(chunks)))
    assert store.delete_versions([("a", "h1")]) == 3
    assert {(v.doc_id, v.doc_hash) for v in store.list_versions()} == {("a", "h2"), ("b", "h1")}
    assert store.count() == 4
    assert store.delete_versions([("a", "h1")]) == 0
    assert store.delete_versions([]) == 0


def test_delete_documents(store: QdrantStore) -> None:
    chunks = [make_chunk(doc, i, count=2) for doc in ("a", "b", "c") for i in range(2)]
    chunks.append(make_chunk("a", 0, doc_hash="h2"))
    store.add_chunks(chunks, unit_vectors(len(chunks)))
    assert store.delete_documents(["a", "c", "missing"]) == 5
    assert [v.doc_id for v in store.list_versions()] == ["b"]
    assert store.delete_documents([]) == 0
    store.finalize()
    assert store.count() == 2


# ---- BM25 sparse vectors --------------------------------------------------------------------


def test_tokenize_lowercases_and_drops_stop_words() -> None:
    assert tokenize("The Café of Zürich, and 42 résumés!") == ["café", "zürich", "42", "résumés"]


def test_term_ids_are_stable() -> None:
    assert 0 <= term_id("qdrant") < 2**32
    assert term_id("qdrant") == 960205894  # crc32, identical in every process


def test_document_vector_saturates_term_frequency() -> None:
    indices, values = bm25_document_vector("apple apple banana")
    assert indices == sorted(indices) and len(set(indices)) == 2
    weights = dict(zip(indices, values))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / DEFAULT_AVG_LEN)
    assert weights[term_id("apple")] == pytest.approx(2 * 2.2 / (2 + norm))
    assert weights[term_id("banana")] == pytest.approx(1 * 2.2 / (1 + norm))
    assert bm25_document_vector("the of and") == ([], [])


def test_longer_documents_weigh_a_term_less() -> None:
    short = dict(zip(*bm25_document_vector("apple pie")))[term_id("apple")]
    long = dict(zip(*bm25_document_vector("apple " + "word " * 500)))[term_id("apple")]
    assert long < short


def test_query_vector_has_unit_weights_per_distinct_term() -> None:
    indices, values = bm25_query_vector("Apple apple, the BANANA")
    assert sorted(indices) == indices == sorted({term_id("apple"), term_id("banana")})
    assert values == [1.0, 1.0]


def test_info_without_open_reads_the_collection(store: QdrantStore, client: QdrantClient) -> None:
    store.add_chunks([make_chunk("a", 0)], unit_vectors(1))
    info = QdrantStore(config(), client=client).info()
    assert (info.embedder, info.dimension, info.rows) == (EMBEDDER, DIM, 1)
    with pytest.raises(BackendError, match="does not exist"):
        QdrantStore(config("missing"), client=client).info()
