"""An in-process HNSW graph (usearch) beside a LanceDB table: unfiltered dense search without LanceDB's query cost.

Why: at 200k rows every LanceDB vector query, even one projecting only chunk ids, cost 5.7-7.8 ms p95 on 2 cores
(query planning and its event-loop round trip, not the index), over the 5 ms goal. usearch's graph answers the
same top-10 in ~1 ms at recall@10 1.0, and the hits' chunks come from a SQLite table keyed by the same ids in
~0.07 ms (LanceDB's take_row_ids took ~2 ms). Measured in benchmarks/bench_retrieval.py.

The sidecar is a folder beside the table, `<collection>.graph/`:
  * `graph-<table version>.usearch`: vectors in float16 (half the memory; cosine scores within ~1e-3) and the
    graph, memory-mapped by readers;
  * `payload.sqlite`: key → the Chunk's JSON;
  * `state.json`, written last: which graph file is current and the table version it matches.
Keys are the first 8 bytes of BLAKE2b(chunk_id), so a chunk keeps its key across table versions and compaction,
and `sync` only adds and removes what changed. The table stays the source of truth: a reader uses the graph only
while the table's version equals the one in state.json, and falls back to LanceDB's own search otherwise (another
process is writing; the graph is brought in step by that writer's finalize()).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptlab.rag.store import StoreHit
from adaptlab.types import Chunk

log = logging.getLogger(__name__)

_STATE = "state.json"
_PAYLOAD = "payload.sqlite"
_FORMAT = 1  # bump when the sidecar's layout changes: an older one is rebuilt, never misread
_READ_BATCH = 10_000  # rows read from the table per take while adding to the graph
# usearch leaves removed nodes in the graph as tombstones; past this share the graph is rebuilt from the table.
_REBUILD_WHEN_REMOVED = 0.25


def chunk_key(chunk_id: str) -> int:
    """A chunk id's 64-bit graph key (collisions: ~1e-9 at 200k chunks, and a collision only drops one hit)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class GraphSettings:
    dimension: int
    embedder: str
    connectivity: int  # graph edges per node (usearch's M)
    expansion_search: int  # candidates explored per query: recall vs latency
    threads: int  # threads for building the graph


