"""What a bench (eval) run measured, in the shape the advisor needs: per strategy its family, tokens per
generated answer, latency, cache hit rate, and per-case quality scores for paired significance tests.

A run is an eval's results.json: `--from` takes its path, its folder, or its id under <home>/eval/.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptlab.errors import InputError

# The eval harness's strategy kinds → the cost model's families.
KIND_FAMILY = {"prompt": "prompt", "rag": "rag", "finetuned": "finetuned", "finetuned_rag": "hybrid"}
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
    family: str
    cached: bool
    wraps: str | None  # a cached strategy's inner strategy
    prompt_tokens: float  # per generated answer (cache hits excluded)
    completion_tokens: float
    seconds_per_answer: float  # mean latency of generated answers
    hit_rate: float | None  # cached strategies: share of cases served from the cache, or of the replayed log
    metrics: dict[str, dict[str, Any]]  # metric → {value, low, high, n}
    per_case: dict[str, dict[str, float | None]]  # case_id → metric → mean over repeats
    hit_rate_source: str = "measured in the run"


@dataclass(frozen=True)
class BenchRun:
    path: Path
    run_id: str
    n_cases: int
    strategies: list[MeasuredStrategy]
    significance: float

    def strategy(self, name: str) -> MeasuredStrategy | None:
        return next((s for s in self.strategies if s.name == name), None)


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


def _family(params: dict[str, Any]) -> tuple[str | None, bool]:
    kind = params.get("kind", "")
    if kind == "cached":
        inner = params.get("inner") or {}
        return KIND_FAMILY.get(inner.get("kind", "")), True
    return KIND_FAMILY.get(kind), False


def load_run(path: Path) -> BenchRun:
    from adaptlab.eval.harness import CaseResult, case_means

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read the run ({exc})", "pass an eval run's results.json") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, f"not valid JSON ({exc.msg})",
                         "pass the results.json an `adaptlab eval` run wrote") from None
    if not isinstance(data, dict) or not isinstance(data.get("strategies"), list):
        raise InputError(str(path), None, "no 'strategies' list: not an eval run's results.json",
                         "pass the results.json an `adaptlab eval` run wrote")
    strategies = []
    for entry in data["strategies"]:
        params = entry.get("params") or {}
        family, cached = _family(params)
        if family is None:
            raise InputError(str(path), None, f"strategy {entry.get('name')!r} has kind {params.get('kind')!r}, "
                             f"which the cost model cannot price", "re-run the eval with adaptlab ≥ this version")
        results = [CaseResult(**case) for case in entry.get("cases", [])]
        generated = [r for r in results if r.cache_status != "hit" and r.error is None] or results
        hit_rate, hit_rate_source = None, "measured in the run"
        traffic = entry.get("traffic_hit_rate") or {}
        if cached and isinstance(traffic.get("value"), (int, float)):
            # A bench replays the team's query log: its hit rate is the traffic's, not the eval cases'.
            hit_rate, hit_rate_source = float(traffic["value"]), str(traffic.get("source") or "query-log replay")
        elif cached and results:
            hit_rate = sum(r.cache_status == "hit" for r in results) / len(results)
        count = max(len(generated), 1)
        strategies.append(MeasuredStrategy(
            name=entry["name"], family=family, cached=cached,
            wraps=params.get("wraps") if cached else None,
            prompt_tokens=sum(r.prompt_tokens for r in generated) / count,
            completion_tokens=sum(r.completion_tokens for r in generated) / count,
            seconds_per_answer=sum(r.latency_ms for r in generated) / count / 1000.0,
            hit_rate=hit_rate, metrics=entry.get("metrics") or {}, per_case=case_means(results),
            hit_rate_source=hit_rate_source))
    if not strategies:
        raise InputError(str(path), None, "the run has no strategies", "run `adaptlab eval` with --strategies")
    return BenchRun(path, str(data.get("run_id", path.parent.name)), int(data.get("n_cases", 0)), strategies,
                    float(data.get("significance", 0.05)))


def choose_metric(run: BenchRun, requested: str) -> str | None:
    """The requested metric, or the first preferred one every strategy measured."""
    if requested:
        if all(_value(s.metrics.get(requested)) is None for s in run.strategies):
            known = sorted({m for s in run.strategies for m in s.metrics})
            raise InputError(str(run.path), None, f"no strategy in the run measured {requested!r}",
                             f"set workload.quality_metric to one of {', '.join(known)}")
        return requested
    for metric in QUALITY_PREFERENCE:
        if all(_value(s.metrics.get(metric)) is not None for s in run.strategies):
            return metric
    return None


def _value(entry: dict[str, Any] | None) -> float | None:
    if not entry:
        return None
    value = entry.get("value")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def quality_of(strategy: MeasuredStrategy, metric: str) -> Quality | None:
    entry = strategy.metrics.get(metric)
    value = _value(entry)
    if value is None:
        return None
    assert entry is not None
    return Quality(metric, value, entry.get("low"), entry.get("high"), int(entry.get("n") or 0), True,
                   {case: scores.get(metric) for case, scores in strategy.per_case.items()})
