"""Turn a workload, the price catalog and (optionally) a bench run into the numbers the cost model prices.

Each number keeps where it came from (measured in the run, declared in the workload, or the catalog's price
with its date), so the advice can label every figure a measurement or an estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from adaptlab.cost.catalog import PriceCatalog, PriceEntry
from adaptlab.cost.evidence import BenchRun, Quality, choose_metric, quality_of
from adaptlab.cost.tco import (
    DAYS_PER_MONTH,
    ApiServing,
    CacheCost,
    CostInputs,
    GpuServing,
    RagCost,
    TokenProfile,
    TrainingCost,
    Variant,
)
from adaptlab.cost.workload import RAG_FAMILIES, Workload
from adaptlab.eval.results import FAMILIES

SELF_HOSTED = "self-hosted"
SELF_HOSTED_DIMENSION = 384  # all-MiniLM-L6-v2, the bundled embedder


@dataclass(frozen=True)
class Candidate:
    """A priced variant with its quality evidence and where its numbers came from."""

    variant: Variant
    quality: Quality | None
    tokens_measured: bool
    hit_rate_source: str = ""  # cached variants: "measured in the run" | "declared" | "predicted from LOG"
    base: str | None = None  # cached variants: the uncached variant they wrap
    provisional: str = ""  # why its measured quality is not settled (an unconverged fine-tuned adapter)


@dataclass
class Scenario:
    workload: Workload
    inputs: CostInputs
    candidates: list[Candidate]
    metric: str | None
    estimate: bool  # True: nothing measured, every figure is declared
    run_id: str | None = None
    provenance: list[str] = field(default_factory=list)  # "serving GPU: gcp/l4 $0.71/h (catalog, 2025-06-01)"
    notes: list[str] = field(default_factory=list)
    retrains_per_year: float = 0.0


def _dated(entry: PriceEntry) -> str:
    as_of = entry.as_of.isoformat() if entry.as_of else "undated"
    return f"{entry.key}, {as_of}"


def _serving(workload: Workload, catalog: PriceCatalog, run: BenchRun | None,
             provenance: list[str]) -> ApiServing | GpuServing:
    serving = workload.serving
    if serving.mode == "api":
        model = catalog.api_model(serving.api_model)
        provenance.append(f"API model {model.key}: ${model.input_per_mtok:g} in / ${model.output_per_mtok:g} out "
                          f"per 1M tokens, cached read ${model.cached_read_per_mtok:g} (catalog, {_dated(model)})")
        return ApiServing(model.input_per_mtok, model.output_per_mtok, model.cached_read_per_mtok,
                          model.cache_write_per_mtok, model.min_cacheable_tokens, serving.prefix_cache,
                          serving.prefix_cache_ttl_seconds)
    if serving.gpu_usd_per_hour is not None:
        price = serving.gpu_usd_per_hour
        provenance.append(f"serving GPU: ${price:g}/h (declared)")
    else:
        gpu = catalog.gpu(serving.gpu)
        price = gpu.usd_per_hour
        provenance.append(f"serving GPU {gpu.gpu} at {gpu.provider}: ${price:g}/h (catalog, {_dated(gpu)})")
    measured: dict[str, float] = {}
    if serving.use_measured_latency and run is not None:
        measured = {s.name: s.seconds_per_answer for s in run.strategies}
        provenance.append("seconds per answer: measured latency in the run (the bench machine is priced as the "
                          "production machine)")
    else:
        provenance.append(f"throughput: {serving.prefill_tokens_per_second:g} prefill / "
                          f"{serving.decode_tokens_per_second:g} decode tokens/s per GPU at "
                          f"{serving.utilisation:.0%} utilisation, {serving.billing} billing (declared)")
    return GpuServing(price, serving.prefill_tokens_per_second, serving.decode_tokens_per_second,
                      serving.utilisation, serving.billing, measured)


def _deployments(workload: Workload, catalog: PriceCatalog, run: BenchRun, provenance: list[str]
                 ) -> dict[str, ApiServing | GpuServing]:
    """The run's models that carry their own price source ([generators.NAME] price_api_model or usd_per_hour),
    each as the deployment that prices the strategies answering with it; the others use the workload's serving."""
    serving = workload.serving
    deployments: dict[str, ApiServing | GpuServing] = {}
    for name, record in run.deployments.items():
        if record.price_api_model:
            model = catalog.api_model(record.price_api_model)
            deployments[name] = ApiServing(model.input_per_mtok, model.output_per_mtok, model.cached_read_per_mtok,
                                           model.cache_write_per_mtok, model.min_cacheable_tokens,
                                           serving.prefix_cache, serving.prefix_cache_ttl_seconds)
            provenance.append(f"strategies on {name} ({record.model}): API model {model.key}, "
                              f"${model.input_per_mtok:g} in / ${model.output_per_mtok:g} out per 1M tokens "
                              f"(catalog, {_dated(model)}), measured tokens")
        elif record.usd_per_hour is not None:
            measured = {s.name: s.seconds_per_answer for s in run.strategies if s.generator == name}
            deployments[name] = GpuServing(record.usd_per_hour, serving.prefill_tokens_per_second,
                                           serving.decode_tokens_per_second, serving.utilisation, "per_token",
                                           measured)
            provenance.append(f"strategies on {name} ({record.model}): self-hosted at ${record.usd_per_hour:g}/h "
                              f"(declared), measured seconds per answer at {serving.utilisation:.0%} utilisation")
    return deployments


