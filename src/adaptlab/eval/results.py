"""What an evaluation produced, as typed records.

The runner (`adaptlab.eval.session.EvalRunner`) returns them; `results.json` is their JSON with a format
version; the cost model, the HTML reports and the CLI read them — nothing reads a results dict by string keys.
A bench result (`adaptlab.bench.results.BenchResult`) extends `RunResult` with what only a bench measures.

Format history: 1 — the untyped dict written before the records existed (an eval file had no `kind`, a bench
file had `"schema": 1`); 2 — these records. A format-1 file is upgraded on load (the only change is that
every strategy now states its family); a newer or unknown file fails with a message saying what to do.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from adaptlab.errors import InputError
from adaptlab.eval.harness import CaseResult, MetricComparison, StrategyRun, case_means, spec_for

RESULTS_FORMAT_VERSION: Literal[2] = 2

# A strategy's family: what the cost model prices (retrieval hosting, training runs). A cached strategy has the
# family of the strategy it wraps.
Family = Literal["prompt", "rag", "finetuned", "finetuned_rag"]
FAMILIES: tuple[Family, ...] = ("prompt", "rag", "finetuned", "finetuned_rag")


class Record(BaseModel):
    """Base of every result record: unknown keys are an error (a typo in a hand-edited file is not ignored)."""

    model_config = ConfigDict(extra="forbid")


def finite(value: float | None) -> float | None:
    """NaN and ±inf as None: JSON has no NaN, and "not measured" is what they mean in a result."""
    return None if value is None or not math.isfinite(value) else float(value)


class Estimate(Record):
    """A measured value with its confidence interval over `n` observations."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


class MetricResult(Estimate):
    description: str = ""
    repeat_spread: float | None = None  # std of the metric's mean across repeats
    # Fine-tuned strategies benched with several training seeds: the value is their mean, the interval draws
    # seeds and cases, and this is the std of the per-seed means.
    train_seeds: int = 1
    seed_spread: float | None = None


class Timing(Record):
    seconds_per_case: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    # Time to the first streamed piece of the answer (None in results written before it was measured).
    first_token_ms_p50: float | None = None
    first_token_ms_p95: float | None = None
    prompt_tokens_mean: float | None
    completion_tokens_mean: float | None


class CacheSplit(Record):
    """A metric's mean on cache hits and on misses: does a hit answer as well as the wrapped strategy?"""

    hit: float | None
    hit_n: int
    miss: float | None
    miss_n: int


class OriginScores(Record):
    """A strategy's mean scores on one kind of case: drafted (`synthetic`) or hand-written."""

    n: int
    metrics: dict[str, float | None]


class TrafficHitRate(Estimate):
    """A cached strategy's hit rate on the team's query log (a bench replays it), which prices the cache."""

    source: str


class PairedComparison(Record):
    """One metric of b against a on the cases both answered (see adaptlab.eval.stats)."""

    a: float | None
    b: float | None
    diff: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    test: str
    significant: bool
    regressed: bool

    @classmethod
    def of(cls, comparison: MetricComparison) -> PairedComparison:
        r = comparison.result
        return cls(a=finite(r.a), b=finite(r.b), diff=finite(r.diff), low=finite(r.low), high=finite(r.high),
                   p_value=finite(r.p_value), n=r.n, test=r.test, significant=comparison.significant,
                   regressed=comparison.regressed)


class ComparisonResult(Record):
    a: str
    b: str
    metrics: dict[str, PairedComparison]


class RegressionResult(Record):
    baseline_run_id: str
    strategy: str
    metrics: dict[str, PairedComparison]

    @property
    def regressed(self) -> list[str]:
        return [m for m, c in self.metrics.items() if c.regressed]


def answering_params(params: dict[str, Any]) -> dict[str, Any]:
    """The `describe()` of the strategy that generates the answers: a cached strategy's inner one, else itself."""
    return (params.get("inner") or {}) if params.get("kind") == "cached" else params


def family_of(params: dict[str, Any]) -> tuple[Family | None, bool, str | None]:
    """(family, cached, wrapped strategy's name) from a strategy's `describe()` — the one place the strategy
    kinds map to families."""
    cached = params.get("kind") == "cached"
    kind = answering_params(params).get("kind")
    family: Family | None = kind if kind in FAMILIES else None
    return family, cached, (params.get("wraps") if cached else None)


class GeneratorRecord(Record):
    """A model the run's strategies answered with, and how its answers are priced."""

    backend: str
    model: str  # the GGUF file, or the endpoint's model name and URL
    price_api_model: str = ""  # catalog key: answers priced per token at its list prices
    usd_per_hour: float | None = None  # self-hosted: measured latency priced at this machine price


def generator_of(params: dict[str, Any]) -> str:
    """The [generators.NAME] a strategy answered with ("default": [generator]); a cached one's inner strategy's."""
    return str(answering_params(params).get("generator") or "default")


