"""Optional LLM-as-judge: a rubric score from any OpenAI-compatible model, cached so nothing is paid twice.

The cache key is (judge model, rubric, question, answer, references): the same input always gets the same
stored verdict, across runs and processes (SQLite in the project folder).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adaptlab.config import JudgeConfig
from adaptlab.errors import BackendError
from adaptlab.logs import CallLog
from adaptlab.openai_http import make_client, translated_errors

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    score REAL,                 -- 1..5 as the judge gave it; NULL when the reply had no score
    reason TEXT,
    raw TEXT,
    ts REAL NOT NULL
);
"""
_SCORE = re.compile(r"\b([1-5])\b")


@dataclass(frozen=True)
class Verdict:
    score: float | None  # 1..5
    reason: str
    cached: bool


class Judge:
    def __init__(self, config: JudgeConfig, cache_path: Path, *, log: CallLog | None = None) -> None:
        if not config.model:
            raise BackendError("eval.judge.enabled is true but eval.judge.model is empty — set the judge model "
                               "name (and eval.judge.base_url) in adaptlab.toml.")
        self._config = config
        self._client = make_client(config.base_url, config.api_key_env, config.timeout_s)
        self._log = log
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(cache_path), timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self.calls = 0
        self.cache_hits = 0

    def score(self, question: str, answer: str, references: Sequence[str]) -> float | None:
        """The rubric score scaled to 0–1 ((s − 1) / 4); None when the judge gave no usable score."""
        verdict = self.judge(question, answer, references)
        return None if verdict.score is None else (verdict.score - 1) / 4

    def judge(self, question: str, answer: str, references: Sequence[str]) -> Verdict:
        key = self._key(question, answer, references)
        with self._lock:
            row = self._conn.execute("SELECT score, reason FROM judgements WHERE key = ?", (key,)).fetchone()
        if row is not None:
            self.cache_hits += 1
            return Verdict(row[0], row[1] or "", cached=True)
        verdict, raw = self._ask(question, answer, references)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO judgements (key, model, score, reason, raw, ts) VALUES (?, ?, ?, ?, ?, ?)",
                (key, self._config.model, verdict.score, verdict.reason, raw, time.time()))
        return verdict

    def _key(self, question: str, answer: str, references: Sequence[str]) -> str:
        payload = json.dumps([self._config.model, self._config.rubric, question, answer, list(references)],
                             ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _ask(self, question: str, answer: str, references: Sequence[str]) -> tuple[Verdict, str]:
        user = (f"QUESTION:\n{question}\n\nREFERENCE:\n" + "\n".join(f"- {r}" for r in references) +
                f"\n\nANSWER:\n{answer}\n\nReply with JSON only: {{\"score\": <1-5>, \"reason\": \"<one sentence>\"}}")
        messages = [{"role": "system", "content": self._config.rubric}, {"role": "user", "content": user}]
        started = time.perf_counter()
        with translated_errors("Judge server", self._config.base_url, "eval.judge", self._config.api_key_env,
                               "an OpenAI chat completion"):
            response = self._client.chat.completions.create(
                model=self._config.model, messages=messages, temperature=0, max_tokens=200)
        self.calls += 1
        raw = (response.choices[0].message.content or "") if response.choices else ""
        if self._log:
            usage = response.usage
            self._log.record("llm", model=self._config.model, prompt_tokens=usage.prompt_tokens if usage else 0,
                             completion_tokens=usage.completion_tokens if usage else 0,
                             latency_ms=(time.perf_counter() - started) * 1000, purpose="eval-judge")
        return parse_verdict(raw), raw


def parse_verdict(raw: str) -> Verdict:
    """{"score": n, "reason": ...} anywhere in the reply; else the first digit 1–5; else no score."""
    start = raw.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(raw[start:])
        except json.JSONDecodeError:
            start = raw.find("{", start + 1)
            continue
        if isinstance(value, dict) and isinstance(value.get("score"), (int, float)) and 1 <= value["score"] <= 5:
            return Verdict(float(value["score"]), str(value.get("reason", "")), cached=False)
        break
    match = _SCORE.search(raw)
    return Verdict(float(match.group(1)) if match else None, raw.strip()[:200], cached=False)