def retrains_per_year(workload: Workload) -> float:
    """Retrains a year the fine-tuned-only model needs to keep up with the knowledge."""
    if workload.training.retrains_per_year is not None:
        return workload.training.retrains_per_year
    every = workload.workload.knowledge_changes_every_days
    return 365.0 / every if every else 0.0


def _training(workload: Workload, catalog: PriceCatalog, provenance: list[str], run: BenchRun | None,
              serving: ApiServing | GpuServing) -> TrainingCost:
    training = workload.training
    if (isinstance(serving, GpuServing) and workload.serving.use_measured_latency and run is not None
            and run.training_seconds and training.measured_gpu_hours is None):
        # The bench machine is priced as the production machine (as its latency is): so is its training run.
        hours = run.training_seconds / 3600
        provenance.append(f"training: {run.training_seconds:.0f} s per run, measured on the bench machine and "
                          f"priced as the serving machine at ${serving.gpu_usd_per_hour:g}/h")
        return TrainingCost(hours, serving.gpu_usd_per_hour, training.usd_per_run, training.data_prep_hours,
                            training.hours_per_retrain, retrains_per_year(workload))
    if training.gpu_usd_per_hour is not None:
        price, peak = training.gpu_usd_per_hour, None
        label = f"${price:g}/h (declared)"
    else:
        gpu = catalog.gpu(training.gpu)
        price, peak = gpu.usd_per_hour, gpu.peak_tflops
        label = f"{gpu.gpu} at {gpu.provider} ${price:g}/h (catalog, {_dated(gpu)})"
    if training.measured_gpu_hours is not None:
        hours = training.measured_gpu_hours
        provenance.append(f"training: {hours:g} GPU h per run (measured_gpu_hours), {label}")
    else:
        if peak is None:
            gpu = catalog.gpu(training.gpu)
            peak = gpu.peak_tflops
        examples = training.examples or workload.workload.clean_labelled_examples or 1000
        tokens = examples * training.tokens_per_example * training.epochs
        flops = training.flops_per_param_token * training.model_params_billion * 1e9 * tokens
        hours = flops / (peak * 1e12 * training.mfu) / 3600.0
        provenance.append(
            f"training: {training.flops_per_param_token:g} × {training.model_params_billion:g}B params × "
            f"{tokens:,.0f} tokens ({examples:,} examples × {training.tokens_per_example:g} × "
            f"{training.epochs:g} epochs) = {flops:.3g} FLOPs ÷ ({peak:g} TFLOPS × {training.mfu:.0%} MFU) "
            f"= {hours:.2f} GPU h per run, {label}")
    return TrainingCost(hours, price, training.usd_per_run, training.data_prep_hours, training.hours_per_retrain,
                        retrains_per_year(workload))


def _embedding_price(catalog: PriceCatalog, key: str) -> tuple[float, int | None, str]:
    if key == SELF_HOSTED:
        return 0.0, None, "self-hosted (no per-token cost)"
    entry = catalog.embedding(key)
    return entry.usd_per_mtok, entry.dimension, f"{entry.key} ${entry.usd_per_mtok:g}/1M tokens ({_dated(entry)})"


