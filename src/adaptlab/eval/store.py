"""Every eval run and every case result in SQLite (the project's logs.db), written as they happen.

An interrupted run keeps the cases it finished (status 'interrupted'); `--compare RUN_ID` reads a baseline's
per-case scores from here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from adaptlab.eval.harness import CaseResult, case_means

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id TEXT PRIMARY KEY,
    eval_id TEXT NOT NULL,         -- one `adaptlab eval` invocation (several strategies share it)
    ts REAL NOT NULL,
    strategy TEXT NOT NULL,
    params TEXT NOT NULL,          -- JSON
    cases_path TEXT NOT NULL,
    cases_sha256 TEXT NOT NULL,
    n_cases INTEGER NOT NULL,
    repeats INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,          -- 'running' | 'finished' | 'interrupted' | 'failed'
    metrics TEXT                   -- JSON: metric -> {value, low, high, n}
);
CREATE TABLE IF NOT EXISTS eval_results (
    run_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    ts REAL NOT NULL,
    latency_ms REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    scores TEXT NOT NULL,          -- JSON: metric -> value | null
    result TEXT NOT NULL,          -- JSON: the whole CaseResult
    PRIMARY KEY (run_id, case_id, repeat)
);
"""


class EvalStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)

    def start_run(self, *, run_id: str, eval_id: str, strategy: str, params: dict[str, Any], cases_path: str,
                  cases_sha256: str, n_cases: int, repeats: int, seed: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO eval_runs (run_id, eval_id, ts, strategy, params, cases_path, cases_sha256, n_cases, "
                "repeats, seed, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                (run_id, eval_id, time.time(), strategy, json.dumps(params, default=str), cases_path, cases_sha256,
                 n_cases, repeats, seed))

    def add_result(self, run_id: str, result: CaseResult) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO eval_results (run_id, case_id, repeat, ts, latency_ms, prompt_tokens, "
                "completion_tokens, scores, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, result.case_id, result.repeat, time.time(), result.latency_ms, result.prompt_tokens,
                 result.completion_tokens, json.dumps(result.scores), json.dumps(result.to_dict(), default=str)))

    def finish_run(self, run_id: str, status: str, metrics: dict[str, dict[str, Any]] | None = None) -> None:
        with self._lock:
            self._conn.execute("UPDATE eval_runs SET status = ?, metrics = ? WHERE run_id = ?",
                               (status, json.dumps(metrics) if metrics is not None else None, run_id))

    def reopen_run(self, run_id: str) -> None:
        """An interrupted run continued by `--resume`."""
        with self._lock:
            self._conn.execute("UPDATE eval_runs SET status = 'running', metrics = NULL WHERE run_id = ?", (run_id,))

    def find_run(self, eval_id: str, strategy: str) -> dict[str, Any] | None:
        """The latest run of `strategy` in eval `eval_id`."""
        with self._lock:
            row = self._conn.execute("SELECT run_id FROM eval_runs WHERE eval_id = ? AND strategy = ? "
                                     "ORDER BY ts DESC LIMIT 1", (eval_id, strategy)).fetchone()
        return None if row is None else self.run_info(row[0])

    def eval_runs(self, eval_id: str) -> list[dict[str, Any]]:
        """Every strategy run of one eval (strategy, status, results stored so far)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT r.run_id, r.strategy, r.status, COUNT(x.case_id) FROM eval_runs r LEFT JOIN eval_results x "
                "ON x.run_id = r.run_id WHERE r.eval_id = ? GROUP BY r.run_id ORDER BY r.ts", (eval_id,)).fetchall()
        return [dict(zip(("run_id", "strategy", "status", "results"), row)) for row in rows]

    def recent_seconds_per_answer(self, model: str, limit: int = 200) -> float | None:
        """Median wall time of the last `limit` generated answers of `model` (a strategy's params' model, cache
        hits left out): what the next run's ETA assumes. None when the model has not answered here yet."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT x.latency_ms FROM eval_results x JOIN eval_runs r ON r.run_id = x.run_id "
                "WHERE (json_extract(r.params, '$.model') = ? OR json_extract(r.params, '$.inner.model') = ?) "
                "AND json_extract(x.result, '$.cache_status') != 'hit' AND x.latency_ms > 0 "
                "ORDER BY x.ts DESC LIMIT ?", (model, model, limit)).fetchall()
        values = sorted(row[0] for row in rows)
        return values[len(values) // 2] / 1000 if values else None

    def run_info(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM eval_runs WHERE run_id = ?", (run_id,))
            row = cursor.fetchone()
            names = [c[0] for c in cursor.description]
        if row is None:
            return None
        info = dict(zip(names, row))
        info["params"] = json.loads(info["params"])
        info["metrics"] = json.loads(info["metrics"]) if info["metrics"] else None
        return info

    def results(self, run_id: str) -> list[CaseResult]:
        with self._lock:
            rows = self._conn.execute("SELECT result FROM eval_results WHERE run_id = ? ORDER BY repeat, rowid",
                                      (run_id,)).fetchall()
        return [CaseResult(**json.loads(row[0])) for row in rows]

    def case_scores(self, run_id: str) -> dict[str, dict[str, float | None]]:
        return case_means(self.results(run_id))

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id, strategy, ts, status, n_cases, eval_id FROM eval_runs ORDER BY ts DESC LIMIT ?",
                (limit,)).fetchall()
        return [dict(zip(("run_id", "strategy", "ts", "status", "n_cases", "eval_id"), row)) for row in rows]

    def close(self) -> None:
        self._conn.close()
