"""`adaptlab eval` as a library function: cases → strategies → harness → stats → SQLite, MLflow, files.

evaluate(project, EvalRequest) → EvalReport. The CLI only parses options and prints the report.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from adaptlab.config import AdaptlabConfig, GeneratorConfig
from adaptlab.errors import InputError
from adaptlab.eval.cases import EvalCase, cases_sha256, load_cases
from adaptlab.eval.harness import (
    CaseResult,
    MetricComparison,
    Scorer,
    StrategyRun,
    compare,
    run,
)
from adaptlab.eval.heldout import Overlap, SeenText, find_overlaps, training_questions
from adaptlab.eval.plan import RunEstimate, estimate_run
from adaptlab.eval.results import (
    ComparisonResult,
    EvalRunResult,
    GeneratorRecord,
    PairedComparison,
    RegressionResult,
    StrategyResult,
    finite,
)
from adaptlab.eval.store import EvalStore
from adaptlab.project import Project
from adaptlab.strategies.base import Strategy

if TYPE_CHECKING:
    from adaptlab.eval.judge import Judge
    from adaptlab.tracking import MlflowTracker

# (strategy name, answers done, answers in total) after every answer
EvalProgress = Callable[[str, int, int], None]


class HeldOutError(InputError):
    """--strict and some eval questions were seen by a strategy (few-shot / training data)."""


class _StatsOptions(TypedDict):
    """The statistics settings of one eval, passed on to every comparison."""

    k: int
    alpha: float
    resamples: int
    confidence: float
    seed: int


@dataclass
class EvalRequest:
    strategies: list[str]
    cases_path: Path
    limit: int | None = None
    repeats: int = 1
    seed: int | None = None  # None: eval.seed from the config
    compare_run: str | None = None
    strict: bool = False
    train_paths: list[Path] = field(default_factory=list)
    out_dir: Path | None = None  # None: <home>/eval/<eval_id>
    judge: bool | None = None  # None: eval.judge.enabled
    concurrency: int | None = None  # None: eval.concurrency
    resume: str | None = None  # an interrupted eval's id: answer only the cases it lacks
    resume_must_exist: bool = True  # False: an id with no stored runs starts fresh (a bench stopped early)
    # Called with the run's estimate before any answer is asked (print the plan; raise to refuse the run).
    before_run: Callable[[RunEstimate], None] | None = None


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C during an eval: every finished answer is in the project's log; `--resume EVAL_ID` goes on."""

    def __init__(self, eval_id: str) -> None:
        super().__init__(eval_id)
        self.eval_id = eval_id


@dataclass
class EvalReport:
    eval_id: str
    created: str
    cases_path: str
    cases_sha256: str
    n_cases: int
    repeats: int
    seed: int
    confidence: float
    significance: float
    k: int
    runs: list[StrategyRun]
    warnings: list[str]
    overlaps: list[Overlap]
    comparison: dict[str, MetricComparison] | None = None  # runs[1] against runs[0]
    regression: dict[str, MetricComparison] | None = None  # the compared run against --compare's baseline
    baseline_run_id: str | None = None
    regression_strategy: str | None = None
    out_dir: Path | None = None
    tracking_uri: str | None = None
    generators: dict[str, GeneratorRecord] = field(default_factory=dict)

    @property
    def regressed(self) -> list[str]:
        return [m for m, c in (self.regression or {}).items() if c.regressed]

    def record(self) -> EvalRunResult:
        """The typed result: what results.json holds and the HTML report, `--json` and the cost model read."""
        strategies = [StrategyResult.of(r, self.k) for r in self.runs]
        comparison = None if self.comparison is None else ComparisonResult(
            a=self.runs[0].name, b=self.runs[1].name,
            metrics={m: PairedComparison.of(c) for m, c in self.comparison.items()})
        regression = None
        if self.regression is not None:
            assert self.baseline_run_id is not None and self.regression_strategy is not None
            regression = RegressionResult(baseline_run_id=self.baseline_run_id, strategy=self.regression_strategy,
                                          metrics={m: PairedComparison.of(c) for m, c in self.regression.items()})
        return EvalRunResult(
            run_id=self.eval_id, created=self.created, cases_path=self.cases_path, cases_sha256=self.cases_sha256,
            n_cases=self.n_cases, repeats=self.repeats, seed=self.seed, confidence=self.confidence,
            significance=self.significance, k=self.k, warnings=self.warnings, strategies=strategies,
            comparison=comparison, regression=regression, tracking_uri=self.tracking_uri,
            generators=self.generators)


