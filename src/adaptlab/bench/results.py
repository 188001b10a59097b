"""A bench run as a typed record: the eval run it measured (`RunResult`) plus what only a bench has — its inputs,
stages, training-data check, query-log replay and the advice. `results.json` is its JSON; the report, the CLI
and the demo read it; `load_bench_result` validates a file (format 1 files are upgraded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from adaptlab.cost.records import AdviceRecord
from adaptlab.errors import InputError
from adaptlab.eval.results import (
    Estimate,
    MetricResult,
    PairedComparison,
    Record,
    RunResult,
    read_results_json,
    validate_result,
)


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


class TrainedAdapter(Record):
    """One adapter the bench trained (or reused) and what it scored on the eval cases."""

    label: str  # "25% of the data", "all the data, seed +1"
    share: float
    seed: int
    examples: int
    fingerprint: str
    reused: bool
    strategy: str  # the name it answered the eval cases as
    steps: int
    seconds: float
    tokens_per_second: float
    train_loss: list[tuple[int, float]] = []
    eval_loss: list[tuple[int, float]] = []
    task_metric_name: str = ""
    task_metric: list[tuple[int, float]] = []  # validation score at each evaluation
    best_step: int | None = None
    quality: MetricResult | None = None  # the workload's metric on the eval cases


class LearningCurveFit(Record):
    """quality = intercept + gain_per_doubling · log2(examples), with the gain's interval over cases."""

    gain_per_doubling: float
    low: float
    high: float
    intercept: float
    at_double: Estimate  # the fitted quality at twice the training set (one doubling: as far as the fit is trusted)
    examples: int
    rising: bool  # the gain's interval lies above 0: still improving at the full set


class ForgettingProbe(Record):
    """The base model and the adapter on another task's cases, with the same plain prompt."""

    cases_path: str
    metric: str
    base: MetricResult
    adapted: MetricResult
    comparison: PairedComparison | None  # adapted vs base, paired on the same cases


class FinetuningStudy(Record):
    """How much data and training the task needs: the learning curve, training-seed variance, how the checkpoints
    were chosen, what fine-tuning cost outside the task, and whether the verdict on it is settled."""

    strategy: str  # the fine-tuned strategy the study is about
    metric: str
    adapters: list[TrainedAdapter]  # the curve's points (ascending share), then the other seeds
    fit: LearningCurveFit | None
    quality: MetricResult | None = None  # the fine-tuned strategy's score (the mean over training seeds)
    baseline: str | None = None  # the best strategy that is not fine-tuned, the bar fine-tuning has to clear
    baseline_quality: MetricResult | None = None
    train_seeds: int = 1
    seed_spread: float | None = None  # std of the fine-tuned score across training seeds
    provisional: list[str] = []  # why the fine-tuned result is not settled (empty: it is)
    forgetting: ForgettingProbe | None = None

    @property
    def curve(self) -> list[TrainedAdapter]:
        """The learning curve's adapters (train.seed), smallest share first."""
        return sorted((a for a in self.adapters if a.seed == self.full.seed), key=lambda a: a.share)

    @property
    def full(self) -> TrainedAdapter:
        """The adapter the fine-tuned strategy answers with: all the data, train.seed."""
        return min((a for a in self.adapters if a.share == 1), key=lambda a: a.seed)

    def findings(self) -> list[str]:
        """What the study says, in sentences with their numbers (the report and the CLI show them)."""
        metric, out = self.metric, []
        fit = self.fit
        if fit is not None:
            gain = f"{fit.gain_per_doubling:+.3f} {metric} per doubling of the data [{fit.low:+.3f}, {fit.high:+.3f}]"
            doubled = fit.at_double
            if fit.rising:
                out.append(f"Still improving at the full set ({fit.examples} examples): {gain}; twice the data is "
                           f"likely to reach {doubled.value or 0:.3f} [{doubled.low or 0:.3f}, "
                           f"{doubled.high or 0:.3f}] (one doubling extrapolated).")
            elif fit.high <= 0:
                out.append(f"Not improving with more data at this size: {gain}.")
            else:
                out.append(f"No clear gain from more data at {fit.examples} examples: {gain} includes none.")
        pooled = self.quality
        bar = self.baseline_quality
        if self.baseline and bar is not None and bar.value is not None and pooled is not None \
                and pooled.value is not None:
            if pooled.value >= bar.value:
                crossing = ""
                if fit is not None and fit.gain_per_doubling > 0:
                    needed = 2 ** ((bar.value - fit.intercept) / fit.gain_per_doubling)
                    crossing = f"; the fitted line crosses it at about {needed:,.0f} examples"
                out.append(f"Fine-tuning overtakes {self.baseline} at {self.full.examples} examples: "
                           f"{pooled.value:.3f} against {bar.value:.3f}{crossing}.")
            elif fit is not None and fit.gain_per_doubling > 0:
                needed = 2 ** ((bar.value - fit.intercept) / fit.gain_per_doubling)
                times = needed / max(fit.examples, 1)
                reach = (f"about {needed:,.0f} examples ({times:,.1f}× the data)" if times <= 1000
                         else "more than 1000× the data")
                out.append(f"At the fitted rate fine-tuning would reach {self.baseline}'s {bar.value:.3f} at "
                           f"{reach} — far beyond the measured range, so only a hint.")
            else:
                out.append(f"The curve does not rise: more examples of this kind are unlikely to close the gap to "
                           f"{self.baseline} ({bar.value:.3f}).")
        if self.train_seeds > 1 and self.seed_spread is not None:
            out.append(f"{self.train_seeds} training seeds: the fine-tuned score is their mean, spread "
                       f"{self.seed_spread:.3f} (standard deviation) across seeds; its interval includes it.")
        full = self.full
        if full.task_metric:
            kept = f"step {full.best_step}" if full.best_step is not None else "the last step"
            out.append(f"Checkpoint kept at {kept} of {full.steps} by validation {full.task_metric_name} "
                       f"(" + ", ".join(f"{v:.2f} at {s}" for s, v in full.task_metric) + ").")
        probe = self.forgetting
        if probe is not None:
            test = probe.comparison
            change = (f"diff {test.diff:+.3f} [{test.low:+.3f}, {test.high:+.3f}], p = {test.p_value:.2g}"
                      if test is not None and test.diff is not None and test.low is not None
                      and test.high is not None and test.p_value is not None else "no paired test")
            verdict = ("fine-tuning cost ability outside the task" if test is not None and test.regressed
                       else "no significant loss outside the task")
            out.append(f"Forgetting probe ({probe.base.n} cases of another task, {probe.metric}): base "
                       f"{probe.base.value or 0:.3f} → adapter {probe.adapted.value or 0:.3f} ({change}): {verdict}.")
        return out


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
    finetuning: FinetuningStudy | None = None

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
                hit_rate=entry.traffic_hit_rate.value if entry.traffic_hit_rate else None,
                provisional=entry.provisional))
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
    provisional: str = ""  # why its quality is not settled (an unconverged fine-tuned adapter)


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
