"""Fine-tuning judged fairly: the adapters behind a bench's fine-tuned strategy, and what they show.

Besides the adapter the fine-tuned strategy answers with (all the training data, train.seed), the bench trains
- the learning curve: adapters on nested shares of the data (`bench.learning_curve`), each scored on the eval
  cases by the same harness, then fitted, to say what more data is likely to gain;
- more training seeds (`bench.train_seeds`): the fine-tuned score becomes their mean, and its interval includes
  the spread across seeds, not only across cases;
and with `bench.forgetting_cases` it scores the base model and the adapter on another task's cases.

The fine-tuned result is *provisional* when the curve still rises at the full set, or when the validation metric
was still improving at the last evaluation: the advisor then says "not converged" instead of ranking it as a
settled loser. The study covers the first strategy that answers with the bench's adapter (usually `finetuned`);
every strategy answering with that adapter shares its provisional label.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from adaptlab.bench.adapter import FULL, AdapterBuild, AdapterSpec, BenchSplit, bench_split, ensure_adapter
from adaptlab.bench.context import BenchContext
from adaptlab.bench.curve import fit_learning_curve, pool_over_seeds, still_improving
from adaptlab.bench.results import (
    BenchResult,
    FinetuningStudy,
    ForgettingProbe,
    LearningCurveFit,
    TrainedAdapter,
)
from adaptlab.config import (
    AdaptlabConfig,
    FinetunedRagStrategyConfig,
    FinetunedStrategyConfig,
    PromptStrategyConfig,
    StrategyConfig,
)
from adaptlab.eval.harness import CaseResult, case_means
from adaptlab.eval.results import Estimate, MetricResult, PairedComparison, StrategyResult, finite

PROBE_BASE = "probe:base"
PROBE_ADAPTED = "probe:finetuned"
NOT_CONVERGED = "not converged: more data / steps likely help"


def study_specs(config: AdaptlabConfig) -> list[AdapterSpec]:
    """The full adapter first, then the learning curve's smaller shares, then the other training seeds."""
    shares = [AdapterSpec(share=share) for share in config.bench.learning_curve if share < 1]
    seeds = [AdapterSpec(seed_offset=offset) for offset in range(1, config.bench.train_seeds)]
    return [FULL, *shares, *seeds]


def variant_name(strategy: str, spec: AdapterSpec) -> str:
    """The name an extra adapter answers the eval cases as: finetuned[25%], finetuned[seed+1]."""
    if spec.share < 1:
        return f"{strategy}[{spec.share:.0%}]"
    return f"{strategy}[seed+{spec.seed_offset}]" if spec.seed_offset else strategy


@dataclass
class Adapters:
    """Every adapter a bench trained (or reused) for its fine-tuned strategies."""

    split: BenchSplit
    builds: dict[AdapterSpec, AdapterBuild]  # the full one first

    @property
    def full(self) -> AdapterBuild:
        return self.builds[FULL]


def build_adapters(context: BenchContext, quality_metric: str) -> Adapters | None:
    """Train (or reuse) the full adapter and the study's others, each with its own stage and progress."""
    plan, project = context.plan, context.project
    if not plan.needs_adapter:
        return None
    assert plan.train is not None
    config = project.config
    split = bench_split(config, plan.train)
    specs = study_specs(config)
    builds: dict[AdapterSpec, AdapterBuild] = {}
    for number, spec in enumerate(specs, start=1):
        started = time.perf_counter()
        examples = len(split.share(spec.share))
        context.on_stage(f"Fine-tuning LoRA adapter {number}/{len(specs)} on {plan.train.name}: {spec.label} "
                         f"({examples} examples; reused when unchanged)")
        label = f"Training (LoRA SFT, {spec.label})"

        def progress(step: int, total: int, _loss: float | None, label: str = label) -> None:
            context.progress(label, step, total)

        build = ensure_adapter(project, plan.train, spec, quality_metric=quality_metric, split=split,
                               progress=progress, on_stage=context.on_stage)
        builds[spec] = build
        name = "adapter" if spec == FULL else f"adapter {variant_name('', spec).strip('[]')}"
        context.stage(name, "reused" if build.reused else "built", started, build.detail)
    full = builds[FULL]
    context.training_seconds = float(full.training.get("seconds") or 0.0) or None
    validation = (f"; checkpoints kept by validation {full.training.get('task_metric_name')} on {len(split.validation)}"
                  f" held-out training examples" if full.training.get("task_metric") else "")
    others = (f"; {len(specs) - 1} more adapters for the learning curve and training seeds"
              if len(specs) > 1 else "")
    context.measured("fine-tuning", f"{full.detail}; [train] settings, {config.train.max_steps or 'epochs'} max "
                     f"steps{validation}{others}; the adapter is loaded by llama.cpp as a GGUF LoRA at answer time")
    return Adapters(split, builds)


