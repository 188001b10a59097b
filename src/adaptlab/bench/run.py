"""`adaptlab bench` as a library function: build every strategy, measure each with the one harness, price the
measurements, recommend, and write results.json + report.html.

Stages, each with progress: plan → data check → index → adapter → per strategy (warm its cache, eval) →
query-log replay → cost model → report. The index and the adapter are reused while their inputs are unchanged.
Everything is written into a hidden `.partial` folder renamed into place at the very end, so Ctrl-C (or a crash)
never leaves a half-written report behind; the eval runs already finished stay in the project's eval log.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from adaptlab import __version__
from adaptlab.bench.context import BenchContext, ProgressCallback, StageCallback
from adaptlab.bench.finetuning import Adapters, StudyRuns, build_adapters, conclude_study, measure_study, pool_seeds
from adaptlab.bench.plan import CACHED_SUFFIX, bench_strategies, plan_bench
from adaptlab.bench.results import (
    BenchResult,
    CacheMeasurement,
    DataCheck,
    DocumentsInput,
    FileInput,
    FinetuningStudy,
    Inputs,
    LogSummary,
    Machine,
    Models,
    PairsSweep,
    QueryLogInput,
    Rate,
    Repeated,
    SkippedStrategy,
    SweepPoint,
    WarmRecord,
    WorkloadInput,
)
from adaptlab.config import AdaptlabConfig, PromptStrategyConfig
from adaptlab.eval.results import TrafficHitRate
from adaptlab.project import Project

if TYPE_CHECKING:
    from adaptlab.cache.analyze import QueryLog
    from adaptlab.cost.advise import Advice
    from adaptlab.cost.catalog import PriceCatalog
    from adaptlab.cost.workload import Workload
    from adaptlab.eval.plan import RunEstimate
    from adaptlab.eval.session import EvalReport

@dataclass
class BenchOutcome:
    results: BenchResult
    out_dir: Path
    results_path: Path
    report_path: Path | None
    advice: Advice

    @property
    def recommendation(self) -> str | None:
        return self.results.advice.recommendation if self.results.advice else None


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a bench: finished eval answers are in the project's log; `--resume RUN_ID` goes on."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def run_bench(config: AdaptlabConfig, *, progress: ProgressCallback | None = None,
              on_stage: StageCallback | None = None, out_dir: Path | None = None,
              render: bool = True, resume: str | None = None, concurrency: int | None = None,
              before_run: Callable[[RunEstimate], None] | None = None) -> BenchOutcome:
    """resume: an interrupted bench's run id — the index and adapter are reused as always, and each strategy
    answers only the cases it lacks (a cached strategy starts over: its cache did not survive). concurrency:
    answers in flight for endpoint-backed strategies (default eval.concurrency). before_run: shown the
    measurement's estimate before any answer is asked (raise to refuse; the index and adapter are built first)."""
    started = time.perf_counter()
    plan = plan_bench(config)  # every input checked before any long work
    from adaptlab.cache.analyze import load_query_log
    from adaptlab.cost.catalog import load_catalog
    from adaptlab.cost.workload import load_workload
    from adaptlab.eval.cases import load_cases

    workload = load_workload(plan.workload)
    catalog = load_catalog(config.prices)
    # Read now, so bad lines are reported before any training, and once.
    cases = load_cases(plan.cases, limit=config.bench.limit)
    query_log = load_query_log(plan.query_log) if plan.query_log is not None else None

    run_id = resume or datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    home = config.home_dir()
    final = (out_dir or (config.resolve_path(config.bench.out) if config.bench.out else None)
             or home / "bench" / run_id).resolve()
    partial = final.parent / f".{final.name}.partial-{run_id}"
    partial.mkdir(parents=True)
    try:
        # The cache under measurement is a fresh one per run (warmed from the query log below): answers cached
        # by an earlier run or by production would make the hit rate depend on history.
        cache = config.cache.model_copy(update={"backend": "sqlite", "path": str(partial / "cache.db"),
                                                "semantic_index": "memory"})
        bench_config = config.model_copy(update={"cache": cache})
        project = Project(bench_config)
        context = BenchContext(project, plan, cases, query_log, progress or (lambda *_: None),
                           on_stage or (lambda _: None), resume=resume is not None, concurrency=concurrency,
                           before_run=before_run)
        outcome = _run(context, workload, catalog, run_id, partial, final, render=render, started=started)
    except KeyboardInterrupt as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BenchInterrupted(run_id) from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    outcome.out_dir = final
    outcome.results_path = final / "results.json"
    outcome.report_path = final / "report.html" if outcome.report_path else None
    return outcome


