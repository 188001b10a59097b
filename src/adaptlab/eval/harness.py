"""One harness for every strategy: answer each case, score it, aggregate with bootstrap CIs, compare.

`run(strategy, cases, scorer)` → `StrategyRun` (per-case results + metric intervals). Nothing here writes
files or talks to MLflow: `session.py` does that, so tests and benchmarks can call the harness directly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from adaptlab.errors import AdaptlabError, BackendError
from adaptlab.eval.cases import EvalCase
from adaptlab.eval.metrics import (
    citation_precision_recall,
    exact_match,
    field_scores,
    groundedness,
    is_refusal,
    label_correct,
    ndcg_at_k,
    parse_json_output,
    recall_at_k,
    reciprocal_rank,
    schema_valid,
    token_f1,
)
from adaptlab.eval.stats import (
    Interval,
    PairedResult,
    bootstrap_ci,
    mcnemar,
    paired_bootstrap,
    repeat_spread,
)
from adaptlab.strategies.base import Strategy, final_answer, timed_stream, with_standalone
from adaptlab.types import Answer, Usage

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    better: str | None  # "higher" | "lower" | None (neither direction is a regression)
    gate: bool  # a significant move in the bad direction fails `--compare`
    bounded: bool = True  # values lie in [0, 1]
    binary: bool = False  # a per-case 0/1 outcome: paired comparisons use McNemar's test


def metric_specs(k: int) -> dict[str, MetricSpec]:
    """Every metric the harness can report, in display order (README documents each)."""
    specs = [
        MetricSpec("exact_match", "Answer equals a reference answer after SQuAD normalisation", "higher", True,
                   binary=True),
        MetricSpec("token_f1", "Token-overlap F1 with the best-matching reference answer (SQuAD)", "higher", True),
        MetricSpec("accuracy", "Predicted label equals the case's label", "higher", True, binary=True),
        MetricSpec("json_valid", "Output parses as JSON", "higher", True, binary=True),
        MetricSpec("schema_valid", "Output is JSON satisfying the case's JSON Schema", "higher", True, binary=True),
        MetricSpec("field_accuracy", "Share of expected JSON fields predicted with the right value", "higher", True),
        MetricSpec("field_f1", "F1 of predicted vs expected JSON fields (leaf paths with equal values)", "higher",
                   True),
        MetricSpec(f"recall_at_{k}", f"Share of gold sources among the top {k} retrieved documents", "higher", True),
        MetricSpec("mrr", "Reciprocal rank of the first gold document retrieved", "higher", True),
        MetricSpec(f"ndcg_at_{k}", f"nDCG@{k} with binary relevance of gold documents", "higher", True),
        MetricSpec("citation_precision", "Share of cited documents that are gold sources (cases citing something)",
                   "higher", True),
        MetricSpec("citation_recall", "Share of gold sources the answer cites", "higher", True),
        MetricSpec("groundedness", "Share of answer sentences supported by the cited chunks, or by the sources "
                   "given when nothing is cited (MiniLM cosine proxy, not entailment)", "higher", True),
        MetricSpec("refusal_rate", "Share of answers that decline to answer", None, False, binary=True),
        MetricSpec("judge_score", "LLM judge's rubric score, scaled from 1–5 to 0–1", "higher", True),
        MetricSpec("cache_hit_rate", "Share of answers served from the answer cache (strategies of kind cached)",
                   None, False, binary=True),
        MetricSpec("latency_ms", "Wall time of one answer, milliseconds", "lower", False, bounded=False),
        MetricSpec("prompt_tokens", "Prompt tokens of one answer", "lower", False, bounded=False),
        MetricSpec("completion_tokens", "Completion tokens of one answer", "lower", False, bounded=False),
    ]
    return {spec.name: spec for spec in specs}


FIELD_PREFIX = "field."  # per top-level JSON field: field.<key>


def spec_for(metric: str, k: int) -> MetricSpec | None:
    """The spec of a fixed metric, or of a per-field one (field.<key>), which gates like field_f1."""
    spec = metric_specs(k).get(metric)
    if spec is None and metric.startswith(FIELD_PREFIX):
        key = metric.removeprefix(FIELD_PREFIX)
        spec = MetricSpec(metric, f"JSON field {key!r}: value right (a scalar) or F1 of its leaves (an object/list)",
                          "higher", True)
    return spec


def display_name(metric: str) -> str:
    return metric.replace("_at_", "@")


@dataclass
class CaseResult:
    case_id: str
    repeat: int
    seed: int
    question: str
    expected: str
    answer: str
    refused: bool
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cache_status: str
    cited: list[str]  # paths of the documents the answer cites
    retrieved: list[str]  # paths of the documents retrieval ranked, best first
    scores: dict[str, float | None]
    error: str | None = None
    retries: int = 0  # model requests retried (429/5xx/timeouts) before the answer came
    synthetic: bool = False  # a drafted case (`cases generate`), not a hand-written one
    train_seed: int = 0  # a fine-tuned strategy benched with several training seeds: the adapter's seed offset
    first_token_ms: float | None = None  # time to the answer's first streamed piece of text (None: not streamed)
    standalone_question: str | None = None  # a multi-turn case's question as the strategy made it standalone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StrategyRun:
    name: str
    params: dict[str, Any]
    results: list[CaseResult]
    metrics: dict[str, Interval]
    repeat_spread: dict[str, float]  # std of each metric's mean across repeats (sampling variance)
    seconds: float
    repeats: int
    run_id: str = ""
    warnings: list[str] = field(default_factory=list)

    def case_means(self) -> dict[str, dict[str, float | None]]:
        """case_id → metric → mean over repeats (None when the metric does not apply to that case)."""
        return case_means(self.results)

    def timing(self) -> dict[str, float]:
        latencies = [r.latency_ms for r in self.results]
        first_tokens = [r.first_token_ms for r in self.results if r.first_token_ms is not None]
        answered = max(len(self.results), 1)
        return {
            "seconds_per_case": self.seconds / answered,
            "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else math.nan,
            "latency_ms_p95": float(np.percentile(latencies, 95)) if latencies else math.nan,
            "first_token_ms_p50": float(np.percentile(first_tokens, 50)) if first_tokens else math.nan,
            "first_token_ms_p95": float(np.percentile(first_tokens, 95)) if first_tokens else math.nan,
            "prompt_tokens_mean": sum(r.prompt_tokens for r in self.results) / answered,
            "completion_tokens_mean": sum(r.completion_tokens for r in self.results) / answered,
        }


    def cache_split(self) -> dict[str, dict[str, Any]]:
        """Each metric's mean on cache hits and on misses (cached strategies): does a hit answer as well as the
        wrapped strategy would have? Empty when nothing was served from the cache."""
        hits = [r for r in self.results if r.cache_status == "hit" and r.error is None]
        misses = [r for r in self.results if r.cache_status == "miss" and r.error is None]
        if not hits:
            return {}
        split: dict[str, dict[str, Any]] = {}
        for metric in ordered_metrics({m for r in hits + misses for m in r.scores}):
            if metric == "cache_hit_rate":
                continue
            row: dict[str, Any] = {}
            for label, group in (("hit", hits), ("miss", misses)):
                scores = [r.scores.get(metric) for r in group]
                values = [v for v in scores if v is not None and not math.isnan(v)]
                row[label] = sum(values) / len(values) if values else None
                row[f"{label}_n"] = len(values)
            split[metric] = row
        return split


def case_means(results: Sequence[CaseResult]) -> dict[str, dict[str, float | None]]:
    grouped: dict[str, dict[str, list[float]]] = {}
    for result in results:
        per_case = grouped.setdefault(result.case_id, {})
        for metric, value in result.scores.items():
            bucket = per_case.setdefault(metric, [])
            if value is not None and not math.isnan(value):
                bucket.append(value)
    return {case_id: {m: (sum(v) / len(v) if v else None) for m, v in metrics.items()}
            for case_id, metrics in grouped.items()}


class Scorer:
    """Scores one answer against one case. Holds what scoring needs beyond the pair: the embedder (for
    groundedness), k, the refusal text, the label set and an optional judge."""

    def __init__(self, *, k: int, refusal_text: str, embed: Embed | None, groundedness_threshold: float,
                 labels: Sequence[str] = (), judge: Any = None) -> None:
        self.k = k
        self.refusal_text = refusal_text
        self.embed = embed
        self.threshold = groundedness_threshold
        self.labels = tuple(labels)
        self.judge = judge

    def score(self, case: EvalCase, answer: Answer, *, retrieves: bool) -> dict[str, float | None]:
        scores: dict[str, float | None] = {}
        text = answer.text
        if case.answers:
            scores["exact_match"] = exact_match(text, case.answers)
            scores["token_f1"] = token_f1(text, case.answers)
        if case.label is not None:
            scores["accuracy"] = label_correct(text, case.label, self.labels)
        if case.expected_json is not None or case.schema is not None:
            ok, value = parse_json_output(text)
            scores["json_valid"] = float(ok)
            if case.schema is not None:
                scores["schema_valid"] = float(ok and schema_valid(value, case.schema))
            if case.expected_json is not None:
                fields = field_scores(value if ok else None, case.expected_json)
                scores["field_accuracy"] = fields.accuracy
                scores["field_f1"] = fields.f1
                scores.update(_per_field_scores(value if ok else None, case.expected_json))
        if retrieves:
            self._score_retrieval(case, answer, scores)
        scores["refusal_rate"] = float(answer.refused or is_refusal(text, self.refusal_text))
        if self.judge is not None and case.answers:
            scores["judge_score"] = self.judge.score(case.question, text, case.answers)
        if answer.cache_status in ("hit", "miss"):
            scores["cache_hit_rate"] = float(answer.cache_status == "hit")
        scores["latency_ms"] = answer.latency_ms
        scores["prompt_tokens"] = float(answer.usage.prompt_tokens)
        scores["completion_tokens"] = float(answer.usage.completion_tokens)
        return scores

    def _score_retrieval(self, case: EvalCase, answer: Answer, scores: dict[str, float | None]) -> None:
        cited_chunks = [answer.retrieved[c.number - 1] for c in answer.citations
                        if 0 < c.number <= len(answer.retrieved)]
        if case.gold_sources:
            ranked = [(s.chunk.doc_id, s.chunk.path) for s in answer.search_results]
            scores[f"recall_at_{self.k}"] = recall_at_k(ranked, case.gold_sources, self.k)
            scores["mrr"] = reciprocal_rank(ranked, case.gold_sources)
            scores[f"ndcg_at_{self.k}"] = ndcg_at_k(ranked, case.gold_sources, self.k)
            cited = [(s.chunk.doc_id, s.chunk.path) for s in cited_chunks]
            precision, recall = citation_precision_recall(cited, case.gold_sources)
            scores["citation_precision"] = precision
            scores["citation_recall"] = recall
        if not answer.refused and self.embed is not None:
            # Evidence: the cited chunks; an answer citing none is checked against every source it was given
            # (small models rarely write [n] markers, and "cites nothing" is what citation recall measures).
            evidence = cited_chunks or list(answer.retrieved)
            scores["groundedness"] = groundedness(answer.text,  # markers are dropped there
                                                  [s.chunk.text for s in evidence], self.embed, self.threshold)


def _per_field_scores(predicted: Any, expected: Any) -> dict[str, float]:
    """field.<key> for each top-level key of an expected object: exact value for a scalar (accuracy), leaf F1
    for an object or list — e.g. field.intent (intent accuracy) and field.slots (slot F1) for an NLU task."""
    if not isinstance(expected, dict):
        return {}
    predicted_fields = predicted if isinstance(predicted, dict) else {}
    scores = {}
    for key, value in expected.items():
        got = predicted_fields.get(key)
        result = field_scores(got, value) if key in predicted_fields else field_scores(None, value)
        scores[f"{FIELD_PREFIX}{key}"] = result.f1 if isinstance(value, (dict, list)) else result.accuracy
    return scores


def expected_text(case: EvalCase) -> str:
    if case.answers:
        return " | ".join(case.answers)
    if case.expected_json is not None:  # the fuller target when a case has both (e.g. intent + slots)
        return json.dumps(case.expected_json, ensure_ascii=False)
    if case.label is not None:
        return case.label
    return ""


OnResult = Callable[[CaseResult], None]

_ABORT_AFTER_FAILURES = 5  # this many failed cases in a row, from the start: the backend is down, stop


def run(strategy: Strategy, cases: Sequence[EvalCase], scorer: Scorer, *, repeats: int = 1, seed: int = 0,
        on_result: OnResult | None = None, resamples: int = 2000, confidence: float = 0.95, concurrency: int = 1,
        finished: Sequence[CaseResult] = ()) -> StrategyRun:
    """Answer every case `repeats` times (repeat r with seed + r), score, and aggregate.

    concurrency: answers in flight at once, capped by the strategy's `parallel_answers` (a local model or a cache
    answers one at a time). Scoring stays on this thread, and the results are kept in case order, so the scores
    do not depend on the concurrency. finished: results of an interrupted run of the same strategy (`--resume`):
    those (case, repeat) pairs are not answered again."""
    retrieves = strategy.retrieves
    done = {(r.case_id, r.repeat) for r in finished}
    work = [(repeat, case) for repeat in range(repeats) for case in cases if (case.case_id, repeat) not in done]
    new: dict[tuple[int, int], CaseResult] = {}
    failures: list[str] = []
    started = time.perf_counter()
    order = {case.case_id: index for index, case in enumerate(cases)}

    def record(repeat: int, case: EvalCase, answer: Answer, error: str | None) -> None:
        result = _score(case, answer, error, scorer, retrieves=retrieves, repeat=repeat, seed=seed + repeat)
        new[(repeat, order[case.case_id])] = result
        if on_result:
            on_result(result)  # as soon as it is scored: a run stopped later keeps it
        if result.error:
            failures.append(f"{case.case_id}: {result.error}")
            if len(failures) == len(new) >= _ABORT_AFTER_FAILURES:
                raise BackendError(f"Strategy {strategy.name!r} failed on the first {len(failures)} cases "
                                   f"— last error: {result.error}")

    workers = max(1, min(concurrency, strategy.parallel_answers or concurrency, len(work) or 1))
    if workers == 1:
        for repeat, case in work:
            record(repeat, case, *_answer(strategy, case, seed + repeat))
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"answer-{strategy.name}")
        futures = {pool.submit(_answer, strategy, case, seed + repeat): (repeat, case) for repeat, case in work}
        recorded: set[Future[tuple[Answer, str | None]]] = set()
        try:
            for future in as_completed(futures):
                recorded.add(future)
                record(*futures[future], *future.result())
        except KeyboardInterrupt:
            # Ctrl-C: answers not started are dropped; those already being computed finish and are kept, so a
            # resumed run does not ask for them again.
            for future in futures:
                future.cancel()
            for future in as_completed([f for f in futures if not f.cancelled() and f not in recorded]):
                if future.exception() is None:
                    record(*futures[future], *future.result())
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    results = sorted([*finished, *new.values()], key=lambda r: (r.repeat, order.get(r.case_id, len(order))))
    seconds = time.perf_counter() - started
    run_result = aggregate(strategy.name, strategy.describe(), results, seconds=seconds, repeats=repeats,
                           resamples=resamples, confidence=confidence, seed=seed)
    if failures:
        run_result.warnings.append(f"{strategy.name}: {len(failures)} of {len(new)} answers failed and were "
                                   f"scored as empty answers; first: {failures[0]}")
    retried = sum(r.retries for r in new.values())
    if retried:
        run_result.warnings.append(f"{strategy.name}: {retried} model requests were retried (rate limits, "
                                   f"server errors or timeouts) before their answers came")
    return run_result


def _answer(strategy: Strategy, case: EvalCase, seed: int) -> tuple[Answer, str | None]:
    """One answer, streamed as `serve` streams it (so its time to first token is measured); a failed answer is a
    scored failure, not a lost run."""
    try:
        started = time.perf_counter()
        # A multi-turn case: answered as serve answers a follow-up.
        standalone = strategy.standalone(case.question, case.history) if case.history else None
        question = standalone.question if standalone is not None else case.question
        answer = final_answer(timed_stream(strategy.stream(question, seed=seed), started))
        return with_standalone(answer, standalone), None
    except AdaptlabError as exc:
        return Answer(text="", usage=Usage()), str(exc)


def _score(case: EvalCase, answer: Answer, error: str | None, scorer: Scorer, *, retrieves: bool, repeat: int,
           seed: int) -> CaseResult:
    scores = scorer.score(case, answer, retrieves=retrieves)
    return CaseResult(
        case_id=case.case_id, repeat=repeat, seed=seed, question=case.question, expected=expected_text(case),
        answer=answer.text, refused=answer.refused, latency_ms=answer.latency_ms,
        prompt_tokens=answer.usage.prompt_tokens, completion_tokens=answer.usage.completion_tokens,
        cache_status=answer.cache_status,
        cited=[c.path for c in answer.citations],
        retrieved=list(dict.fromkeys(s.chunk.path for s in answer.search_results)),
        scores=scores, error=error, retries=answer.retries, synthetic="synthetic" in case.tags,
        first_token_ms=answer.first_token_ms, standalone_question=answer.standalone_question,
    )


def aggregate(name: str, params: dict[str, Any], results: Sequence[CaseResult], *, seconds: float, repeats: int,
              resamples: int, confidence: float, seed: int) -> StrategyRun:
    """Metric intervals over cases (each case's mean over repeats), plus the spread across repeats."""
    means = case_means(results)
    metric_names = ordered_metrics({m for per_case in means.values() for m in per_case})
    metrics = {
        metric: bootstrap_ci([per_case.get(metric) for per_case in means.values()], resamples=resamples,
                             confidence=confidence, seed=seed)
        for metric in metric_names
    }
    spread: dict[str, float] = {}
    if repeats > 1:
        for metric in metric_names:
            per_repeat = []
            for repeat in range(repeats):
                scores = [r.scores.get(metric) for r in results if r.repeat == repeat]
                values = [v for v in scores if v is not None and not math.isnan(v)]
                if values:
                    per_repeat.append(sum(values) / len(values))
            spread[metric] = repeat_spread(per_repeat)
    return StrategyRun(name=name, params=params, results=list(results), metrics=metrics, repeat_spread=spread,
                       seconds=seconds, repeats=repeats)


def ordered_metrics(names: set[str]) -> list[str]:
    order = {name: i for i, name in enumerate(metric_specs(_k_from(names)))}
    # per-field metrics right after field_f1
    field_slot = order.get("field_f1", len(order)) + 0.5
    return sorted(names, key=lambda n: (field_slot if n.startswith(FIELD_PREFIX) else order.get(n, len(order)), n))


def _k_from(names: set[str]) -> int:
    for name in names:
        if name.startswith("recall_at_"):
            return int(name.removeprefix("recall_at_"))
    return 5


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    result: PairedResult
    significant: bool
    regressed: bool  # significant and in the metric's bad direction (only for gating metrics)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.result), "significant": self.significant, "regressed": self.regressed}


def compare(a: dict[str, dict[str, float | None]], b: dict[str, dict[str, float | None]], *, k: int,
            alpha: float, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
            ) -> dict[str, MetricComparison]:
    """Paired comparison of two per-case score tables (case_id → metric → value) on their common cases.

    Accuracy-like metrics with 0/1 outcomes use McNemar's exact test; everything else a paired bootstrap.
    `regressed` marks a significant change of b against a in the metric's bad direction."""
    common = [case_id for case_id in a if case_id in b]
    metrics = ordered_metrics({m for case_id in common for m in a[case_id]} &
                               {m for case_id in common for m in b[case_id]})
    comparisons: dict[str, MetricComparison] = {}
    for metric in metrics:
        values_a = [a[c].get(metric) for c in common]
        values_b = [b[c].get(metric) for c in common]
        spec = spec_for(metric, k)
        if spec is not None and spec.binary and _binary(values_a) and _binary(values_b):
            result = mcnemar(values_a, values_b, resamples=resamples, confidence=confidence, seed=seed)
        else:
            result = paired_bootstrap(values_a, values_b, resamples=resamples, confidence=confidence, seed=seed)
        if result.n == 0:
            continue
        significant = not math.isnan(result.p_value) and result.p_value < alpha
        bad_direction = spec is not None and spec.better is not None and (
            (spec.better == "higher" and result.diff < 0) or (spec.better == "lower" and result.diff > 0))
        regressed = significant and bad_direction and spec is not None and spec.gate
        comparisons[metric] = MetricComparison(metric, result, significant, regressed)
    return comparisons


def _binary(values: Sequence[float | None]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(v in (0.0, 1.0) for v in present)