class StrategyResult(Record):
    name: str
    run_id: str
    params: dict[str, Any]  # the strategy's describe(): its settings, as evaluated
    family: Family | None  # None: a kind the cost model cannot price
    cached: bool
    wraps: str | None  # a cached strategy's inner strategy
    metrics: dict[str, MetricResult]
    timing: Timing
    cache_split: dict[str, CacheSplit]
    cases: list[CaseResult]
    traffic_hit_rate: TrafficHitRate | None = None
    # Quality on synthetic and on hand-written cases apart, when a run has both: they may disagree.
    by_origin: dict[str, OriginScores] = {}
    # Why this strategy's quality is not a settled verdict (a fine-tuned adapter still improving with more data or
    # steps); empty when it is. The advisor labels it and says so in the recommendation.
    provisional: str = ""

    @classmethod
    def of(cls, run: StrategyRun, k: int) -> StrategyResult:
        family, cached, wraps = family_of(run.params)
        timing = run.timing()
        return cls(
            name=run.name, run_id=run.run_id, params=run.params, family=family, cached=cached, wraps=wraps,
            metrics={m: MetricResult(value=finite(v.value), low=finite(v.low), high=finite(v.high), n=v.n,
                                     description=_description(m, k), repeat_spread=run.repeat_spread.get(m))
                     for m, v in run.metrics.items()},
            timing=Timing(**{key: finite(value) for key, value in timing.items()}),
            cache_split={m: CacheSplit(hit=finite(row["hit"]), hit_n=row["hit_n"], miss=finite(row["miss"]),
                                       miss_n=row["miss_n"]) for m, row in run.cache_split().items()},
            cases=run.results, by_origin=_by_origin(run.results))

    def metric(self, name: str) -> MetricResult | None:
        return self.metrics.get(name)

    def value(self, metric: str) -> float | None:
        entry = self.metrics.get(metric)
        return None if entry is None else entry.value

    @property
    def hits(self) -> int:
        return sum(1 for c in self.cases if c.cache_status == "hit")

    @property
    def generator(self) -> str:
        return generator_of(self.params)

    @property
    def decoding(self) -> str:
        """What constrained its output (a JSON schema, or free text): strategies compared on a structured task
        are only on equal footing under the same constraint."""
        return str(answering_params(self.params).get("decoding") or "not recorded")


def _by_origin(results: list[CaseResult]) -> dict[str, OriginScores]:
    groups = {"synthetic": [r for r in results if r.synthetic], "hand-written": [r for r in results if not r.synthetic]}
    if not all(groups.values()):
        return {}
    split = {}
    for origin, group in groups.items():
        means = case_means(group)
        metrics = sorted({m for per_case in means.values() for m in per_case})
        values = {m: [v for per_case in means.values() if (v := per_case.get(m)) is not None] for m in metrics}
        split[origin] = OriginScores(n=len(means), metrics={m: (sum(v) / len(v) if v else None)
                                                            for m, v in values.items()})
    return split


class RunResult(Record):
    """What an eval run measured: the same cases, answered by each strategy, scored by one harness."""

    format_version: Literal[2] = RESULTS_FORMAT_VERSION
    run_id: str
    created: str
    cases_path: str
    cases_sha256: str
    n_cases: int
    repeats: int
    seed: int
    confidence: float
    significance: float
    k: int
    warnings: list[str]
    strategies: list[StrategyResult]
    tracking_uri: str | None = None
    training_seconds: float | None = None  # one training run of the evaluated adapter (a bench trains it)
    generators: dict[str, GeneratorRecord] = {}  # "default" is [generator]; the others [generators.NAME]

    def strategy(self, name: str) -> StrategyResult | None:
        return next((s for s in self.strategies if s.name == name), None)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


class EvalRunResult(RunResult):
    kind: Literal["adaptlab-eval"] = "adaptlab-eval"
    comparison: ComparisonResult | None = None  # strategies[1] against strategies[0]
    regression: RegressionResult | None = None  # the compared strategy against --compare's baseline


def _description(metric: str, k: int) -> str:
    spec = spec_for(metric, k)
    return spec.description if spec else ""


# ----------------------------------------------------------------------------------------------- loading


def read_results_json(path: Path) -> dict[str, Any]:
    """A results.json as JSON, upgraded to the current format; clear errors for unreadable or foreign files."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read the run ({exc})",
                         "pass the results.json an `adaptlab eval` or `adaptlab bench` run wrote") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, f"not valid JSON ({exc.msg})",
                         "pass the results.json an `adaptlab eval` or `adaptlab bench` run wrote") from None
    if not isinstance(data, dict) or not isinstance(data.get("strategies"), list):
        raise InputError(str(path), None, "no 'strategies' list: not the results.json of an eval or bench run",
                         "pass the results.json an `adaptlab eval` or `adaptlab bench` run wrote")
    result: dict[str, Any] = data
    version = result.get("format_version", 1)
    if version == 1:
        result = _upgrade_from_format_1(result)
    elif version != RESULTS_FORMAT_VERSION:
        raise InputError(str(path), None, f"results format {version!r}; this adaptlab reads formats 1 and "
                         f"{RESULTS_FORMAT_VERSION}", "open it with the adaptlab version that wrote it, or re-run "
                         "the eval or bench with this one")
    return result


_R = TypeVar("_R", bound=RunResult)


def load_eval_result(path: Path) -> EvalRunResult:
    data = read_results_json(path)
    if data.get("kind") != "adaptlab-eval":
        raise InputError(str(path), None, f"a {data.get('kind')!r} results file, not an eval run's",
                         "pass the results.json an `adaptlab eval` run wrote")
    return validate_result(EvalRunResult, data, path)


def validate_result(model: type[_R], data: dict[str, Any], path: Path) -> _R:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(str(path), None, f"not a valid results file: {where}: {first['msg']} "
                         f"({exc.error_count()} problem(s))", "re-run the eval or bench that wrote it; results "
                         "files are not meant to be edited by hand") from None


def _upgrade_from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 → 2: name the kind and version, derive every strategy's family from its params, drop the keys
    format 2 does not have."""
    data = dict(data)
    data.pop("schema", None)
    data.setdefault("kind", "adaptlab-eval")
    data["format_version"] = RESULTS_FORMAT_VERSION
    strategies = []
    for entry in data["strategies"]:
        entry = dict(entry)
        family, cached, wraps = family_of(entry.get("params") or {})
        entry.update(family=family, cached=cached, wraps=wraps)
        entry.setdefault("cache_split", {})
        entry.setdefault("traffic_hit_rate", None)
        strategies.append(entry)
    data["strategies"] = strategies
    return data