def _rag(workload: Workload, catalog: PriceCatalog, provenance: list[str]) -> RagCost:
    rag = workload.rag
    price, dimension, label = _embedding_price(catalog, rag.embedding)
    dimension = rag.dimension or dimension or SELF_HOSTED_DIMENSION
    chunks_per_document = math.ceil(rag.tokens_per_document / rag.chunk_tokens)
    gb_by_month = [(rag.documents + rag.new_documents_per_month * month) * chunks_per_document * dimension * 4
                   * rag.index_overhead / 1e9 for month in range(workload.workload.months)]
    if rag.vector_db_usd_per_month is not None:
        by_month = [rag.vector_db_usd_per_month] * len(gb_by_month)
    else:
        tiers = [catalog.hosting("vector_db", rag.vector_db, gb) for gb in gb_by_month]
        by_month = [tier.monthly_cost(gb) for tier, gb in zip(tiers, gb_by_month)]
        tier_names = {tier.key for tier in tiers}
    final_gb = gb_by_month[-1]
    provenance.append(f"embedding: {label}; {rag.documents:,} documents × {chunks_per_document} chunks × "
                      f"{dimension} dims → {final_gb:.3g} GB of vectors by the last month")
    if rag.vector_db_usd_per_month is not None:
        provenance.append(f"vector DB: ${rag.vector_db_usd_per_month:g}/month (declared)")
    else:
        provenance.append(f"vector DB: {', '.join(sorted(tier_names))} (catalog)")
    return RagCost(rag.documents * rag.tokens_per_document, rag.new_documents_per_month * rag.tokens_per_document,
                   price, tuple(by_month), rag.setup_hours)


def _cache(workload: Workload, catalog: PriceCatalog, hit_rate: float, provenance: list[str]) -> CacheCost:
    cache = workload.cache
    price, _, _ = _embedding_price(catalog, workload.rag.embedding)
    entries = workload.workload.queries_per_day * cache.ttl_days * (1.0 - hit_rate)
    gb = entries * cache.entry_bytes / 1e9
    if cache.hosting_usd_per_month is not None:
        hosting = cache.hosting_usd_per_month
        provenance.append(f"cache hosting: ${hosting:g}/month (declared)")
    else:
        tier = catalog.hosting("redis_hosting", cache.hosting, gb)
        hosting = tier.monthly_cost(gb)
        provenance.append(f"cache hosting: {tier.key} for {gb:.3g} GB ({entries:,.0f} answers × "
                          f"{cache.entry_bytes} B) → ${hosting:,.2f}/month (catalog, {_dated(tier)})")
    lookup_tokens = workload.workload.question_tokens if cache.semantic else 0
    return CacheCost(hosting, lookup_tokens, price, cache.setup_hours)


def declared_tokens(workload: Workload, family: str) -> TokenProfile:
    """Tokens of one answer from the workload's declared prompt parts (no bench run)."""
    facts = workload.workload
    fewshot = facts.fewshot_tokens if family == "prompt" else 0  # a fine-tuned model needs no examples
    context = workload.rag.context_tokens if family in RAG_FAMILIES else 0
    prompt = facts.system_tokens + fewshot + context + facts.question_tokens
    declared = workload.strategies.get(family)  # type: ignore[call-overload]
    completion = facts.completion_tokens
    if declared is not None:
        prompt = declared.prompt_tokens if declared.prompt_tokens is not None else prompt
        completion = declared.completion_tokens if declared.completion_tokens is not None else completion
    return TokenProfile(prompt, completion, facts.system_tokens + fewshot)


def declared_quality(workload: Workload, family: str, metric: str) -> Quality | None:
    declared = workload.strategies.get(family)  # type: ignore[call-overload]
    if declared is None or declared.quality is None:
        return None
    return Quality(metric or "quality", declared.quality, declared.quality_low, declared.quality_high, 0, False)


