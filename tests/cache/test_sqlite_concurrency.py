"""Two processes hammering one SQLite cache file: no corruption, no lost writes, no orphaned rows."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import numpy as np

from adaptlab.cache.entry import CacheEntry, SourceRef
from adaptlab.cache.sqlite_backend import SqliteCacheBackend

WRITES = 300


def hammer(path: str, worker: int, writes: int) -> None:
    backend = SqliteCacheBackend(Path(path))
    rng = np.random.default_rng(worker)
    now = time.time()
    for i in range(writes):
        key = f"w{worker}-{i}"
        backend.put(CacheEntry(key=key, context="ctx", question=f"q {key}", answer={"text": key},
                               created_at=now, expires_at=None, sources=(SourceRef(f"h-{key}", f"/d/{key}"),),
                               embedding=rng.standard_normal(8).astype(np.float32)))
        assert backend.get(key, now).answer == {"text": key}
        if i % 10 == 9:  # interleave deletions with the other process's writes
            assert backend.delete_for_sources([f"h-w{worker}-{i - 1}"]) == [f"w{worker}-{i - 1}"]
        if i % 25 == 0:
            backend.vectors("ctx", now)  # readers run beside the writer
    backend.close()


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    SqliteCacheBackend(path).close()  # create the schema first, as a server would
    context = multiprocessing.get_context("spawn")  # fresh interpreters: real separate processes
    workers = [context.Process(target=hammer, args=(str(path), w, WRITES)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    deletions_per_worker = WRITES // 10
    assert entries == 2 * (WRITES - deletions_per_worker)
    # Every entry kept exactly its one source row, and no deleted entry left one behind.
    assert conn.execute("SELECT COUNT(*) FROM entry_sources").fetchone()[0] == entries
    orphans = conn.execute("SELECT COUNT(*) FROM entry_sources WHERE key NOT IN (SELECT key FROM entries)")
    assert orphans.fetchone()[0] == 0
    # Every write (put or delete) bumped the version exactly once, whichever process made it.
    assert conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()[0] == \
        2 * (WRITES + deletions_per_worker)
    backend = SqliteCacheBackend(path)
    keys, matrix = backend.vectors("ctx", time.time())
    assert len(keys) == entries and matrix.shape == (entries, 8)