def study_configs(config: AdaptlabConfig, strategy: str, adapters: Adapters, *,
                  probe: bool) -> dict[str, StrategyConfig]:
    """Strategy sections for the study's extra adapters (the fine-tuned strategy with another adapter) and for
    the forgetting probe (a plain prompt on the base model, and the same with the adapter)."""
    section = config.strategies[strategy]
    assert isinstance(section, (FinetunedStrategyConfig, FinetunedRagStrategyConfig)), strategy
    configs: dict[str, StrategyConfig] = {
        variant_name(strategy, spec): section.model_copy(update={"adapter": str(build.gguf_path)})
        for spec, build in adapters.builds.items() if spec != FULL}
    if probe:
        configs[PROBE_BASE] = PromptStrategyConfig(generator=section.generator)
        configs[PROBE_ADAPTED] = FinetunedStrategyConfig(generator=section.generator,
                                                         adapter=str(adapters.full.gguf_path))
    return configs


@dataclass
class StudyRuns:
    """What the study's extra strategies measured."""

    variants: dict[AdapterSpec, StrategyResult] = field(default_factory=dict)
    probe: list[StrategyResult] = field(default_factory=list)  # base, adapted
    probe_cases: str = ""


def measure_study(context: BenchContext, run_id: str, strategy: str, adapters: Adapters) -> StudyRuns:
    """Each extra adapter over the bench's eval cases, and the forgetting probe over its cases: the same runner,
    scorer and statistics as the measured strategies, in eval runs of their own (`<run id>-study`)."""
    from adaptlab.eval.cases import load_cases
    from adaptlab.eval.session import EvalRequest, EvalRunner
    from adaptlab.strategies.factory import build_strategy

    project, plan = context.project, context.plan
    config = project.config
    config.strategies.update(study_configs(config, strategy, adapters, probe=plan.forgetting_cases is not None))
    runs = StudyRuns()

    def request(cases_path, limit, study_id: str) -> EvalRequest:
        return EvalRequest(strategies=[], cases_path=cases_path, limit=limit, repeats=config.bench.repeats,
                           train_paths=[plan.train] if plan.train else [], concurrency=context.concurrency,
                           resume=study_id if context.resume else None, resume_must_exist=False)

    def measure(runner: EvalRunner, name: str, cases) -> StrategyResult:
        started = time.perf_counter()
        context.on_stage(f"Measuring {name} on {len(cases)} cases")
        report = runner.run([build_strategy(project, name)], cases,
                            progress=lambda label, done, total: context.progress(f"Eval {label}", done, total))
        context.warnings.extend(report.warnings)
        context.stage(f"eval {name}", "done", started, f"{len(cases)} cases × {config.bench.repeats}")
        return report.record().strategies[0]

    extra = [spec for spec in adapters.builds if spec != FULL]
    if extra:
        study_id = f"{run_id}-study"
        with EvalRunner(project, request(plan.cases, config.bench.limit, study_id), eval_id=study_id) as runner:
            for spec in extra:
                runs.variants[spec] = measure(runner, variant_name(strategy, spec), context.cases)
    if plan.forgetting_cases is not None:
        probe_id = f"{run_id}-forgetting"
        cases = load_cases(plan.forgetting_cases, limit=config.bench.limit)
        with EvalRunner(project, request(plan.forgetting_cases, config.bench.limit, probe_id),
                        eval_id=probe_id) as runner:
            runs.probe = [measure(runner, name, cases) for name in (PROBE_BASE, PROBE_ADAPTED)]
        runs.probe_cases = str(plan.forgetting_cases)
    return runs