def _run(context: BenchContext, workload: Workload, catalog: PriceCatalog, run_id: str, partial: Path, final: Path, *,
         render: bool, started: float) -> BenchOutcome:
    project, plan = context.project, context.plan
    config = project.config
    data_check = _data_check(context, workload)
    documents = _index(context)
    adapters = build_adapters(context, workload.workload.quality_metric)
    project.config.strategies = bench_strategies(config, plan, adapters.full.gguf_path if adapters else None)
    eval_report, hit_rates, cache_info = _measure(context, run_id)
    # The fine-tuning study is about the first strategy answering with the bench's adapter.
    study = plan.needs_adapter[0] if adapters is not None else ""
    study_runs = measure_study(context, run_id, study, adapters) if adapters is not None else None

    results = _results(context, eval_report, run_id, final, started, documents, data_check, cache_info, hit_rates)
    if adapters is not None and study_runs is not None:
        results.finetuning = _conclude_study(context, workload, results, study, adapters, study_runs)
    advice = _price(context, workload, catalog, results)
    results.advice = advice.record()
    results.quality_metric = advice.metric
    results.stages = list(context.stages)
    results.measurement = list(context.measurement)
    results.seconds = round(time.perf_counter() - started, 1)
    results.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results_path = partial / "results.json"
    write_results(results_path, results)

    report_path = None
    if render:
        from adaptlab.bench.html import write_bench_html

        context.on_stage("Writing the report")
        report_path = write_bench_html([results], partial / "report.html", title=f"adaptlab bench: {plan.title}")
    return BenchOutcome(results, partial, results_path, report_path, advice)


# ------------------------------------------------------------------------------------------------ stages


def _data_check(context: BenchContext, workload: Workload) -> DataCheck | None:
    plan, config = context.plan, context.project.config
    if plan.train is None:
        return None
    from adaptlab.finetune.checks import check_datasets

    started = time.perf_counter()
    context.on_stage(f"Checking the training data ({plan.train.name})")
    prompt = config.strategies["prompt"]
    fewshot = (config.resolve_path(prompt.few_shot_path)
               if isinstance(prompt, PromptStrategyConfig) and prompt.few_shot_path else None)
    report = check_datasets([plan.train], eval_path=plan.cases, fewshot_path=fewshot,
                            near_duplicate_jaccard=config.eval.near_duplicate_jaccard,
                            min_examples=workload.workload.min_examples_for_finetune,
                            truncation_length=config.train.max_length)
    facts = workload.workload
    if facts.clean_labelled_examples is None:
        facts.clean_labelled_examples = report.clean  # measured beats unknown
    verdict = "READY" if report.ready else "NOT READY: " + "; ".join(report.reasons)
    context.stage("data check", "done", started, f"{report.clean} clean of {report.examples} examples, "
                  f"{len(report.errors)} errors, {len(report.warnings)} warnings — {verdict}")
    context.measured("clean labelled examples",
                     f"`adaptlab data check` on {plan.train.name}: {report.clean} of {report.examples} examples "
                     f"after duplicates and eval leaks; the advisor's fine-tuning bar is "
                     f"{facts.min_examples_for_finetune}")
    return DataCheck.model_validate(report.to_dict())


def _index(context: BenchContext) -> DocumentsInput | None:
    plan, project = context.plan, context.project
    if not plan.documents:
        return None
    started = time.perf_counter()
    context.on_stage(f"Indexing {', '.join(p.name for p in plan.documents)}")
    with project.ingest_lock():
        # A rag strategy with its own chunk_context retrieves from its own index over the same documents.
        report = next(iter(project.ingest_indexes(plan.documents, strategy_names=plan.strategies,
                                                  progress=context.progress).values()))
    changed = len(report.added) + len(report.updated) + len(report.removed)
    status = "built" if changed else "reused"
    documents = len(report.added) + len(report.updated) + len(report.unchanged)
    context.stage("index", status, started,
                  f"{documents} documents, {report.total_chunks} chunks ({len(report.added)} added, "
                  f"{len(report.updated)} updated, {len(report.removed)} removed, {len(report.unchanged)} "
                  f"unchanged)")
    if report.problems:
        context.warnings.append(f"{len(report.problems)} files could not be indexed: "
                                + "; ".join(f"{p.path}: {p.reason}" for p in report.problems[:5]))
    return DocumentsInput(paths=[str(p) for p in plan.documents], documents=documents, chunks=report.total_chunks)


