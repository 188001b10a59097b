"""A bench run as a typed record: the eval run it measured (`RunResult`) plus what only a bench has — its inputs,
stages, training-data check, query-log replay and the advice. `results.json` is its JSON; the report, the CLI
and the demo read it; `load_bench_result` validates a file (format 1 files are upgraded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from adaptlab.cost.records import AdviceRecord
from adaptlab.errors import InputError
from adaptlab.eval.results import Record, RunResult, read_results_json, validate_result


class SubReport(BaseModel):
    """A report another command also writes (`data check`, `cache sweep`): the fields the bench report reads
    are typed, the rest is kept as written."""

    model_config = ConfigDict(extra="allow")


class StageRecord(Record):
    name: str
    status: str  # built | reused | skipped | done
    seconds: float
    detail: str = ""


class Machine(Record):
    cpu: str
    cores: int
    threads: int
    python: str
    adaptlab: str


class Models(Record):
    generator: str
    embedder: str


class DocumentsInput(Record):
    paths: list[str]
    documents: int
    chunks: int


class FileInput(Record):
    path: str
    sha256: str = ""
    n: int


class QueryLogInput(Record):
    path: str
    n_queries: int
    distinct: int


class WorkloadInput(Record):
    path: str


class Inputs(Record):
    documents: DocumentsInput | None
    cases: FileInput
    train: FileInput | None
    query_log: QueryLogInput | None
    workload: WorkloadInput


class SkippedStrategy(Record):
    name: str
    reason: str


class Measurement(Record):
    """How one kind of number in the report was measured."""

    what: str
    how: str


class Dropped(SubReport):
    duplicate: int
    leak: int


class DataSet(SubReport):
    role: str
    path: str
    records: int
    version: str
    kind: str | None
    invalid: int


class Lengths(SubReport):
    min: int
    p50: int
    p95: int
    max: int
    max_tokens: int
    over_limit: int


class Finding(SubReport):
    check: str
    severity: str
    message: str
    fix: str | None = None
    where: str | None = None


class DataCheck(SubReport):
    """`adaptlab data check` on the training data (its `to_dict()`)."""

    ready: bool
    reasons: list[str]
    examples: int
    clean: int
    min_examples: int
    has_eval: bool
    invalid_lines: int
    dropped: Dropped
    sets: list[DataSet]
    findings: list[Finding]
    lengths: Lengths | None = None


class Rate(SubReport):
    """k of n with a Wilson interval (adaptlab.cache.sweep.Rate)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    k: int | None = None
    n: int | None = None


class PairsRow(SubReport):
    threshold: float
    guard: bool
    false_hit_rate: Rate


class PairsRecommendation(SubReport):
    no_guard: str | None = None
    guard: str | None = None


class PairsSweep(SubReport):
    """`adaptlab cache sweep` on labelled question pairs (its `to_dict()`)."""

    source: str
    n_non_duplicates: int
    target_false_hit_rate: float | None
    recommended_threshold: float | None
    recommended_threshold_guard: float | None
    recommendation: PairsRecommendation | None = None
    rows: list[PairsRow]


class SweepPoint(Record):
    """The replayed query log's hit rate at one similarity threshold."""

    threshold: float
    hit_rate: Rate
    hits: int
    n: int


class Repeated(Record):
    question: str
    count: int


class LogSummary(Record):
    verdict: str
    exact_repeat_rate: Rate
    top_repeated: list[Repeated]


class WarmRecord(Record):
    questions: int
    seconds: float | None = None


class CacheMeasurement(Record):
    """The answer cache under measurement: how it was warmed, its hit rate along the threshold on the replayed
    query log, and (with labelled pairs) its false-hit rate."""

    mode: str
    threshold: float
    guard: bool
    warm: WarmRecord
    sweep: list[SweepPoint]
    pairs_sweep: PairsSweep | None
    n_queries: int
    distinct: int
    log: LogSummary


class BenchResult(RunResult):
    kind: Literal["adaptlab-bench"] = "adaptlab-bench"
    title: str
    config_path: str
    reproduce: str  # the command that re-runs this bench
    out_dir: str
    seconds: float
    peak_rss_mb: float | None = None
    machine: Machine
    models: Models
    quality_metric: str | None
    inputs: Inputs
    stages: list[StageRecord]
    skipped_strategies: list[SkippedStrategy]
    measurement: list[Measurement]
    cache: CacheMeasurement | None
    data_check: DataCheck | None
    advice: AdviceRecord | None

    def summary(self) -> BenchSummary:
        """The headline numbers (what `bench --json` prints and the demo summarises)."""
        rows = []
        for entry in self.strategies:
            quality = entry.metric(self.quality_metric or "")
            priced = self.advice.ranked(entry.name) if self.advice else None
            rows.append(StrategySummary(
                name=entry.name, rank=priced.rank if priced else None,
                quality=quality.value if quality else None, quality_low=quality.low if quality else None,
                quality_high=quality.high if quality else None,
                latency_ms_p50=entry.timing.latency_ms_p50, latency_ms_p95=entry.timing.latency_ms_p95,
                usd_per_1k_answers=1000 * priced.tco.usd_per_answer if priced else None,
                tco_usd=priced.total_usd if priced else None,
                hit_rate=entry.traffic_hit_rate.value if entry.traffic_hit_rate else None))
        advice = self.advice
        return BenchSummary(
            title=self.title, recommendation=advice.recommendation if advice else None, metric=self.quality_metric,
            months=advice.months if advice else None, queries_per_day=advice.queries_per_day if advice else None,
            seconds=self.seconds, peak_rss_mb=self.peak_rss_mb, strategies=rows, out_dir=self.out_dir)


class StrategySummary(Record):
    name: str
    rank: int | None
    quality: float | None
    quality_low: float | None
    quality_high: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    usd_per_1k_answers: float | None
    tco_usd: float | None
    hit_rate: float | None


class BenchSummary(Record):
    title: str
    recommendation: str | None
    metric: str | None
    months: int | None
    queries_per_day: float | None
    seconds: float
    peak_rss_mb: float | None
    strategies: list[StrategySummary]
    out_dir: str


def load_bench_result(path: Path) -> BenchResult:
    data = read_results_json(path)
    if data.get("kind") != "adaptlab-bench":
        raise InputError(str(path), None, f"a {data.get('kind')!r} results file, not a bench run's",
                         "pass the results.json an `adaptlab bench` run wrote")
    return validate_result(BenchResult, _upgrade_bench_from_format_1(data), path)


def _upgrade_bench_from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 bench file's cache block named the warm-up `warm: {questions}` like format 2; its strategies
    carried family and cached already; only the family name of the fine-tuned + RAG strategy changed."""
    advice = data.get("advice")
    if isinstance(advice, dict):
        for entry in advice.get("strategies") or []:
            for holder in (entry, entry.get("tco") or {}):
                if holder.get("family") == "hybrid":
                    holder["family"] = "finetuned_rag"
    return data