def pool_seeds(results: BenchResult, strategy: str, runs: StudyRuns, *, resamples: int, confidence: float,
               seed: int) -> dict[str, MetricResult]:
    """With several training seeds, the fine-tuned strategy's every metric becomes the mean over seeds with an
    interval that draws seeds, then cases; its cases hold every seed's answers (`train_seed`). Returns its
    metrics as measured with train.seed alone (the learning curve's full point)."""
    entry = results.strategy(strategy)
    assert entry is not None, strategy
    first_seed = dict(entry.metrics)
    seeds = sorted((spec.seed_offset, run) for spec, run in runs.variants.items() if spec.seed_offset)
    if not seeds:
        return first_seed
    cases: list[list[CaseResult]] = [entry.cases] + [run.cases for _, run in seeds]
    pooled_metrics: dict[str, MetricResult] = {}
    for metric, measured in entry.metrics.items():
        pooled = pool_over_seeds([_scores(seed_cases, metric) for seed_cases in cases], resamples=resamples,
                                 confidence=confidence, seed=seed)
        if pooled is None:
            pooled_metrics[metric] = measured
            continue
        interval = pooled.interval
        pooled_metrics[metric] = measured.model_copy(update={
            "value": finite(interval.value), "low": finite(interval.low), "high": finite(interval.high),
            "n": interval.n, "train_seeds": len(cases), "seed_spread": finite(pooled.spread)})
    entry.metrics = pooled_metrics
    entry.cases = entry.cases + [replace(case, train_seed=offset) for offset, run in seeds for case in run.cases]
    return first_seed


def _scores(cases: Sequence[CaseResult], metric: str) -> dict[str, float | None]:
    return {case: scores.get(metric) for case, scores in case_means(cases).items()}


def conclude_study(results: BenchResult, strategy: str, adapters: Adapters, runs: StudyRuns,
                   first_seed: dict[str, MetricResult], metric: str, *, answering_with_adapter: Sequence[str],
                   train_seed: int, resamples: int, confidence: float, seed: int,
                   significance: float) -> FinetuningStudy:
    """The study record: the curve and its fit, the seeds' spread, the probe, and the provisional verdict, which
    is also set on every strategy answering with the adapter (and its cached variant) for the advisor."""
    entry = results.strategy(strategy)
    assert entry is not None, strategy
    seed0_cases = [case for case in entry.cases if case.train_seed == 0]
    trained: list[TrainedAdapter] = []
    curve: list[tuple[int, dict[str, float | None]]] = []
    for spec, build in sorted(adapters.builds.items(), key=lambda item: (item[0].seed_offset, item[0].share)):
        run = runs.variants.get(spec)
        quality = first_seed.get(metric) if spec == FULL else (run.metric(metric) if run else None)
        trained.append(_trained(spec, build, variant_name(strategy, spec), quality, train_seed + spec.seed_offset))
        if spec.seed_offset == 0:
            scores = _scores(seed0_cases if spec == FULL else (run.cases if run else []), metric)
            curve.append((len(adapters.split.share(spec.share)), scores))
    fit = fit_learning_curve(curve, resamples=resamples, confidence=confidence, seed=seed)
    fit_record = None if fit is None else LearningCurveFit(
        gain_per_doubling=fit.gain_per_doubling, low=fit.low, high=fit.high, intercept=fit.intercept,
        at_double=Estimate(value=finite(fit.at_double.value), low=finite(fit.at_double.low),
                           high=finite(fit.at_double.high), n=fit.at_double.n),
        examples=fit.examples, rising=fit.rising)

    provisional: list[str] = []
    if fit is not None and fit.rising:
        provisional.append(f"the learning curve still rises at {fit.examples} examples: {fit.gain_per_doubling:+.3f} "
                           f"{metric} per doubling of the data [{fit.low:+.3f}, {fit.high:+.3f}]")
    for adapter in trained:
        if adapter.share == 1 and still_improving(adapter.task_metric):
            first, last = adapter.task_metric[0], adapter.task_metric[-1]
            provisional.append(f"validation {adapter.task_metric_name} was still improving at the last evaluation "
                               f"({first[1]:.3f} at step {first[0]} → {last[1]:.3f} at step {last[0]}; "
                               f"{adapter.label})")
            break
    if provisional:
        reason = f"{NOT_CONVERGED} — " + "; ".join(provisional)
        names = set(answering_with_adapter)
        for candidate in results.strategies:
            if candidate.name in names or (candidate.cached and candidate.wraps in names):
                candidate.provisional = reason

    baseline = _baseline(results, metric)
    pooled = entry.metric(metric)
    return FinetuningStudy(
        strategy=strategy, metric=metric, adapters=trained, fit=fit_record, quality=pooled,
        baseline=baseline.name if baseline else None, baseline_quality=baseline.metric(metric) if baseline else None,
        train_seeds=pooled.train_seeds if pooled else 1, seed_spread=pooled.seed_spread if pooled else None,
        provisional=provisional,
        forgetting=_forgetting(runs, resamples=resamples, confidence=confidence, seed=seed,
                               significance=significance))