def generator_records(config: AdaptlabConfig) -> dict[str, GeneratorRecord]:
    """Every configured model and its price source, as a run records them ("default" is [generator])."""
    def record(settings: GeneratorConfig) -> GeneratorRecord:
        model = (f"{settings.model or 'default'} at {settings.base_url}" if settings.backend == "openai"
                 else settings.model_path or "SmolLM2-135M-Instruct Q4_1 (bundled)")
        return GeneratorRecord(backend=settings.backend, model=model, price_api_model=settings.price_api_model,
                               usd_per_hour=settings.usd_per_hour)

    return {"default": record(config.generator), **{name: record(s) for name, s in config.generators.items()}}


StrategyHook = Callable[[Strategy], None]


class EvalRunner:
    """The one evaluation runner, used by `adaptlab eval` and `adaptlab bench`: the held-out check, the scorer,
    every strategy through the harness with each answer stored as it comes (SQLite, and MLflow when tracking is
    on), and the report. Use it as a context manager: the eval log is closed however the run ends."""

    def __init__(self, project: Project, request: EvalRequest, *, eval_id: str | None = None) -> None:
        config = project.config
        self.project = project
        self.request = request
        self.seed = config.eval.seed if request.seed is None else request.seed
        self.concurrency = config.eval.concurrency if request.concurrency is None else request.concurrency
        self.eval_id = request.resume or eval_id or uuid.uuid4().hex[:12]
        self.tracker: MlflowTracker | None = None
        if config.tracking.enabled:
            from adaptlab.tracking import MlflowTracker

            self.tracker = MlflowTracker(config.tracking.uri, config.tracking.eval_experiment, project.home)
        self.store = EvalStore(project.log_path)
        if request.resume and request.resume_must_exist and not self.store.eval_runs(request.resume):
            recent = ", ".join(sorted({r["eval_id"] for r in self.store.recent_runs(10)})) or "none yet"
            self.store.close()
            raise InputError("--resume", None, f"no eval {request.resume!r} in this project's log",
                             f"pass the eval id an interrupted run printed (recent: {recent})")

    def __enter__(self) -> EvalRunner:
        return self

    def __exit__(self, *_: object) -> None:
        self.store.close()

    def run(self, strategies: list[Strategy], cases: list[EvalCase], *, progress: EvalProgress | None = None,
            before_each: StrategyHook | None = None, after_each: Callable[[StrategyRun], None] | None = None
            ) -> EvalReport:
        """Every strategy over every case. `before_each` runs before a strategy's first case (the bench warms a
        cached strategy's cache there), `after_each` when its run is recorded."""
        request, eval_config = self.request, self.project.config.eval
        warnings: list[str] = []
        overlaps = held_out_check(strategies, cases, request, eval_config.near_duplicate_jaccard)
        if overlaps:
            summary = (f"{len(overlaps)} of {len(cases)} eval questions were already seen by a strategy "
                       f"(few-shot examples or training data); their scores are inflated")
            if request.strict:
                details = "\n".join(f"  {o}" for o in overlaps[:20])
                raise HeldOutError(str(request.cases_path), None, f"{summary}:\n{details}",
                                   "remove them from the eval cases or from the examples/training data")
            warnings.append(summary + ": " + "; ".join(str(o) for o in overlaps[:5]) +
                            (" …" if len(overlaps) > 5 else ""))
        warnings.extend(index_warnings(self.project, strategies))
        if request.before_run is not None:
            done = ({run["strategy"]: run["results"] for run in self.store.eval_runs(self.eval_id)}
                    if request.resume else {})
            done = {name: count for name, count in done.items()
                    if any(s.name == name and s.cache_reach == "none" for s in strategies)}
            request.before_run(estimate_run(self.eval_id, strategies, cases, repeats=request.repeats,
                                            concurrency=self.concurrency, done=done,
                                            seconds_per_call=self.store.recent_seconds_per_answer))
        scorer = make_scorer(self.project, request, strategies, cases)
        sha = cases_sha256(request.cases_path)
        runs: list[StrategyRun] = []
        for strategy in strategies:
            if before_each:
                before_each(strategy)
            strategy_run = run_and_record(strategy, cases, scorer, request, seed=self.seed, sha=sha,
                                          eval_id=self.eval_id, resamples=eval_config.bootstrap_resamples,
                                          confidence=eval_config.confidence, store=self.store,
                                          tracker=self.tracker, progress=progress, concurrency=self.concurrency)
            warnings.extend(strategy_run.warnings)
            runs.append(strategy_run)
            if after_each:
                after_each(strategy_run)
        return EvalReport(
            eval_id=self.eval_id, created=datetime.now(UTC).isoformat(timespec="seconds"),
            cases_path=str(request.cases_path), cases_sha256=sha, n_cases=len(cases), repeats=request.repeats,
            seed=self.seed, confidence=eval_config.confidence, significance=eval_config.significance,
            k=eval_config.k, runs=runs, warnings=warnings, overlaps=overlaps,
            tracking_uri=self.tracker.tracking_uri if self.tracker else None,
            generators=generator_records(self.project.config))