def _warm_questions(log: QueryLog, limit: int) -> list[str]:
    """The log's most frequent distinct questions (ties: first asked first) — what a deployed cache holds."""
    return [question for question, _ in log.most_asked()[:limit]]


def _measure(context: BenchContext, run_id: str
             ) -> tuple[EvalReport, dict[str, TrafficHitRate], CacheMeasurement | None]:
    """Every strategy through the one evaluation runner (each cached variant right after the strategy it wraps,
    its cache warmed first), then the query-log replay."""
    from adaptlab.eval.harness import StrategyRun
    from adaptlab.eval.session import EvalRequest, EvalRunner
    from adaptlab.strategies.base import Strategy
    from adaptlab.strategies.factory import build_strategy

    project, plan = context.project, context.plan
    config = project.config
    names = plan.measured()
    request = EvalRequest(strategies=names, cases_path=plan.cases, limit=config.bench.limit,
                          repeats=config.bench.repeats, train_paths=[plan.train] if plan.train else [],
                          concurrency=context.concurrency, resume=run_id if context.resume else None,
                          resume_must_exist=False, before_run=context.before_run)
    cases = context.cases
    strategies = [build_strategy(project, name) for name in names]
    warm = (_warm_questions(context.query_log, config.bench.warm_questions)
            if plan.cached and context.query_log is not None else [])
    measuring = {"started": time.perf_counter()}

    def before_each(strategy: Strategy) -> None:
        if strategy.name.endswith(CACHED_SUFFIX) and warm:
            started = time.perf_counter()
            context.on_stage(f"Warming {strategy.name}'s cache with the log's {len(warm)} most frequent questions")
            for done, question in enumerate(warm, start=1):
                strategy.answer(question, seed=config.eval.seed)
                context.progress(f"Warm {strategy.name}", done, len(warm))
            context.stage(f"warm {strategy.name}", "done", started,
                          f"{len(warm)} questions answered into a fresh cache")
        measuring["started"] = time.perf_counter()
        context.on_stage(f"Measuring {strategy.name} on {len(cases)} cases")

    def after_each(strategy_run: StrategyRun) -> None:
        timing = strategy_run.timing()
        context.stage(f"eval {strategy_run.name}", "done", measuring["started"],
                      f"{len(cases)} cases × {request.repeats}; p50 {timing['latency_ms_p50']:.0f} ms")

    with EvalRunner(project, request, eval_id=run_id) as runner:
        report = runner.run(strategies, cases, before_each=before_each, after_each=after_each,
                            progress=lambda label, done, total: context.progress(f"Eval {label}", done, total))
    context.warnings.extend(report.warnings)
    hit_rates, cache_info = _replay_log(context, len(warm)) if plan.cached else ({}, None)
    return report, hit_rates, cache_info