def _trained(spec: AdapterSpec, build: AdapterBuild, strategy: str, quality: MetricResult | None,
             seed: int) -> TrainedAdapter:
    t = build.training
    return TrainedAdapter(
        label=spec.label, share=spec.share, seed=seed,
        examples=int(t.get("train_examples") or 0), fingerprint=build.fingerprint, reused=build.reused,
        strategy=strategy, steps=int(t.get("steps") or 0), seconds=float(t.get("seconds") or 0.0),
        tokens_per_second=float(t.get("tokens_per_second") or 0.0),
        train_loss=[(int(s), float(v)) for s, v in t.get("train_loss") or []],
        eval_loss=[(int(s), float(v)) for s, v in t.get("eval_loss") or []],
        task_metric_name=str(t.get("task_metric_name") or ""),
        task_metric=[(int(s), float(v)) for s, v in t.get("task_metric") or []],
        best_step=t.get("best_step"), quality=quality)


def _baseline(results: BenchResult, metric: str) -> StrategyResult | None:
    """The best measured strategy that is not fine-tuned and not cached: the bar fine-tuning has to clear."""
    others = [s for s in results.strategies if not s.cached and s.family in ("prompt", "rag")
              and s.value(metric) is not None]
    return max(others, key=lambda s: s.value(metric) or 0.0, default=None)


def _forgetting(runs: StudyRuns, *, resamples: int, confidence: float, seed: int,
                significance: float) -> ForgettingProbe | None:
    from adaptlab.cost.evidence import QUALITY_PREFERENCE
    from adaptlab.eval.stats import paired_test

    if len(runs.probe) != 2:
        return None
    base, adapted = runs.probe
    common = [m for m in base.metrics if adapted.value(m) is not None and base.value(m) is not None]
    preferred = [m for m in QUALITY_PREFERENCE if m in common]
    if not common:
        return None
    metric = (preferred or common)[0]
    a_scores, b_scores = _scores(base.cases, metric), _scores(adapted.cases, metric)
    shared = [case for case in a_scores if case in b_scores]
    test = paired_test([a_scores[c] for c in shared], [b_scores[c] for c in shared], resamples=resamples,
                       confidence=confidence, seed=seed)
    comparison = None
    if test is not None:
        significant = test.p_value < significance
        comparison = PairedComparison(
            a=finite(test.a), b=finite(test.b), diff=finite(test.diff), low=finite(test.low), high=finite(test.high),
            p_value=finite(test.p_value), n=test.n, test=test.test, significant=significant,
            regressed=significant and test.diff < 0)
    base_quality, adapted_quality = base.metric(metric), adapted.metric(metric)
    assert base_quality is not None and adapted_quality is not None
    return ForgettingProbe(cases_path=runs.probe_cases, metric=metric, base=base_quality, adapted=adapted_quality,
                           comparison=comparison)
