"""What a bench (eval) run measured, in the shape the advisor needs: per strategy its family, tokens per
generated answer, latency, cache hit rate, and per-case quality scores for paired significance tests.

Built from the typed run record (`adaptlab.eval.results.RunResult`): in process by `adaptlab bench`, or from a
results.json by `adaptlab advise --from` (its path, its folder, or its id under <home>/eval/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.errors import InputError
from adaptlab.eval.results import (
    Estimate,
    Family,
    GeneratorRecord,
    RunResult,
    StrategyResult,
    read_results_json,
    validate_result,
)

# Quality metrics in order of preference when the workload names none: a judge's rubric score when there is
# one, then task accuracy, then answer overlap.
QUALITY_PREFERENCE = ("judge_score", "accuracy", "token_f1", "field_f1", "schema_valid", "exact_match")


@dataclass(frozen=True)
class Quality:
    metric: str
    value: float
    low: float | None
    high: float | None
    n: int
    measured: bool  # False: declared in the workload (an estimate)
    per_case: dict[str, float | None] = field(default_factory=dict, compare=False)  # case_id → score

    def show(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class MeasuredStrategy:
    name: str
    family: Family
    cached: bool
    wraps: str | None  # a cached strategy's inner strategy
    prompt_tokens: float  # per generated answer (cache hits excluded)
    completion_tokens: float
    seconds_per_answer: float  # mean latency of generated answers
    hit_rate: float | None  # cached strategies: share of cases served from the cache, or of the replayed log
    metrics: dict[str, Estimate]
    per_case: dict[str, dict[str, float | None]]  # case_id → metric → mean over repeats
    hit_rate_source: str = "measured in the run"
    generator: str = "default"  # the model it answered with ("default": [generator])
    provisional: str = ""  # why its quality is not settled (see StrategyResult.provisional)

    @classmethod
    def of(cls, entry: StrategyResult, where: str) -> MeasuredStrategy:
        from adaptlab.eval.harness import case_means

        if entry.family is None:
            raise InputError(where, None, f"strategy {entry.name!r} has kind {entry.params.get('kind')!r}, which "
                             f"the cost model cannot price", "leave it out of the run, or re-run it with a kind "
                             "the cost model knows (prompt, rag, finetuned, finetuned_rag, or cached over one)")
        results = entry.cases
        generated = [r for r in results if r.cache_status != "hit" and r.error is None] or results
        hit_rate, hit_rate_source = None, "measured in the run"
        traffic = entry.traffic_hit_rate
        if entry.cached and traffic is not None and traffic.value is not None:
            # A bench replays the team's query log: its hit rate is the traffic's, not the eval cases'.
            hit_rate, hit_rate_source = traffic.value, traffic.source
        elif entry.cached and results:
            hit_rate = sum(r.cache_status == "hit" for r in results) / len(results)
        count = max(len(generated), 1)
        return cls(
            name=entry.name, family=entry.family, cached=entry.cached, wraps=entry.wraps,
            prompt_tokens=sum(r.prompt_tokens for r in generated) / count,
            completion_tokens=sum(r.completion_tokens for r in generated) / count,
            seconds_per_answer=sum(r.latency_ms for r in generated) / count / 1000.0,
            hit_rate=hit_rate, metrics=dict(entry.metrics), per_case=case_means(results),
            hit_rate_source=hit_rate_source, generator=entry.generator, provisional=entry.provisional)


@dataclass(frozen=True)
class BenchRun:
    path: Path | None  # the results.json it was read from; None when measured in this process
    run_id: str
    n_cases: int
    strategies: list[MeasuredStrategy]
    significance: float
    training_seconds: float | None = None  # one training run of the evaluated adapter, on the bench machine
    deployments: dict[str, GeneratorRecord] = field(default_factory=dict)  # the run's models and their prices

    def strategy(self, name: str) -> MeasuredStrategy | None:
        return next((s for s in self.strategies if s.name == name), None)

    @property
    def where(self) -> str:
        return str(self.path) if self.path else f"run {self.run_id}"


def find_run(spec: str, home: Path | None) -> Path:
    """results.json from a path, a run folder, or an eval id under <home>/eval/."""
    candidates = [Path(spec).expanduser()]
    if home is not None:
        candidates.append(home / "eval" / spec)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if (candidate / "results.json").is_file():
            return candidate / "results.json"
    where = f" or {home / 'eval' / spec}" if home is not None else ""
    raise InputError(spec, None, f"no bench run here (looked for results.json at {candidates[0]}{where})",
                     "pass the results.json of an `adaptlab eval` run, its folder, or its run id")


def evidence_of(result: RunResult, path: Path | None = None) -> BenchRun:
    """The cost model's view of a run record."""
    where = str(path) if path else f"run {result.run_id}"
    strategies = [MeasuredStrategy.of(entry, where) for entry in result.strategies]
    if not strategies:
        raise InputError(where, None, "the run has no strategies", "run `adaptlab eval` with --strategy")
    return BenchRun(path, result.run_id, result.n_cases, strategies, result.significance, result.training_seconds,
                    dict(result.generators))


def load_run(path: Path) -> BenchRun:
    """An eval's or a bench's results.json (any format this version reads), as the cost model's evidence. Only
    the run part is read: a bench's report sections are not the cost model's input."""
    data = read_results_json(path)
    run_part = {key: value for key, value in data.items() if key in RunResult.model_fields}
    return evidence_of(validate_result(RunResult, run_part, path), path)


def choose_metric(run: BenchRun, requested: str) -> str | None:
    """The requested metric, or the first preferred one every strategy measured."""
    if requested:
        if all(_value(s.metrics.get(requested)) is None for s in run.strategies):
            known = sorted({m for s in run.strategies for m in s.metrics})
            raise InputError(run.where, None, f"no strategy in the run measured {requested!r}",
                             f"set workload.quality_metric to one of {', '.join(known)}")
        return requested
    for metric in QUALITY_PREFERENCE:
        if all(_value(s.metrics.get(metric)) is not None for s in run.strategies):
            return metric
    return None


def _value(entry: Estimate | None) -> float | None:
    return None if entry is None else entry.value


def quality_of(strategy: MeasuredStrategy, metric: str) -> Quality | None:
    entry = strategy.metrics.get(metric)
    if entry is None or entry.value is None:
        return None
    return Quality(metric, entry.value, entry.low, entry.high, entry.n, True,
                   {case: scores.get(metric) for case, scores in strategy.per_case.items()})
