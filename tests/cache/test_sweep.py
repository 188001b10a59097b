"""Threshold sweep on labelled pairs: counts, rates and intervals checked by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from adaptlab.cache.sweep import (
    DEFAULT_THRESHOLDS,
    BadLinesError,
    LabelledPair,
    load_pairs,
    sweep,
    wilson,
    write_sweep_html,
)
from adaptlab.errors import InputError


class PlacedEmbedder:
    """Texts placed by hand: pair k's first text is axis 2k, its second text has cosine `s` with it and is
    otherwise orthogonal to everything — so every similarity in a test is exactly the one written down."""

    name = "placed"

    def __init__(self, dimension: int = 1024) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        self.dimension = dimension
        self.calls = 0
        self._next_axis = 0

    def place(self, first: str, second: str, cosine: float) -> None:
        k = self._next_axis
        self._next_axis += 2
        a = np.zeros(self.dimension, dtype=np.float32)
        a[k] = 1.0
        b = np.zeros(self.dimension, dtype=np.float32)
        b[k] = cosine
        b[k + 1] = math.sqrt(max(0.0, 1 - cosine * cosine))
        self.vectors.setdefault(first, a)
        self.vectors[second] = b

    def embed(self, texts):
        self.calls += 1
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)


def placed_pairs(spec: list[tuple[str, str, float, bool]]) -> tuple[PlacedEmbedder, list[LabelledPair]]:
    embedder = PlacedEmbedder()
    pairs = []
    for number, (first, second, cosine, duplicate) in enumerate(spec, start=1):
        embedder.place(first, second, cosine)
        pairs.append(LabelledPair(first, second, duplicate, number))
    return embedder, pairs


SPEC = [
    ("What are the symptoms of COVID-19?", "Which symptoms does COVID-19 cause?", 0.95, True),
    ("How do I reset my password?", "How can I change my password?", 0.90, True),
    ("Can kids get infected?", "Are children susceptible to infection?", 0.85, True),
    ("How deadly is MERS?", "What is the mortality rate of MERS?", 0.70, True),
    ("Is ibuprofen safe for COVID patients?", "Is ibuprofen not safe for COVID patients?", 0.97, False),
    ("Where is the clinic?", "When does the clinic open?", 0.80, False),
    ("How do I cook rice?", "What is the capital of France?", 0.10, False),
    ("Is the pharmacy open?", "Where can I park?", 0.20, False),
]


def test_rates_at_each_threshold_without_and_with_the_guard() -> None:
    embedder, pairs = placed_pairs(SPEC)
    result = sweep(pairs, embedder, thresholds=[0.75, 0.88, 0.96], target_false_hit_rate=0.2)
    assert result.n_pairs == 8 and result.n_duplicates == 4 and result.n_non_duplicates == 4
    assert embedder.calls == 1  # both sides embedded in one batch

    plain = result.row(0.75, guard=False)  # hits: 0.95 0.90 0.85 (dup) + 0.97 0.80 (not)
    assert plain.hits == 5
    assert (plain.hit_rate.k, plain.hit_rate.n) == (5, 8)
    assert (plain.false_hit_rate.k, plain.false_hit_rate.n) == (2, 4)
    assert (plain.precision.k, plain.precision.n) == (3, 5)
    assert (plain.recall.k, plain.recall.n) == (3, 4)
    guarded = result.row(0.75, guard=True)  # the guard drops the negated pair (0.97)
    assert (guarded.hits, guarded.false_hit_rate.k, guarded.precision.k) == (4, 1, 3)

    high = result.row(0.96, guard=False)  # only the negated pair is above 0.96: all hits are wrong
    assert high.hits == 1 and high.precision.value == 0.0 and high.false_hit_rate.k == 1
    assert result.row(0.96, guard=True).hits == 0 and result.row(0.96, guard=True).precision.value is None
    assert result.guard_rejected_non_duplicates == 2 and result.guard_rejected_duplicates == 0  # + France
    assert result.guard_examples[0].reason.startswith("negation")

    for row in result.rows:  # every rate carries a Wilson interval around its value
        for rate in (row.hit_rate, row.false_hit_rate, row.recall):
            assert rate.low is not None and rate.high is not None and rate.value is not None
            assert rate.low <= rate.value <= rate.high

    data = json.loads(json.dumps(result.to_dict()))
    assert len(data["rows"]) == 6 and {r["guard"] for r in data["rows"]} == {False, True}
    assert data["n_non_duplicates"] == 4


def test_recommended_threshold_is_the_lowest_whose_upper_bound_meets_the_target() -> None:
    # 400 clearly different pairs and one different pair at 0.80 that the guard refuses (a number differs).
    spec = [(f"unrelated question {i} a", f"unrelated question {i} b", 0.3, False) for i in range(400)]
    spec.append(("What is the dose for 5 year olds?", "What is the dose for 12 year olds?", 0.80, False))
    spec.append(("How do I reset my password?", "How can I change my password?", 0.90, True))
    embedder, pairs = placed_pairs(spec)
    result = sweep(pairs, embedder, target_false_hit_rate=0.01)
    # k = 0 of n = 401 non-duplicates: Wilson upper bound 3.84 / (401 + 3.84) ≈ 0.0095 ≤ 0.01.
    assert result.recommended_threshold == 0.81
    assert result.recommended_threshold_guard == 0.50  # the guard removes the only false hit
    assert result.row(0.80, guard=False).false_hit_rate.high > 0.01
    assert "0.81" in result.recommendation(False) and "0.50" in result.recommendation(True)
    assert result.thresholds == list(DEFAULT_THRESHOLDS) and DEFAULT_THRESHOLDS[-1] == 0.99


def test_no_recommendation_says_how_many_pairs_are_needed() -> None:
    embedder, pairs = placed_pairs(SPEC)
    result = sweep(pairs, embedder, target_false_hit_rate=0.01)
    assert result.recommended_threshold is None and result.recommended_threshold_guard is None
    assert result.min_non_duplicates_needed() == 381  # z² (1 − 0.01) / 0.01 with z = 1.96
    assert "at least 381" in result.recommendation(True)


def test_wilson_matches_the_formula_and_handles_empty() -> None:
    rate = wilson(3, 40)
    z = 1.959963984540054
    p, n = 3 / 40, 40
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert rate.low == pytest.approx(centre - half) and rate.high == pytest.approx(centre + half)
    empty = wilson(0, 0)
    assert empty.value is None and empty.low is None and empty.show() == "n/a"


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    embedder, pairs = placed_pairs(SPEC)
    result = sweep(pairs, embedder, thresholds=[0.5, 0.75, 0.9], target_false_hit_rate=0.2, source="pairs <x>")
    page = write_sweep_html(result, tmp_path / "out" / "sweep.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and "<polyline" in page and "<polygon" in page  # curves and CI bands
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "pairs &lt;x&gt;" in page  # escaped
    assert "negation differs" in page


def test_load_pairs_jsonl_and_csv_with_alias_keys(tmp_path: Path) -> None:
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(
        '{"question1": "a?", "question2": "b?", "duplicate": true}\n'
        '\n'
        '{"q1": "c?", "q2": "d?", "label": 0, "id": 7}\n'
        '{"q1": "e?", "q2": "f?", "is_duplicate": "1"}\n', encoding="utf-8")
    pairs = load_pairs(jsonl)
    assert [(p.question1, p.duplicate, p.line) for p in pairs] == [("a?", True, 1), ("c?", False, 3), ("e?", True, 4)]

    quora = tmp_path / "quora.csv"  # Quora Question Pairs' own header
    quora.write_text('id,qid1,qid2,question1,question2,is_duplicate\n1,1,2,"Hi, there?",Hello?,1\n2,3,4,x?,y?,0\n',
                     encoding="utf-8")
    assert [(p.question1, p.duplicate) for p in load_pairs(quora)] == [("Hi, there?", True), ("x?", False)]


def test_bad_pair_lines_are_all_reported_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"question1": "a?", "question2": "b?", "duplicate": true}\n'
        '{"question1": "a?", "question2": "b?", "duplicate": "maybe"}\n'
        'not json\n'
        '{"question1": "", "question2": "b?", "duplicate": 1}\n'
        '[1, 2]\n', encoding="utf-8")
    with pytest.raises(BadLinesError) as caught:
        load_pairs(path)
    assert [p.line for p in caught.value.problems] == [2, 3, 4, 5]
    message = str(caught.value)
    assert "pairs.jsonl:2" in message and "'maybe'" in message and "pairs.jsonl:3: invalid JSON" in message
    assert "pairs.jsonl:4" in message and "1 good pair read" in message

    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("question1,question2,duplicate\na?,b?,1\nc?,,0\ne?,f?,2\n", encoding="utf-8")
    with pytest.raises(BadLinesError) as caught:
        load_pairs(csv_path)
    assert [p.line for p in caught.value.problems] == [3, 4]
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("question1,question2\na?,b?\n", encoding="utf-8")
    with pytest.raises(InputError, match="nolabel.csv:1: no column 'duplicate'"):
        load_pairs(no_label)


def test_real_minilm_sweep(minilm) -> None:
    """With the real embedder: the negated question is a false hit at every threshold up to 0.99 unless the
    guard is on; the paraphrases are hits at 0.8."""
    pairs = [
        LabelledPair("What is the incubation period of COVID-19?",
                     "How long is the incubation period for COVID-19?", True),
        LabelledPair("What are the symptoms of COVID-19?", "Which symptoms does COVID-19 cause?", True),
        LabelledPair("Is ibuprofen safe for COVID patients?", "Is ibuprofen not safe for COVID patients?", False),
        LabelledPair("How do I reset my password?", "What is the capital of France?", False),
    ]
    result = sweep(pairs, minilm, thresholds=[0.8, 0.9, 0.99], target_false_hit_rate=0.5)
    assert result.embedder == minilm.name
    assert result.row(0.99, guard=False).false_hit_rate.k == 1
    assert result.row(0.8, guard=True).false_hit_rate.k == 0
    assert result.row(0.8, guard=True).recall.k == 2