def make_scorer(project: Project, request: EvalRequest, strategies: list[Strategy], cases: list[EvalCase]) -> Scorer:
    config = project.config
    embed = project.embedder.embed if any(s.retrieves for s in strategies) else None
    labels = sorted({c.label for c in cases if c.label is not None})
    return Scorer(k=config.eval.k, refusal_text=config.answer.refusal_text, embed=embed,
                  groundedness_threshold=config.eval.groundedness_threshold, labels=labels,
                  judge=make_judge(project, request))


def evaluate(project: Project, request: EvalRequest, progress: EvalProgress | None = None) -> EvalReport:
    from adaptlab.strategies.factory import build_strategy

    eval_config = project.config.eval
    if request.repeats < 1:
        raise InputError("--repeats", None, f"must be at least 1 (got {request.repeats})")
    if len(set(request.strategies)) != len(request.strategies) or not 1 <= len(request.strategies) <= 2:
        raise InputError("--strategy", None, "give one strategy, or two different ones to compare",
                         "e.g. --strategy prompt --strategy rag")
    cases = load_cases(request.cases_path, limit=request.limit)
    strategies = [build_strategy(project, name) for name in request.strategies]
    with EvalRunner(project, request) as runner:
        baseline = (load_baseline(runner.store, runner.tracker, request.compare_run)
                    if request.compare_run else None)
        try:
            report = runner.run(strategies, cases, progress=progress)
        except KeyboardInterrupt as exc:
            raise EvalInterrupted(runner.eval_id) from exc
        runs, tracker = report.runs, runner.tracker
        stats_options: _StatsOptions = {"k": eval_config.k, "alpha": eval_config.significance,
                                        "resamples": eval_config.bootstrap_resamples,
                                        "confidence": eval_config.confidence, "seed": report.seed}
        if len(runs) == 2:
            report.comparison = compare(runs[0].case_means(), runs[1].case_means(), **stats_options)
        if baseline is not None:
            _regression_check(report, baseline, stats_options)

        report.out_dir = request.out_dir or project.home / "eval" / report.eval_id
        results_path, html_path = write_outputs(report)
        if tracker:
            for strategy_run in runs:
                extra: dict[str, float] = {}
                if report.comparison and strategy_run is runs[1]:
                    extra = {f"vs_{runs[0].name}_{m}_p_value": c.result.p_value
                             for m, c in report.comparison.items()}
                tracker.log(strategy_run.run_id, extra_metrics=extra, artifacts=[results_path, html_path])
    return report