def build_scenario(workload: Workload, catalog: PriceCatalog, run: BenchRun | None = None, *,
                   predicted_hit_rate: tuple[float, str] | None = None) -> Scenario:
    """Everything the advisor prices. predicted_hit_rate: (rate, source) from a query-log analysis."""
    provenance: list[str] = []
    notes: list[str] = []
    facts = workload.workload
    metric = choose_metric(run, facts.quality_metric) if run is not None else (facts.quality_metric or None)
    if run is not None and metric is None:
        notes.append("no quality metric was measured for every strategy: ranking by cost alone — set "
                     "workload.quality_metric")

    # The answer cache's hit rate: measured beats declared beats predicted.
    declared_rate = workload.cache.hit_rate
    fallback: tuple[float, str] | None = None
    if declared_rate is not None:
        fallback = (declared_rate, "declared")
    elif predicted_hit_rate is not None:
        fallback = predicted_hit_rate

    candidates: list[Candidate] = []
    if run is not None:
        cached_for = {s.wraps: s for s in run.strategies if s.cached}
        considered = [s for s in run.strategies if s.family in facts.consider]
        skipped = sorted(s.name for s in run.strategies if s.family not in facts.consider)
        if skipped:
            notes.append(f"left out (workload.consider): {', '.join(skipped)}")
        deployments = _deployments(workload, catalog, run, provenance)
        for strategy in considered:
            if strategy.cached:
                continue
            own = deployments.get(strategy.generator)
            static = facts.system_tokens + (facts.fewshot_tokens if strategy.family == "prompt" else 0)
            tokens = TokenProfile(strategy.prompt_tokens, strategy.completion_tokens, static)
            quality = quality_of(strategy, metric) if metric else None
            candidates.append(Candidate(Variant(strategy.name, strategy.family, False, tokens, serving=own), quality,
                                        True, provisional=strategy.provisional))
            wrapper = cached_for.get(strategy.name)
            if wrapper is not None:
                cached_tokens = TokenProfile(wrapper.prompt_tokens, wrapper.completion_tokens, static)
                candidates.append(Candidate(
                    Variant(wrapper.name, strategy.family, True, cached_tokens, wrapper.hit_rate or 0.0,
                            serving=own),
                    (quality_of(wrapper, metric) if metric else None) or quality, True, wrapper.hit_rate_source,
                    strategy.name, wrapper.provisional or strategy.provisional))
            elif fallback is not None:
                candidates.append(Candidate(Variant(f"{strategy.name}+cache", strategy.family, True, tokens,
                                                    fallback[0], serving=own), quality, True, fallback[1],
                                            strategy.name, strategy.provisional))
        for strategy in considered:  # cached strategies whose inner strategy was not in the run
            if strategy.cached and run.strategy(strategy.wraps or "") is None:
                static = facts.system_tokens
                candidates.append(Candidate(
                    Variant(strategy.name, strategy.family, True,
                            TokenProfile(strategy.prompt_tokens, strategy.completion_tokens, static),
                            strategy.hit_rate or 0.0, serving=deployments.get(strategy.generator)),
                    quality_of(strategy, metric) if metric else None, True, strategy.hit_rate_source,
                    provisional=strategy.provisional))
        measured_families = {c.variant.family for c in candidates}
        extra = [f for f in facts.consider if f in workload.strategies and f not in measured_families]
    else:
        extra = [f for f in FAMILIES if f in facts.consider]
    for family in extra:
        tokens = declared_tokens(workload, family)
        quality = declared_quality(workload, family, metric or "")
        name = family if run is None else f"{family} (declared)"
        candidates.append(Candidate(Variant(name, family, False, tokens), quality, False))
        if fallback is not None:
            candidates.append(Candidate(Variant(f"{name}+cache", family, True, tokens, fallback[0]), quality,
                                        False, fallback[1], name))
    if fallback is None and not any(c.variant.cached for c in candidates):
        notes.append("the answer cache is not priced: no hit rate — bench a cached strategy, set [cache] query_log "
                     "to predict it from your traffic, or declare [cache] hit_rate")

    hit_rates = [c.variant.hit_rate for c in candidates if c.variant.cached]
    cache_rate = max(hit_rates) if hit_rates else 0.0
    serving = _serving(workload, catalog, run, provenance)
    inputs = CostInputs(
        queries_per_day=facts.queries_per_day, months=facts.months, serving=serving,
        training=_training(workload, catalog, provenance, run, serving),
        rag=_rag(workload, catalog, provenance),
        cache=_cache(workload, catalog, cache_rate, provenance),
        engineer_usd_per_hour=facts.engineer_usd_per_hour, growth_per_month=facts.growth_per_month)
    volume = f"{facts.queries_per_day:,.0f} queries/day ({facts.queries_per_day * DAYS_PER_MONTH:,.0f}/month)"
    provenance.insert(0, f"traffic: {volume} (declared)")
    return Scenario(workload, inputs, candidates, metric, run is None, run.run_id if run else None,
                    provenance, notes, retrains_per_year(workload))
