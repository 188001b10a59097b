"""The harness with canned strategies: per-case scoring, aggregation, repeats/seeds, comparisons, failures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from adaptlab.errors import BackendError
from adaptlab.eval.cases import EvalCase
from adaptlab.eval.harness import Scorer, compare, run
from adaptlab.testing.fakes import HashEmbedder
from adaptlab.types import Answer, Chunk, Citation, ScoredChunk, Usage

REFUSAL = "I don't know."


def chunk(path: str, text: str) -> ScoredChunk:
    c = Chunk(chunk_id=f"c-{path}", doc_id=f"d-{path}", doc_hash="h", chunk_index=0, chunk_count=1,
              path=f"/corpus/{path}", title=path, text=text, index_text=text, char_start=0, char_end=len(text))
    return ScoredChunk(c, 1.0, dense_score=0.9)


def cite(number: int, scored: ScoredChunk) -> Citation:
    c = scored.chunk
    return Citation(number, c.doc_id, c.path, c.title, None, 0, len(c.text), c.text[:40], 1.0)


@dataclass
class CannedStrategy:
    """Answers from a dict question → Answer; records the seeds it was called with."""

    answers: dict[str, Answer]
    name: str = "canned"
    kind: str = "prompt"
    retrieves: bool = False
    parallel_answers: int | None = 1
    seeds: list[int | None] = field(default_factory=list)

    def answer(self, query: str, *, seed: int | None = None) -> Answer:
        self.seeds.append(seed)
        return self.answers[query]

    def stream(self, query: str, *, seed: int | None = None):
        yield self.answer(query, seed=seed)  # the harness streams every answer

    def describe(self) -> dict:
        return {"kind": self.kind}

    def seen_questions(self) -> list[str]:
        return []


def scorer(**overrides) -> Scorer:
    values = dict(k=2, refusal_text=REFUSAL, embed=HashEmbedder(64).embed, groundedness_threshold=0.9)
    values.update(overrides)
    return Scorer(**values)


def test_qa_scores_and_tokens_per_case() -> None:
    case = EvalCase(case_id="q1", question="Who wrote it?", answers=("Ada Lovelace", "Lovelace"))
    answer = Answer(text="The Lovelace", usage=Usage(30, 4), latency_ms=120.0)
    scores = scorer().score(case, answer, retrieves=False)
    # "the lovelace" → "lovelace" after dropping the article: exact match with the 2nd answer; F1 1.0
    assert scores["exact_match"] == 1.0 and scores["token_f1"] == 1.0
    assert scores["refusal_rate"] == 0.0
    assert (scores["latency_ms"], scores["prompt_tokens"], scores["completion_tokens"]) == (120.0, 30.0, 4.0)
    assert "recall_at_2" not in scores and "groundedness" not in scores  # no retrieval: not applicable


def test_label_and_json_scores() -> None:
    label_case = EvalCase(case_id="l", question="play some jazz", label="play_music")
    s = scorer(labels=("play_music", "get_weather")).score(
        label_case, Answer(text="Intent: play_music."), retrieves=False)
    assert s["accuracy"] == 1.0
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    json_case = EvalCase(case_id="j", question="weather in Paris tomorrow?", schema=schema,
                         expected_json={"city": "Paris", "day": "tomorrow"})
    s = scorer().score(json_case, Answer(text='Sure: {"city": "paris", "day": "today"}'), retrieves=False)
    # valid JSON, satisfies the schema; 1 of 2 expected fields right (city, normalised) → accuracy 0.5, F1 0.5
    assert (s["json_valid"], s["schema_valid"], s["field_accuracy"], s["field_f1"]) == (1.0, 1.0, 0.5, 0.5)
    s = scorer().score(json_case, Answer(text="no json here"), retrieves=False)
    assert (s["json_valid"], s["schema_valid"], s["field_accuracy"]) == (0.0, 0.0, 0.0)


def test_retrieval_citation_and_groundedness_scores() -> None:
    gold_text = "The bridge opened in 1932 after six years of work."
    other = chunk("b.txt", "Bread rises overnight in a cool kitchen.")
    gold = chunk("a.txt", gold_text)
    case = EvalCase(case_id="r", question="When did the bridge open?", answers=("1932",), gold_sources=("a.txt",))
    # ranked: b, a, b (duplicate document) → unique docs [b, a]: gold at rank 2
    answer = Answer(text="The bridge opened in 1932 after six years of work. [2]", citations=(cite(2, gold),),
                    retrieved=(other, gold), search_results=(other, gold, other))
    s = scorer().score(case, answer, retrieves=True)
    assert s["recall_at_2"] == 1.0
    assert s["mrr"] == 0.5
    assert s["ndcg_at_2"] == pytest.approx(1 / math.log2(3))  # DCG 1/log2(3), IDCG 1
    assert s["citation_precision"] == 1.0 and s["citation_recall"] == 1.0
    assert s["groundedness"] == 1.0  # the one sentence is the gold chunk's sentence verbatim
    # Citing the wrong source: precision 0, and the sentence is not in the cited chunk → not grounded.
    wrong = Answer(text=gold_text, citations=(cite(1, other),), retrieved=(other, gold), search_results=(other, gold))
    s = scorer().score(case, wrong, retrieves=True)
    assert (s["citation_precision"], s["citation_recall"], s["groundedness"]) == (0.0, 0.0, 0.0)
    # Citing nothing: precision undefined; groundedness falls back to every source given.
    silent = Answer(text=gold_text, retrieved=(other, gold), search_results=(other, gold))
    s = scorer().score(case, silent, retrieves=True)
    assert s["citation_precision"] is None and s["citation_recall"] == 0.0 and s["groundedness"] == 1.0


def test_refusal_counts_and_skips_groundedness() -> None:
    case = EvalCase(case_id="x", question="?", answers=("a",), gold_sources=("a.txt",))
    s = scorer().score(case, Answer(text=REFUSAL, refused=True), retrieves=True)
    assert s["refusal_rate"] == 1.0 and "groundedness" not in s
    assert s["recall_at_2"] == 0.0  # nothing retrieved
    # A model that writes the refusal text itself also counts as refusing.
    assert scorer().score(case, Answer(text=REFUSAL), retrieves=False)["refusal_rate"] == 1.0


def _cases(n: int) -> list[EvalCase]:
    return [EvalCase(case_id=f"c{i}", question=f"q{i}", answers=(f"a{i}",)) for i in range(n)]


def test_run_aggregates_with_cis_and_repeats_use_seed_plus_r() -> None:
    cases = _cases(4)
    # right on c0 and c1, wrong on c2 and c3 → EM 0.5
    answers = {f"q{i}": Answer(text=f"a{i}" if i < 2 else "wrong", usage=Usage(10, 2), latency_ms=100.0 * (i + 1))
               for i in range(4)}
    strategy = CannedStrategy(answers)
    seen = []
    result = run(strategy, cases, scorer(), repeats=3, seed=40, on_result=seen.append, resamples=500)
    assert strategy.seeds == [40] * 4 + [41] * 4 + [42] * 4
    assert len(result.results) == len(seen) == 12
    em = result.metrics["exact_match"]
    assert em.value == 0.5 and em.n == 4 and em.low <= 0.5 <= em.high
    assert result.metrics["latency_ms"].value == pytest.approx(250.0)
    assert result.repeat_spread["exact_match"] == 0.0  # deterministic answers: no sampling variance
    timing = result.timing()
    assert timing["prompt_tokens_mean"] == 10 and timing["completion_tokens_mean"] == 2


def test_identical_strategies_are_not_significantly_different() -> None:
    cases = _cases(30)
    answers = {f"q{i}": Answer(text=f"a{i}" if i % 3 else "no") for i in range(30)}
    a = run(CannedStrategy(answers, name="a"), cases, scorer(), resamples=500)
    b = run(CannedStrategy(answers, name="b"), cases, scorer(), resamples=500)
    comparison = compare(a.case_means(), b.case_means(), k=2, alpha=0.05, resamples=500)
    em = comparison["exact_match"]
    assert em.result.test == "mcnemar" and em.result.p_value == 1.0 and not em.significant and not em.regressed
    assert comparison["token_f1"].result.test == "paired bootstrap" and comparison["token_f1"].result.p_value == 1.0


def test_a_clearly_worse_strategy_is_a_significant_regression() -> None:
    cases = _cases(40)
    good = run(CannedStrategy({f"q{i}": Answer(text=f"a{i}") for i in range(40)}), cases, scorer(), resamples=500)
    bad = run(CannedStrategy({f"q{i}": Answer(text=f"a{i}" if i < 10 else "x", latency_ms=1.0) for i in range(40)}),
              cases, scorer(), resamples=500)
    comparison = compare(good.case_means(), bad.case_means(), k=2, alpha=0.05, resamples=500)
    em = comparison["exact_match"]
    # 30 discordant pairs all one way: McNemar p = 2 * 0.5**30
    assert em.result.p_value == pytest.approx(2 * 0.5**30) and em.result.diff == pytest.approx(-0.75)
    assert em.significant and em.regressed
    # the same move in the good direction is significant but not a regression
    better = compare(bad.case_means(), good.case_means(), k=2, alpha=0.05, resamples=500)["exact_match"]
    assert better.significant and not better.regressed


class FailingStrategy(CannedStrategy):
    def __init__(self, fail_on: set[str] | None = None) -> None:
        super().__init__({})
        self.fail_on = fail_on

    def answer(self, query: str, *, seed: int | None = None) -> Answer:
        if self.fail_on is None or query in self.fail_on:
            raise BackendError("server down")
        return Answer(text="a0")


def test_a_dead_backend_stops_the_run_early() -> None:
    strategy = FailingStrategy()
    with pytest.raises(BackendError, match="first 5 cases"):
        run(strategy, _cases(50), scorer())


def test_single_failures_are_scored_as_empty_answers_with_a_warning() -> None:
    result = run(FailingStrategy({"q3"}), _cases(10), scorer(), resamples=200)
    failed = [r for r in result.results if r.error]
    assert [r.case_id for r in failed] == ["c3"] and failed[0].scores["exact_match"] == 0.0
    assert any("1 of 10 answers failed" in w for w in result.warnings)


def test_per_field_scores_give_intent_accuracy_and_slot_f1() -> None:
    case = EvalCase(case_id="n", question="play x by y", expected_json={
        "intent": "PlayMusic", "slots": {"artist": "y", "track": "x"}})
    answer = Answer(text='{"intent": "PlayMusic", "slots": {"artist": "y"}}')
    s = scorer().score(case, answer, retrieves=False)
    # intent right; slots: 1 predicted leaf, correct; 2 expected → P 1, R 0.5, F1 2/3
    assert s["field.intent"] == 1.0 and s["field.slots"] == pytest.approx(2 / 3)
    wrong = scorer().score(case, Answer(text='{"intent": "GetWeather"}'), retrieves=False)
    assert wrong["field.intent"] == 0.0 and wrong["field.slots"] == 0.0
    invalid = scorer().score(case, Answer(text="not json"), retrieves=False)
    assert invalid["field.intent"] == 0.0 and invalid["json_valid"] == 0.0