def run_and_record(strategy: Strategy, cases: list[EvalCase], scorer: Scorer, request: EvalRequest, *, seed: int,
                  sha: str, eval_id: str, resamples: int, confidence: float, store: EvalStore,
                  tracker: MlflowTracker | None, progress: EvalProgress | None, concurrency: int = 1
                  ) -> StrategyRun:
    """One strategy over all cases; each result is stored as it comes, the run is closed (SQLite and MLflow)
    as soon as it ends — a later strategy failing never leaves this one open. With `request.resume`, the
    strategy's earlier run of that eval is continued: its stored results are kept, only the rest is answered."""
    params = strategy.describe()
    # A cached strategy's answers depend on what its cache held when each was asked: its stored results cannot be
    # continued by a cache in another state, so its run starts over.
    earlier = (store.find_run(eval_id, strategy.name)
               if request.resume and strategy.cache_reach == "none" else None)
    finished: list[CaseResult] = []
    if earlier is not None:
        if earlier["cases_sha256"] != sha or earlier["repeats"] != request.repeats or earlier["seed"] != seed:
            raise InputError("--resume", None, f"eval {eval_id} ran {strategy.name!r} on other cases, repeats or "
                             f"seed (cases sha256 {earlier['cases_sha256'][:12]}, {earlier['repeats']} repeats, "
                             f"seed {earlier['seed']})", "resume with the same --cases, --limit, --repeats and "
                             "--seed, or start a new eval")
        run_id = earlier["run_id"]
        finished = store.results(run_id)
        store.reopen_run(run_id)
        if tracker:
            tracker.reopen(run_id)
    else:
        tags = {"adaptlab.eval_id": eval_id, "adaptlab.strategy": strategy.name,
                "adaptlab.cases_sha256": sha, "adaptlab.cases_path": str(request.cases_path)}
        run_id = tracker.start(strategy.name, tags) if tracker else uuid.uuid4().hex
        store.start_run(run_id=run_id, eval_id=eval_id, strategy=strategy.name, params=params,
                        cases_path=str(request.cases_path), cases_sha256=sha, n_cases=len(cases),
                        repeats=request.repeats, seed=seed)
    done = len(finished)
    total = len(cases) * request.repeats

    def on_result(result: CaseResult) -> None:
        nonlocal done
        store.add_result(run_id, result)
        done += 1
        if progress:
            progress(strategy.name, done, total)

    try:
        strategy_run = run(strategy, cases, scorer, repeats=request.repeats, seed=seed, on_result=on_result,
                           resamples=resamples, confidence=confidence, concurrency=concurrency,
                           finished=finished)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.finish_run(run_id, status)
        if tracker:
            tracker.end(run_id, "KILLED" if status == "interrupted" else "FAILED")
        raise
    strategy_run.run_id = run_id
    store.finish_run(run_id, "finished", {
        m: {"value": finite(v.value), "low": finite(v.low), "high": finite(v.high), "n": v.n}
        for m, v in strategy_run.metrics.items()})
    if tracker:
        extra = {"seconds_per_case": strategy_run.timing()["seconds_per_case"]}
        extra.update({f"{m}_repeat_std": v for m, v in strategy_run.repeat_spread.items()})
        tracker.log(run_id, params={**params, "cases_sha256": sha, "n_cases": len(cases),
                                    "repeats": request.repeats, "seed": seed, "k": scorer.k,
                                    "limit": request.limit},
                    metrics=strategy_run.metrics, extra_metrics=extra)
        tracker.end(run_id, "FINISHED")
    return strategy_run