def _replay_log(context: BenchContext, warmed: int) -> tuple[dict[str, TrafficHitRate], CacheMeasurement]:
    """The cache's hit rate on the team's traffic: the query log replayed through the configured cache, as
    `adaptlab cache analyze` does; also the hit rate at every threshold (the sweep) and, with labelled pairs,
    the false-hit rate."""
    from adaptlab.cache.analyze import analyze_log

    project, plan = context.project, context.plan
    settings = project.config.cache
    assert plan.query_log is not None and context.query_log is not None
    started = time.perf_counter()
    context.on_stage(f"Replaying {plan.query_log.name} through the cache")
    ttl = float(settings.ttl_seconds) if settings.ttl_seconds else None
    analysis = analyze_log(context.query_log, project.embedder, threshold=settings.semantic_threshold,
                           guard=settings.guard, ttls=[ttl], progress=context.progress)
    rate = analysis.ttl_results[0].hit_rate
    source = (f"replayed over {plan.query_log.name}: {analysis.n_queries:,} queries, {analysis.n_distinct:,} "
              f"distinct; semantic ≥ {settings.semantic_threshold:.2f}"
              f"{', guard on' if settings.guard else ''}")
    hit_rate = TrafficHitRate(value=rate.value, low=rate.low, high=rate.high, n=rate.n, source=source)
    sweep = [SweepPoint(threshold=float(t), hit_rate=Rate(value=r.value, low=r.low, high=r.high, k=r.k, n=r.n),
                        hits=r.k, n=r.n)
             for t, r in sorted(analysis.near_duplicate_curve.items())]
    pairs_sweep = None
    if plan.cache_pairs is not None:
        from adaptlab.cache.sweep import load_pairs
        from adaptlab.cache.sweep import sweep as sweep_pairs

        pairs_sweep = PairsSweep.model_validate(
            sweep_pairs(load_pairs(plan.cache_pairs), project.embedder, source=str(plan.cache_pairs),
                        confidence=project.config.eval.confidence).to_dict())
    context.stage("query-log replay", "done", started, f"hit rate {rate.value or 0:.1%} on "
                  f"{analysis.n_queries:,} logged queries")
    context.measured("cache hit rate", f"{source}: {rate.value or 0:.1%} "
                     f"[{rate.low or 0:.1%}, {rate.high or 0:.1%}]; this prices every cached variant")
    names = [n for n in context.plan.measured() if n.endswith(CACHED_SUFFIX)]
    repeat = analysis.exact_repeat_rate
    info = CacheMeasurement(
        mode="semantic", threshold=settings.semantic_threshold, guard=settings.guard,
        warm=WarmRecord(questions=warmed), sweep=sweep, pairs_sweep=pairs_sweep, n_queries=analysis.n_queries,
        distinct=analysis.n_distinct,
        log=LogSummary(verdict=analysis.verdict,
                       exact_repeat_rate=Rate(value=repeat.value, low=repeat.low, high=repeat.high,
                                                         k=repeat.k, n=repeat.n),
                       top_repeated=[Repeated(question=q, count=c) for q, c in analysis.top_repeated]))
    return {name: hit_rate for name in names}, info


def _conclude_study(context: BenchContext, workload: Workload, results: BenchResult, strategy: str,
                    adapters: Adapters, runs: StudyRuns) -> FinetuningStudy | None:
    """Pool the training seeds into the fine-tuned strategy's scores, then fit the learning curve and decide
    whether its verdict is settled — before pricing, so the advisor sees both."""
    from adaptlab.cost.evidence import choose_metric, evidence_of

    config = context.project.config
    resamples, confidence, seed = config.eval.bootstrap_resamples, config.eval.confidence, config.eval.seed
    first_seed = pool_seeds(results, strategy, runs, resamples=resamples, confidence=confidence, seed=seed)
    metric = choose_metric(evidence_of(results), workload.workload.quality_metric)
    if metric is None:
        context.warnings.append("no quality metric every strategy measured: no learning curve (set "
                                "workload.quality_metric)")
        return None
    study = conclude_study(results, strategy, adapters, runs, first_seed, metric,
                           answering_with_adapter=context.plan.needs_adapter, train_seed=config.train.seed,
                           significance=config.eval.significance, resamples=resamples, confidence=confidence,
                           seed=seed)
    if study.fit is not None:
        fit = study.fit
        context.measured("learning curve", f"{len(study.adapters) - study.train_seeds + 1} adapters on nested "
                         f"shares of {context.plan.train.name if context.plan.train else 'the training data'} "
                         f"(bench.learning_curve), each scored on the eval cases; fitted as {metric} = a + "
                         f"b·log2(examples): b = {fit.gain_per_doubling:+.3f} per doubling [{fit.low:+.3f}, "
                         f"{fit.high:+.3f}] over case resamples")
    if study.train_seeds > 1:
        context.measured("training seeds", f"{study.train_seeds} adapters on all the data with seeds "
                         f"{config.train.seed}…{config.train.seed + study.train_seeds - 1}: {strategy}'s scores are "
                         f"their mean, its intervals draw seeds then cases (spread {study.seed_spread or 0:.3f})")
    return study


def _price(context: BenchContext, workload: Workload, catalog: PriceCatalog, results: BenchResult) -> Advice:
    """The measured run priced in process: the cost model reads the same typed record results.json holds."""
    from adaptlab.cost.advise import advise
    from adaptlab.cost.evidence import evidence_of
    from adaptlab.cost.inputs import build_scenario

    started = time.perf_counter()
    context.on_stage("Pricing every strategy over the workload's horizon")
    if (workload.serving.mode == "self_hosted" and workload.serving.use_measured_latency
            and workload.training.measured_gpu_hours is None and context.training_seconds):
        context.measured("training cost", f"the adapter's measured training time ({context.training_seconds:.0f} s "
                         f"on this machine) per training run, priced as the serving machine")
    scenario = build_scenario(workload, catalog, evidence_of(results))
    advice = advise(scenario)
    winner = advice.winner.name if advice.winner else "none qualifies"
    context.stage("cost model", "done", started, f"{len(scenario.candidates)} variants priced; recommendation: "
                  f"{winner}")
    return advice


