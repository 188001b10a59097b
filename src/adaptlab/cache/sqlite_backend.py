"""The embedded cache backend: one SQLite file, safe with several processes reading and writing at once.

WAL lets readers run beside a writer; every write is one `BEGIN IMMEDIATE` transaction (entry, its sources and
the version counter together), so a crash or a concurrent writer never leaves an entry without its sources.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from adaptlab.cache.entry import CacheEntry, CacheStats
from adaptlab.logs import connect_private

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, context TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0, embedding BLOB);
CREATE INDEX IF NOT EXISTS entries_context ON entries(context);
CREATE TABLE IF NOT EXISTS entry_sources (key TEXT NOT NULL, doc_hash TEXT NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entry_sources_key ON entry_sources(key);
CREATE INDEX IF NOT EXISTS entry_sources_hash ON entry_sources(doc_hash);
CREATE INDEX IF NOT EXISTS entry_sources_path ON entry_sources(path);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', 0);
"""

_COLUMNS = "key, context, question, answer, created_at, expires_at, prompt_tokens, completion_tokens, embedding"


class SqliteCacheBackend:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.location = str(path)
        # One connection per backend object, shared by threads under a lock (the server answers from threads).
        self._conn = connect_private(path)  # it holds questions and answers: owner-only (0600)
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across application crashes
        self._conn.executescript(_SCHEMA)

    # -------------------------------------------------------------------------------------------- reads

    def get(self, key: str, now: float) -> CacheEntry | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None or (row[5] is not None and row[5] <= now):
            return None
        return _entry(row)

    def get_many(self, keys: Iterable[str], now: float) -> list[CacheEntry]:
        keys = list(keys)
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE key IN ({marks})", keys).fetchall()
        return [_entry(r) for r in rows if r[5] is None or r[5] > now]

    def vectors(self, context: str, now: float) -> tuple[list[str], np.ndarray]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, embedding FROM entries WHERE context = ? AND embedding IS NOT NULL "
                "AND (expires_at IS NULL OR expires_at > ?)", (context, now)).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r[0] for r in rows], np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()[0])

    def stats(self, now: float) -> CacheStats:
        with self._lock:
            entries, contexts = self._conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT context) FROM entries").fetchone()
            expired = self._conn.execute("SELECT COUNT(*) FROM entries WHERE expires_at <= ?", (now,)).fetchone()[0]
            with_sources = self._conn.execute("SELECT COUNT(DISTINCT key) FROM entry_sources").fetchone()[0]
        return CacheStats(self.name, self.location, entries, contexts, with_sources, expired)

    # ------------------------------------------------------------------------------------------- writes

    def put(self, entry: CacheEntry) -> None:
        embedding = None if entry.embedding is None else np.asarray(entry.embedding, np.float32).tobytes()
        row = (entry.key, entry.context, entry.question, json.dumps(entry.answer, ensure_ascii=False),
               entry.created_at, entry.expires_at, entry.prompt_tokens, entry.completion_tokens, embedding)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM entry_sources WHERE key = ?", (entry.key,))
            conn.execute(f"INSERT OR REPLACE INTO entries ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", row)
            conn.executemany("INSERT INTO entry_sources VALUES (?,?,?)",
                             [(entry.key, s.doc_hash, s.path) for s in entry.sources])

        self._write(write)

    def delete_for_sources(self, doc_hashes: Iterable[str]) -> list[str]:
        hashes = list(dict.fromkeys(doc_hashes))
        if not hashes:
            return []
        marks = ",".join("?" * len(hashes))
        return self._delete_where(f"SELECT DISTINCT key FROM entry_sources WHERE doc_hash IN ({marks})", hashes)

    def delete_for_path(self, path: str) -> list[str]:
        # A folder clears every document under it; "file.jsonl#7" records belong to file.jsonl.
        prefix = path.rstrip("/")
        return self._delete_where(
            "SELECT DISTINCT key FROM entry_sources WHERE path = ? OR path LIKE ? ESCAPE '\\' OR path LIKE ? "
            "ESCAPE '\\'", [prefix, _like_prefix(prefix + "/"), _like_prefix(prefix + "#")])

    def purge_expired(self, now: float) -> list[str]:
        return self._delete_where("SELECT key FROM entries WHERE expires_at <= ?", [now])

    def clear(self) -> list[str]:
        return self._delete_where("SELECT key FROM entries", [])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------------------------------ helpers

    def _delete_where(self, select_keys: str, params: list) -> list[str]:
        deleted: list[str] = []

        def write(conn: sqlite3.Connection) -> None:
            keys = [r[0] for r in conn.execute(select_keys, params).fetchall()]
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                batch = keys[start:start + 500]
                marks = ",".join("?" * len(batch))
                conn.execute(f"DELETE FROM entries WHERE key IN ({marks})", batch)
                conn.execute(f"DELETE FROM entry_sources WHERE key IN ({marks})", batch)
            deleted.extend(keys)

        self._write(write)
        return deleted

    def _write(self, work) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                work(self._conn)
                self._conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'version'")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise


def _entry(row: tuple) -> CacheEntry:
    """An entry as lookups need it; its source rows stay in the table (only invalidation reads them)."""
    embedding = np.frombuffer(row[8], dtype=np.float32) if row[8] is not None else None
    return CacheEntry(key=row[0], context=row[1], question=row[2], answer=json.loads(row[3]), created_at=row[4],
                      expires_at=row[5], prompt_tokens=row[6], completion_tokens=row[7], embedding=embedding)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