def held_out_check(strategies: list[Strategy], cases: list[EvalCase], request: EvalRequest,
                    threshold: float) -> list[Overlap]:
    seen: list[SeenText] = []
    for strategy in strategies:
        seen.extend(SeenText(q, f"few-shot examples of strategy {strategy.name!r}")
                    for q in strategy.seen_questions())
    for path in request.train_paths:
        seen.extend(training_questions(path))
    return find_overlaps(cases, seen, threshold) if seen else []


def index_warnings(project: Project, strategies: list[Strategy]) -> list[str]:
    if not any(s.retrieves for s in strategies):
        return []
    if project.store.count() == 0:
        return [f"the index at {project.home} is empty: every retrieval answer will be a refusal — run "
                f"`adaptlab ingest PATH` first"]
    return []


def make_judge(project: Project, request: EvalRequest) -> Judge | None:
    judge_config = project.config.eval.judge
    enabled = judge_config.enabled if request.judge is None else request.judge
    if not enabled:
        return None
    from adaptlab.eval.judge import Judge

    return Judge(judge_config, project.home / "judge_cache.db", log=project.logger)


@dataclass(frozen=True)
class Baseline:
    """An earlier strategy run that `--compare` measures the new one against."""

    run_id: str
    strategy: str
    cases_sha256: str
    case_scores: dict[str, dict[str, float | None]]  # case_id → metric → mean over repeats


def load_baseline(store: EvalStore, tracker: MlflowTracker | None, run_id: str) -> Baseline:
    """From this project's SQLite log, else from the run's results.json in MLflow. Checked before any case is
    answered, so a mistyped run id fails in a second, not after an hour of answers."""
    info = store.run_info(run_id)
    baseline: Baseline | None
    if info is not None:
        baseline = Baseline(run_id, info["strategy"], info["cases_sha256"], store.case_scores(run_id))
    else:
        baseline = _baseline_from_mlflow(tracker, run_id)
    if baseline is None or not baseline.case_scores:
        recent = ", ".join(f"{r['run_id']} ({r['strategy']})" for r in store.recent_runs(5)) or "none yet"
        raise InputError("--compare", None, f"no eval run {run_id!r} with results in this project or in MLflow",
                         f"pass a run id printed by an earlier `adaptlab eval` (recent: {recent})")
    return baseline


def _regression_check(report: EvalReport, baseline: Baseline, stats_options: _StatsOptions) -> None:
    target = next((r for r in report.runs if r.name == baseline.strategy), report.runs[0])
    now = target.case_means()
    if baseline.cases_sha256 != report.cases_sha256:
        shared = sum(case_id in now for case_id in baseline.case_scores)
        report.warnings.append(f"--compare: the baseline run used a different case file (sha256 "
                               f"{baseline.cases_sha256[:12]} vs {report.cases_sha256[:12]}); compared on the "
                               f"{shared} case ids they share")
    report.regression = compare(baseline.case_scores, now, **stats_options)
    report.baseline_run_id = baseline.run_id
    report.regression_strategy = target.name


def _baseline_from_mlflow(tracker: MlflowTracker | None, run_id: str) -> Baseline | None:
    from adaptlab.eval.harness import case_means
    from adaptlab.eval.results import load_eval_result

    if tracker is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        path = tracker.download_results(run_id, Path(scratch))
        if path is None:
            return None
        result = load_eval_result(path)
    for strategy in result.strategies:
        if strategy.run_id == run_id:
            return Baseline(run_id, strategy.name, result.cases_sha256, case_means(strategy.cases))
    return None


def write_outputs(report: EvalReport) -> tuple[Path, Path]:
    """results.json and report.html in the run's folder (written to temp names first: never half a file)."""
    from adaptlab.eval.html import render_html
    from adaptlab.textfiles import write_text_atomic

    assert report.out_dir is not None
    report.out_dir.mkdir(parents=True, exist_ok=True)
    record = report.record()
    results_path = report.out_dir / "results.json"
    html_path = report.out_dir / "report.html"
    write_text_atomic(results_path, record.to_json())
    write_text_atomic(html_path, render_html(record))
    return results_path, html_path