# ------------------------------------------------------------------------------------------------ results


def _results(context: BenchContext, report: EvalReport, run_id: str, final: Path, started: float,
             documents: DocumentsInput | None, data_check: DataCheck | None, cache_info: CacheMeasurement | None,
             hit_rates: dict[str, TrafficHitRate]) -> BenchResult:
    project, plan = context.project, context.plan
    config = project.config
    strategies = report.record().strategies
    for entry in strategies:
        entry.traffic_hit_rate = hit_rates.get(entry.name)
    generator = config.generator
    model = generator.model if generator.backend == "openai" else (generator.model_path or "SmolLM2-135M-Instruct "
                                                                   "Q4_1 (bundled)")
    reproduce = "adaptlab"
    if config.home:
        reproduce += f" --home {shlex.quote(str(config.home_dir()))}"
    reproduce += f" bench --config {shlex.quote(str(plan.config_path))}" if plan.config_path else " bench"
    train_info = None
    if plan.train is not None:
        from adaptlab.finetune.data import fingerprint

        train_info = FileInput(path=str(plan.train), sha256=fingerprint(plan.train),
                               n=sum(1 for line in plan.train.read_text(encoding="utf-8").splitlines()
                                     if line.strip()))
    log_info = None
    if plan.query_log is not None and cache_info is not None:
        log_info = QueryLogInput(path=str(plan.query_log), n_queries=cache_info.n_queries,
                                 distinct=cache_info.distinct)
    _describe_measurement(context, report.n_cases)
    return BenchResult(
        run_id=run_id, created=datetime.now(UTC).isoformat(timespec="seconds"), title=plan.title,
        config_path=str(plan.config_path or ""), reproduce=reproduce, out_dir=str(final),
        seconds=round(time.perf_counter() - started, 1),
        machine=Machine(cpu=platform.processor() or platform.machine(), cores=os.cpu_count() or 0,
                        threads=config.runtime.threads, python=platform.python_version(), adaptlab=__version__),
        models=Models(generator=f"{generator.backend}: {model}", embedder=project.embedder.name),
        n_cases=report.n_cases, repeats=report.repeats, seed=report.seed, confidence=report.confidence,
        significance=report.significance, k=report.k, cases_path=str(plan.cases), cases_sha256=report.cases_sha256,
        quality_metric=None,
        inputs=Inputs(documents=documents,
                      cases=FileInput(path=str(plan.cases), sha256=report.cases_sha256, n=report.n_cases),
                      train=train_info, query_log=log_info, workload=WorkloadInput(path=str(plan.workload))),
        stages=list(context.stages),
        skipped_strategies=[SkippedStrategy(name=s.name, reason=s.reason) for s in plan.skipped],
        warnings=list(dict.fromkeys(context.warnings)), strategies=strategies, advice=None, cache=cache_info,
        data_check=data_check, measurement=list(context.measurement), tracking_uri=report.tracking_uri,
        training_seconds=context.training_seconds, generators=report.generators)


def _describe_measurement(context: BenchContext, n_cases: int) -> None:
    config = context.project.config
    generator = config.generator
    context.measured(
        "quality", f"every strategy answered the same {n_cases} eval cases ({context.plan.cases.name}) × "
        f"{config.bench.repeats} with {generator.backend} (temperature {generator.temperature}, seed "
        f"{config.eval.seed}); scored by adaptlab's harness; {config.eval.confidence:.0%} CIs from "
        f"{config.eval.bootstrap_resamples:,} bootstrap resamples; differences by paired McNemar / bootstrap tests")
    context.measured(
        "latency", f"wall time of each answer on this machine ({os.cpu_count()} cores, {config.runtime.threads} "
        f"thread(s)), cache lookups and retrieval included; p50 and p95 over the cases")
    context.measured(
        "tokens", "prompt and completion tokens the generator reported for each generated answer (cache hits "
        "excluded)")
    context.measured(
        "cost", "the measured tokens per answer priced by the workload's deployment with the dated price catalog "
        "(`adaptlab prices`), over the workload's horizon, by `adaptlab advise`'s cost model")


def write_results(path: Path, results: BenchResult) -> None:
    from adaptlab.textfiles import write_text_atomic

    write_text_atomic(path, results.to_json())
