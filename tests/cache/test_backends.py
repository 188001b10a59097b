"""Both cache backends against one contract: the embedded SQLite file and a real Redis server."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from adaptlab.cache.entry import CacheEntry, CacheUnavailable, SourceRef
from adaptlab.cache.redis_backend import RedisCacheBackend
from adaptlab.cache.sqlite_backend import SqliteCacheBackend

NOW = time.time() + 3600  # Redis expires keys in real time: "now" an hour ahead keeps test entries alive


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path: Path):
    if request.param == "sqlite":
        store = SqliteCacheBackend(tmp_path / "cache.db")
    else:
        store = RedisCacheBackend(request.getfixturevalue("redis_url"), prefix=f"test:{uuid.uuid4().hex}:")
    yield store
    store.clear()
    store.close()


def entry(key: str, *, context: str = "ctx", sources=(), expires_at=None, vector=None) -> CacheEntry:
    return CacheEntry(key=key, context=context, question=f"question {key}", answer={"text": f"answer {key}"},
                      created_at=NOW, expires_at=expires_at, sources=tuple(sources), prompt_tokens=100,
                      completion_tokens=20, embedding=None if vector is None else np.asarray(vector, np.float32))


def test_put_get_round_trip_and_replace(backend) -> None:
    backend.put(entry("a", sources=[SourceRef("h1", "/docs/a.txt")], vector=[1, 0, 0]))
    got = backend.get("a", NOW)
    assert got.answer == {"text": "answer a"} and got.question == "question a" and got.context == "ctx"
    assert (got.prompt_tokens, got.completion_tokens) == (100, 20)
    assert np.allclose(got.embedding, [1, 0, 0])
    backend.put(entry("a"))  # replacing drops the old sources and vector
    assert backend.get("a", NOW).embedding is None
    assert backend.delete_for_sources(["h1"]) == [] and backend.get("a", NOW) is not None
    assert backend.get("missing", NOW) is None


def test_expired_entries_are_not_served(backend) -> None:
    backend.put(entry("old", expires_at=NOW + 10, vector=[1, 0]))
    assert backend.get("old", NOW + 5) is not None
    assert backend.get("old", NOW + 11) is None
    keys, _ = backend.vectors("ctx", NOW + 11)
    assert keys == []


def test_vectors_are_per_context(backend) -> None:
    backend.put(entry("a", context="model-1", vector=[1, 0]))
    backend.put(entry("b", context="model-1", vector=[0, 1]))
    backend.put(entry("c", context="model-2", vector=[1, 0]))
    backend.put(entry("d", context="model-1"))  # exact-only entry: no vector
    keys, matrix = backend.vectors("model-1", NOW)
    assert sorted(keys) == ["a", "b"] and matrix.shape == (2, 2)
    assert [e.key for e in backend.get_many(["a", "c", "zzz"], NOW)] in (["a", "c"], ["c", "a"])


def test_invalidation_by_source_hash_deletes_exactly_those_entries(backend) -> None:
    backend.put(entry("a", sources=[SourceRef("h1", "/docs/a.txt"), SourceRef("h2", "/docs/b.txt")]))
    backend.put(entry("b", sources=[SourceRef("h2", "/docs/b.txt")]))
    backend.put(entry("c", sources=[SourceRef("h3", "/docs/c.txt")]))
    backend.put(entry("d"))  # built from no document
    before = backend.version()
    assert sorted(backend.delete_for_sources(["h2"])) == ["a", "b"]
    assert backend.version() != before
    assert [k for k in "abcd" if backend.get(k, NOW)] == ["c", "d"]


def test_clear_by_path_covers_files_under_a_folder_and_jsonl_records(backend) -> None:
    backend.put(entry("a", sources=[SourceRef("h1", "/docs/a.txt")]))
    backend.put(entry("b", sources=[SourceRef("h2", "/docs/sub/b.txt")]))
    backend.put(entry("c", sources=[SourceRef("h3", "/docs2/c.txt")]))
    backend.put(entry("d", sources=[SourceRef("h4", "/faq.jsonl#7")]))
    assert backend.delete_for_path("/docs/a.txt") == ["a"]
    assert backend.delete_for_path("/docs") == ["b"]  # not /docs2
    assert backend.delete_for_path("/faq.jsonl") == ["d"]
    assert backend.get("c", NOW) is not None
    assert backend.clear() == ["c"]
    assert backend.stats(NOW).entries == 0


def test_stats_count_entries_and_contexts(backend) -> None:
    backend.put(entry("a", context="x", sources=[SourceRef("h", "/p")]))
    backend.put(entry("b", context="y"))
    stats = backend.stats(NOW)
    assert (stats.entries, stats.contexts, stats.with_sources) == (2, 2, 1)


def test_unreachable_redis_raises_cache_unavailable() -> None:
    backend = RedisCacheBackend("redis://127.0.0.1:1/0", timeout_s=0.5)  # nothing listens on port 1
    with pytest.raises(CacheUnavailable, match="unreachable"):
        backend.get("a", NOW)
