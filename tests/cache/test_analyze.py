"""Query-log analysis: repeats, near-duplicates, the TTL replay and the savings, checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adaptlab.cache.analyze import (
    SECONDS_PER_MONTH,
    LoggedQuery,
    QueryLog,
    _earlier_neighbours,
    analyze_log,
    load_query_log,
    measured_tokens_per_query,
    parse_timestamp,
)
from adaptlab.cache.sweep import BadLinesError
from adaptlab.logs import CallLog


class GroupEmbedder:
    """Texts in the same named group get cosine `within`; others are orthogonal. Groups given by hand."""

    name = "groups"

    def __init__(self, groups: dict[str, str], links: dict[tuple[str, str], float] | None = None) -> None:
        self.groups = groups  # text → group name
        self.links = links or {}  # (group, group) → cosine between the two groups
        names = sorted(set(groups.values()))
        self.axis = {name: i for i, name in enumerate(names)}
        self.dimension = 2 * len(names) + 2

    def embed(self, texts):
        rows = []
        for text in texts:
            vector = np.zeros(self.dimension, dtype=np.float64)
            vector[self.axis[self.groups[text]]] = 1.0
            rows.append(vector)
        matrix = np.array(rows)
        # Linked groups: mix in the other group's axis so cos(group a, group b) is the given value.
        for (a, b), cosine in self.links.items():
            for row, text in zip(matrix, texts):
                if self.groups[text] == b:
                    row[:] = 0.0
                    row[self.axis[a]] = cosine
                    row[self.axis[b]] = np.sqrt(1 - cosine * cosine)
        return matrix.astype(np.float32)


def log_of(items: list[tuple[str, float | None]]) -> QueryLog:
    return QueryLog("log", [LoggedQuery(q, t, i + 1) for i, (q, t) in enumerate(items)])


def test_exact_and_near_duplicate_rates() -> None:
    embedder = GroupEmbedder({"How do I reset my password?": "pw", "how do i reset my password": "pw",
                              "I forgot my password": "pw", "Where can I park?": "park",
                              "What are the opening hours?": "hours"})
    log = log_of([("How do I reset my password?", None), ("how do i reset my password", None),
                  ("I forgot my password", None), ("Where can I park?", None), ("What are the opening hours?", None),
                  ("How do I reset my password?", None)])
    result = analyze_log(log, embedder, threshold=0.9)
    assert (result.n_queries, result.n_distinct) == (6, 4)
    assert (result.exact_repeat_rate.k, result.exact_repeat_rate.n) == (2, 6)  # case and "?" do not count
    assert result.near_duplicate_rate.k == 3  # + "I forgot my password" (same group, cosine 1)
    assert result.exact_repeat_rate.low <= result.exact_repeat_rate.value <= result.exact_repeat_rate.high
    assert not result.has_timestamps and result.ttl_results[0].ttl_seconds is None
    assert any("no timestamps" in note for note in result.notes)
    assert result.top_repeated[0] == ("how do i reset my password", 3)
    assert "50.0% of 6 queries" in result.verdict and "above the 30% rule of thumb" in result.verdict


def test_ttl_replay_by_hand() -> None:
    # A at 0 (miss, entry until 300), A at 100 (exact hit), A at 400 (expired: miss, entry until 700),
    # B at 500 (cosine 0.95 with A: semantic hit), C at 600 (unrelated: miss).
    embedder = GroupEmbedder({"Is the clinic open?": "a", "Is the clinic open now?": "b", "Where to park?": "c"},
                             links={("a", "b"): 0.95})
    log = log_of([("Is the clinic open?", 0), ("Is the clinic open?", 100), ("Is the clinic open?", 400),
                  ("Is the clinic open now?", 500), ("Where to park?", 600)])
    result = analyze_log(log, embedder, threshold=0.9, ttls=[300, None], prompt_tokens=400, completion_tokens=100,
                         price_per_1k_tokens=0.01)
    five_min, forever = result.ttl_results
    assert (five_min.exact_hits, five_min.semantic_hits, five_min.hits) == (1, 1, 2)
    assert (forever.exact_hits, forever.semantic_hits) == (2, 1)
    assert five_min.tokens_saved == 2 * 500 and five_min.money_saved == pytest.approx(0.01)
    assert five_min.money_saved_per_month == pytest.approx(0.01 * SECONDS_PER_MONTH / 600)
    assert result.span_seconds == 600 and result.has_timestamps
    assert "5 min TTL" in result.verdict


def test_replay_is_below_the_near_duplicate_rate_when_hits_store_nothing() -> None:
    # B is close to A and C to B, but C is far from A: B hits A's entry and stores nothing, so C misses.
    embedder = GroupEmbedder({"A?": "a", "B?": "b", "C?": "c"})
    # In one plane: A at 0°, B at 18.2° (cosine 0.95 with A), C at 36.4° (0.95 with B, 0.805 with A).
    vectors = {"A?": [1, 0, 0], "B?": [0.95, 0.3122, 0], "C?": [0.8049, 0.5934, 0]}
    embedder.embed = lambda texts: np.array([vectors[t] for t in texts], dtype=np.float32)  # type: ignore[method-assign]
    log = log_of([("A?", None), ("B?", None), ("C?", None)])
    result = analyze_log(log, embedder, threshold=0.9)
    assert result.near_duplicate_rate.k == 2  # B (≈A) and C (≈B)
    assert result.ttl_results[0].hits == 1  # only B


def test_guard_changes_the_near_duplicate_rate() -> None:
    texts = {"Is ibuprofen safe for COVID patients?": "i", "Is ibuprofen not safe for COVID patients?": "i"}
    log = log_of([(t, None) for t in texts])
    assert analyze_log(log, GroupEmbedder(texts), threshold=0.9).near_duplicate_rate.k == 1
    guarded = analyze_log(log, GroupEmbedder(texts), threshold=0.9, guard=True)
    assert guarded.near_duplicate_rate.k == 0 and guarded.ttl_results[0].hits == 0
    assert "below the 30% rule of thumb" in guarded.verdict


def test_tiled_similarities_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((37, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    full = vectors @ vectors.T
    expected_best = np.array([-np.inf] + [full[i, :i].max() for i in range(1, 37)], dtype=np.float32)
    expected_pairs = {(i, j) for i in range(37) for j in range(i) if full[i, j] >= 0.3}
    for block in (4, 10, 2048):
        best, pairs = _earlier_neighbours(vectors, 0.3, block=block, cap=1000, progress=None)
        np.testing.assert_allclose(best, expected_best, rtol=1e-5)
        assert {tuple(p) for p in pairs.tolist()} == expected_pairs


def test_load_jsonl_and_csv_logs(tmp_path: Path) -> None:
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text(
        json.dumps({"question": "a?", "timestamp": "2025-03-01T09:30:00Z"}) + "\n"
        + json.dumps({"query": "b?", "ts": 1740821460}) + "\n"  # 2025-03-01T09:31:00Z
        + json.dumps({"prompt": "c?", "time": 1740821520000}) + "\n",  # milliseconds
        encoding="utf-8")
    log = load_query_log(jsonl)
    assert [q.question for q in log.queries] == ["a?", "b?", "c?"]
    assert [q.timestamp for q in log.queries] == [1740821400.0, 1740821460.0, 1740821520.0]
    assert log.span_seconds == 120

    csv_path = tmp_path / "log.csv"
    csv_path.write_text("text;when\nfirst?;2025-03-01 10:00:00\nsecond?;2025-03-01 10:00:30\n", encoding="utf-8")
    log = load_query_log(csv_path, question_column="text", timestamp_column="when")
    assert [q.question for q in log.queries] == ["first?", "second?"] and log.span_seconds == 30
    plain = tmp_path / "plain.csv"
    plain.write_text("question\nfirst?\nsecond?\n", encoding="utf-8")
    assert not load_query_log(plain).has_timestamps
    assert parse_timestamp("2025-03-01T10:00:00+01:00") == parse_timestamp("2025-03-01T09:00:00Z")


def test_bad_log_lines_are_all_reported_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"question": "ok?", "timestamp": 100}\n'
        '{"question": "", "timestamp": 101}\n'
        '{"question": "ok?", "timestamp": "yesterday"}\n'
        '{"question": "ok?"}\n'
        '{broken\n'
        '{"text": "wrong key", "timestamp": 104}\n'
        '{"question": "fine", "timestamp": 105}\n', encoding="utf-8")
    with pytest.raises(BadLinesError) as caught:
        load_query_log(path)
    assert [p.line for p in caught.value.problems] == [2, 3, 4, 5, 6]
    message = str(caught.value)
    assert "5 bad lines (2 good queries read)" in message
    assert "log.jsonl:3: bad 'timestamp'" in message and "'yesterday'" in message
    assert "log.jsonl:4: no timestamp, but other lines have one" in message
    assert "log.jsonl:6" in message and "--question-column" in message

    csv_path = tmp_path / "log.csv"
    csv_path.write_text("question,timestamp\nok?,100\n,101\nok?,soon\n", encoding="utf-8")
    with pytest.raises(BadLinesError) as caught:
        load_query_log(csv_path)
    assert [p.line for p in caught.value.problems] == [3, 4]


def test_tokens_per_query_come_from_the_project_log(tmp_path: Path) -> None:
    assert measured_tokens_per_query(tmp_path / "missing.db") is None
    log = CallLog(tmp_path / "logs.db")
    log.record("llm", prompt_tokens=300, completion_tokens=50)
    log.record("llm", prompt_tokens=500, completion_tokens=150)
    log.record("retrieval")
    log.close()
    assert measured_tokens_per_query(tmp_path / "logs.db") == (400, 100, 2)


def test_real_minilm_finds_paraphrased_repeats(minilm) -> None:
    questions = ["What is the incubation period of COVID-19?", "How do I reset my password?",
                 "How long is the incubation period for COVID-19?", "What is the capital of France?",
                 "Is ibuprofen safe for COVID patients?", "Is ibuprofen not safe for COVID patients?",
                 "what is the capital of france"]
    log = log_of([(q, 60.0 * i) for i, q in enumerate(questions)])
    plain = analyze_log(log, minilm, threshold=0.9, ttls=[300, None])
    assert plain.exact_repeat_rate.k == 1  # the lower-case France question
    assert plain.near_duplicate_rate.k == 3  # + the incubation paraphrase + the negated ibuprofen question
    guarded = analyze_log(log, minilm, threshold=0.9, ttls=[300, None], guard=True)
    assert guarded.near_duplicate_rate.k == 2
    # With a 5-minute TTL the incubation paraphrase (2 min later) hits; France (3 min later) too.
    assert guarded.ttl_results[0].hits == 2 and guarded.embedder == minilm.name
