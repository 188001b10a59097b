"""SQLite log of every LLM call, retrieval and ingest, with tokens and latency.

The cost model and reports read these rows: numbers are measured, never assumed. WAL mode lets the server,
ingest and eval processes append at the same time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,            -- 'llm' | 'retrieval' | 'ingest' | 'answer' | 'train' (tokens trained)
    model TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_ms REAL,
    detail TEXT                    -- JSON: query, counts, cache status ...
);
CREATE INDEX IF NOT EXISTS events_kind_ts ON events(kind, ts);
"""


def connect_private(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite file at `path`, which is created readable by its owner only (0600): the call
    log and the answer cache hold questions and answers in plain text. SQLite gives the -wal and -shm files
    it makes beside the database the database's own permissions. An existing file keeps its mode."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # the umask can only remove bits from 0600
    return sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)


_INSERT = ("INSERT INTO events (ts, kind, model, prompt_tokens, completion_tokens, latency_ms, detail) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")


class CallLog:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn = connect_private(path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)
        self._pending: list[tuple] = []
        self._batching: threading.Event | None = None  # set while batching; cleared to stop the flusher
        self._max_pending = 0

    def record(self, kind: str, *, model: str = "", prompt_tokens: int = 0, completion_tokens: int = 0,
               latency_ms: float = 0.0, **detail: Any) -> None:
        row = (time.time(), kind, model, prompt_tokens, completion_tokens, latency_ms,
               json.dumps(detail, default=str))
        if self._batching is None:
            with self._lock:
                self._conn.execute(_INSERT, row)
            return
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= self._max_pending
        if full:  # bounded memory: a burst beyond the batch is written by the caller
            self.flush()

    def start_batching(self, *, interval_s: float = 0.5, max_pending: int = 5000) -> None:
        """Write rows in one transaction every `interval_s` instead of one commit per row (the server logs
        every cache hit; a commit each would cost more than answering the hit). `close` writes the rest."""
        if self._batching is not None:
            return
        self._max_pending = max_pending
        running = self._batching = threading.Event()
        running.set()

        def flusher() -> None:
            while running.is_set():
                time.sleep(interval_s)
                self.flush()

        threading.Thread(target=flusher, name="adaptlab-calllog", daemon=True).start()

    def flush(self) -> None:
        with self._lock:
            rows, self._pending = self._pending, []
            if rows:
                with self._conn:  # one transaction for the batch
                    self._conn.execute("BEGIN")
                    self._conn.executemany(_INSERT, rows)

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        self.flush()
        query = "SELECT ts, kind, model, prompt_tokens, completion_tokens, latency_ms, detail FROM events"
        params: tuple = ()
        if kind:
            query += " WHERE kind = ?"
            params = (kind,)
        with self._lock:
            cursor = self._conn.execute(query + " ORDER BY id", params)
            names = [c[0] for c in cursor.description]
            result = [dict(zip(names, row)) for row in cursor.fetchall()]
        for row in result:
            row["detail"] = json.loads(row["detail"] or "{}")
        return result

    def close(self) -> None:
        if self._batching is not None:
            self._batching.clear()
            self._batching = None
        self.flush()
        self._conn.close()