@dataclass(frozen=True)
class GraphState:
    """state.json: the graph file that matches `table_version` of the table."""

    format: int
    table_version: int
    graph_file: str
    rows: int
    dimension: int
    embedder: str
    connectivity: int
    removed_since_build: int  # tombstones in the graph (rebuild past _REBUILD_WHEN_REMOVED)

    @classmethod
    def read(cls, path: Path) -> GraphState | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data) if data.get("format") == _FORMAT else None
        except (OSError, ValueError, TypeError):  # absent, half-written by a killed run, or another layout
            return None

    def write(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(temporary, path)  # atomic: readers see the old state or the new one


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    rebuilt: bool
    rows: int
    seconds: float


@dataclass(frozen=True)
class TableRows:
    """What sync needs from the table: every chunk id with a handle to read its vector and payload."""

    chunk_ids: list[str]
    row_ids: np.ndarray  # LanceDB _rowid of each chunk id, valid for the version read
    # row ids → (their chunk ids, vectors, chunk JSON), in any order (LanceDB returns them sorted by row id)
    read: Callable[[Sequence[int]], tuple[list[str], np.ndarray, list[str]]]


class GraphIndex:
    """The sidecar of one table. Thread-safe: serve searches from several threads."""

    def __init__(self, folder: Path, settings: GraphSettings) -> None:
        self._folder = folder
        self._settings = settings
        self._lock = threading.Lock()
        # (table version, usearch Index) of the graph serving searches: one attribute, so a reader never pairs
        # one graph with another's version while sync or a reload replaces it.
        self._loaded: tuple[int, Any] | None = None
        self._state_read: tuple[int, GraphState | None] | None = None  # (state.json's mtime, its content)
        self._payload: sqlite3.Connection | None = None
        self._unreadable = False  # the payload table could not be opened: LanceDB answers every search

    # -- reads ---------------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, table_version: int, *,
               with_vectors: bool, decode: Callable[[str], Chunk]) -> list[StoreHit] | None:
        """Top-k by cosine similarity, or None when no graph matches `table_version` (the caller falls back)."""
        index = self._current(table_version)
        if index is None or self._unreadable:
            return None
        matches = index.search(np.asarray(vector, dtype=np.float32), k, threads=1)
        keys = [int(key) for key in matches.keys]
        try:
            payload = self._lookup(keys)
        except sqlite3.Error as exc:  # e.g. an index folder this reader may not write (WAL needs it): LanceDB answers
            self._unreadable = True  # for the rest of this process: no graph search whose hits cannot be read
            log.warning("graph index payload in %s unreadable (%s): searches use LanceDB's index", self._folder, exc)
            return None
        found = [(key, 1.0 - float(distance)) for key, distance in zip(keys, matches.distances, strict=True)
                 if key in payload]  # a key removed by a concurrent writer since the version check
        if not found:
            return []
        vectors: Sequence[np.ndarray | None] = (
            index.get(np.array([key for key, _ in found], dtype=np.uint64), dtype=np.float32) if with_vectors
            else [None] * len(found)
        )
        if with_vectors and len(found) == 1:  # usearch returns a bare array, not a tuple, for one key
            vectors = [vectors] if isinstance(vectors, np.ndarray) else vectors
        return [StoreHit(decode(payload[key]), score, vector)
                for (key, score), vector in zip(found, vectors, strict=True)]

    def serves(self, table_version: int) -> bool:
        return self._current(table_version) is not None

    def _current(self, table_version: int) -> Any:
        loaded = self._loaded
        if loaded is not None and loaded[0] == table_version:
            return loaded[1]
        with self._lock:
            self._reload_if_newer(table_version)
            loaded = self._loaded
            return loaded[1] if loaded is not None and loaded[0] == table_version else None

    def _reload_if_newer(self, table_version: int) -> None:
        """Load the saved graph if state.json says it matches `table_version` (a writer's finalize made it)."""
        state_path = self._folder / _STATE
        try:
            mtime = state_path.stat().st_mtime_ns
        except OSError:
            return
        if self._state_read is None or self._state_read[0] != mtime:  # parse state.json once per change
            self._state_read = (mtime, GraphState.read(state_path))
        state = self._state_read[1]
        if state is None or state.table_version != table_version or not self._matches(state):
            return
        from usearch.index import Index

        try:  # memory-mapped: opens at once
            index = Index.restore(str(self._folder / state.graph_file), view=True,
                                  expansion_search=self._settings.expansion_search)
        except (OSError, RuntimeError, ValueError):  # replaced by a writer's newer sync meanwhile: LanceDB answers
            return
        if index is None:
            return
        self._loaded = (state.table_version, index)

    def _matches(self, state: GraphState) -> bool:
        s = self._settings
        return (state.dimension, state.embedder, state.connectivity) == (s.dimension, s.embedder, s.connectivity)

    def _lookup(self, keys: list[int]) -> dict[int, str]:
        if not keys:
            return {}
        signed = [_signed(key) for key in keys]
        with self._lock:
            rows = self._connection().execute(
                f"SELECT key, chunk_json FROM payload WHERE key IN ({','.join('?' * len(signed))})", signed
            ).fetchall()
        return {_unsigned(key): text for key, text in rows}

    def _connection(self) -> sqlite3.Connection:
        if self._payload is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._folder / _PAYLOAD, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")  # readers in other processes while a writer syncs
            connection.execute("CREATE TABLE IF NOT EXISTS payload (key INTEGER PRIMARY KEY, chunk_json TEXT NOT NULL)")
            self._payload = connection
        return self._payload

    # -- writes --------------------------------------------------------------------------------------
    def sync(self, rows: TableRows, table_version: int) -> SyncReport:
        """Bring the graph and the payload in step with the table (after its writes, compaction and indexes)."""
        from usearch.index import Index

        started = time.perf_counter()
        settings = self._settings
        with self._lock:
            keys_now = np.fromiter((chunk_key(c) for c in rows.chunk_ids), dtype=np.uint64, count=len(rows.chunk_ids))
            keys_now, first = np.unique(keys_now, return_index=True)  # a duplicated chunk id is indexed once
            row_ids = rows.row_ids[first]
            index, tombstones = self._restore_for_update()
            graph_keys = np.asarray(index.keys, dtype=np.uint64) if index is not None else np.empty(0, np.uint64)
            to_remove = np.setdiff1d(graph_keys, keys_now, assume_unique=True)
            if index is not None and tombstones + len(to_remove) <= _REBUILD_WHEN_REMOVED * max(1, len(keys_now)):
                if len(to_remove):
                    index.remove(to_remove)
                    self._delete_payload(to_remove)
                if self._payload_rows() != len(index):  # payload.sqlite lost, or left by a killed sync: rewrite
                    index = None
            rebuilt = index is None
            if index is None:
                index = Index(ndim=settings.dimension, metric="cos", dtype="f16", connectivity=settings.connectivity,
                              expansion_search=settings.expansion_search)
                self._connection().execute("DELETE FROM payload")
                add_mask = np.ones(len(keys_now), dtype=bool)
                tombstones = 0
            else:
                add_mask = ~np.isin(keys_now, graph_keys, assume_unique=True)
                tombstones += len(to_remove)
            for batch_rows in _batches(np.sort(row_ids[add_mask])):
                chunk_ids, vectors, texts = rows.read(batch_rows.tolist())
                batch_keys = np.array([chunk_key(chunk_id) for chunk_id in chunk_ids], dtype=np.uint64)
                index.add(batch_keys, vectors, threads=settings.threads)
                self._insert_payload(batch_keys, texts)
            graph_file = f"graph-{table_version}.usearch"
            temporary = self._folder / (graph_file + ".tmp")
            index.save(str(temporary))
            os.replace(temporary, self._folder / graph_file)
            GraphState(
                format=_FORMAT, table_version=table_version, graph_file=graph_file, rows=len(keys_now),
                dimension=settings.dimension, embedder=settings.embedder, connectivity=settings.connectivity,
                removed_since_build=tombstones,
            ).write(self._folder / _STATE)
            self._remove_old_graph_files(keep=graph_file)
            self._loaded = (table_version, index)
        report = SyncReport(added=int(add_mask.sum()), removed=len(to_remove), rebuilt=rebuilt, rows=len(keys_now),
                            seconds=time.perf_counter() - started)
        log.info("graph index: %s", report)
        return report

    def _restore_for_update(self) -> tuple[Any, int]:
        """The saved graph loaded in memory (sync changes it) with its tombstone count, or (None, 0)."""
        from usearch.index import Index

        state = GraphState.read(self._folder / _STATE)
        if state is None or not self._matches(state) or not (self._folder / state.graph_file).exists():
            return None, 0
        index = Index.restore(str(self._folder / state.graph_file), view=False,
                              expansion_search=self._settings.expansion_search)
        return index, state.removed_since_build

    def drop(self) -> None:
        """Forget the graph (the table fell under the size that gets one): readers fall back to LanceDB."""
        with self._lock:
            (self._folder / _STATE).unlink(missing_ok=True)
            self._remove_old_graph_files(keep=None)
            self._loaded = None

    def _payload_rows(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM payload").fetchone()[0])

    def _insert_payload(self, keys: np.ndarray, texts: list[str]) -> None:
        payload = self._connection()
        payload.execute("BEGIN")
        payload.executemany("INSERT OR REPLACE INTO payload (key, chunk_json) VALUES (?, ?)",
                            zip((_signed(int(key)) for key in keys), texts, strict=True))
        payload.execute("COMMIT")

    def _delete_payload(self, keys: np.ndarray) -> None:
        payload = self._connection()
        payload.execute("BEGIN")
        payload.executemany("DELETE FROM payload WHERE key = ?", ((_signed(int(key)),) for key in keys))
        payload.execute("COMMIT")

    def _remove_old_graph_files(self, keep: str | None) -> None:
        # A reader that memory-mapped an old file keeps reading it: unlinking does not unmap (POSIX).
        for path in self._folder.glob("graph-*.usearch*"):
            if path.name != keep:
                path.unlink(missing_ok=True)


def _batches(row_ids: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(row_ids), _READ_BATCH):
        yield row_ids[start : start + _READ_BATCH]


def _signed(key: int) -> int:
    """SQLite integers are signed 64-bit."""
    return key - (1 << 64) if key >= 1 << 63 else key


def _unsigned(key: int) -> int:
    return key + (1 << 64) if key < 0 else key
