"""Total cost of ownership, month by month, from resolved numbers (no files, no catalog: pure arithmetic).

Every price here is already a number: `adaptlab.cost.inputs` turns the workload, the price catalog and a bench
run into a `CostInputs`. Keeping this module pure lets tests check each formula against hand-computed cases
and lets the sensitivity analysis move one input at a time.

What a strategy variant pays, per month:
  inference      queries × (1 − cache hit rate) × price of one answer
                   api: prompt and completion tokens × list prices, the static prefix at the cached-read price
                        when the provider's prefix cache pays off at this traffic
                   self-hosted: GPU seconds per answer (prompt ÷ prefill rate + completion ÷ decode rate)
                        × $/h ÷ utilisation; 'dedicated' billing rounds up to whole GPUs running all month
  training       one run in month 1 (FLOPs ≈ 6 × params × tokens × epochs ÷ (peak × MFU), or measured hours)
  retraining     retrains per year ÷ 12 × the cost of a run (fine-tuned-only: each change of knowledge)
  embedding      the corpus once in month 1, new documents every month
  vector DB      hosting the month's vectors (count × dimension × 4 bytes × index overhead)
  cache          Redis hosting, plus embedding each question for semantic lookups
  engineering    hours × rate (data preparation, setup, each retrain)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from adaptlab.cache.prompt_caching import (
    PromptLayout,
    ProviderPricing,
    simulate,
    steady_timestamps,
)
from adaptlab.eval.results import Family

DAYS_PER_MONTH = 365.0 / 12.0
SECONDS_PER_DAY = 86_400.0
HOURS_PER_MONTH = 24.0 * DAYS_PER_MONTH


@dataclass(frozen=True)
class ApiServing:
    """A hosted model billed per token (USD per million tokens)."""

    input_per_mtok: float
    output_per_mtok: float
    cached_read_per_mtok: float
    cache_write_per_mtok: float
    min_cacheable_tokens: int = 1024
    prefix_cache: bool = True
    prefix_cache_ttl_seconds: float = 300.0


@dataclass(frozen=True)
class GpuServing:
    """Your own GPUs: a throughput and an hourly price."""

    gpu_usd_per_hour: float
    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    utilisation: float = 0.6
    billing: Literal["per_token", "dedicated"] = "per_token"
    # Measured machine seconds per answer (latency in a bench run); replaces the throughput estimate when set.
    seconds_per_query: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenProfile:
    """Tokens of one answer; the static prefix (system prompt, few-shot) is what a provider can cache."""

    prompt_tokens: float
    completion_tokens: float
    static_prefix_tokens: float = 0.0


@dataclass(frozen=True)
class Variant:
    """One priced candidate: a strategy family, with or without the answer cache."""

    name: str  # e.g. "rag" or "rag+cache", or a bench run's strategy name
    family: Family
    cached: bool
    tokens: TokenProfile
    hit_rate: float = 0.0  # share of queries the answer cache serves (cached variants)
    # Its own deployment when its model is not the workload's ([generators.NAME] with a price source); None: the
    # workload's serving prices it.
    serving: ApiServing | GpuServing | None = None


@dataclass(frozen=True)
class TrainingCost:
    gpu_hours_per_run: float
    gpu_usd_per_hour: float
    usd_per_run: float = 0.0
    data_prep_hours: float = 0.0
    hours_per_retrain: float = 0.0
    retrains_per_year: float = 0.0  # the fine-tuned-only family (finetuned_rag keeps knowledge fresh through retrieval)

    @property
    def compute_usd(self) -> float:
        """GPU time and other costs of one run, without engineering hours."""
        return self.gpu_hours_per_run * self.gpu_usd_per_hour + self.usd_per_run

    def retrain_usd(self, engineer_usd_per_hour: float) -> float:
        return self.compute_usd + self.hours_per_retrain * engineer_usd_per_hour


@dataclass(frozen=True)
class RagCost:
    corpus_tokens: float  # embedded once, month 1
    new_tokens_per_month: float
    embed_usd_per_mtok: float
    vector_db_usd_by_month: tuple[float, ...]  # hosting for each month's vector count (independent of traffic)
    setup_hours: float = 0.0


@dataclass(frozen=True)
class CacheCost:
    hosting_usd_per_month: float
    lookup_tokens_per_query: float = 0.0  # semantic lookups embed each question
    embed_usd_per_mtok: float = 0.0
    setup_hours: float = 0.0


@dataclass(frozen=True)
class CostInputs:
    queries_per_day: float
    months: int
    serving: ApiServing | GpuServing
    training: TrainingCost
    rag: RagCost
    cache: CacheCost
    engineer_usd_per_hour: float = 100.0
    growth_per_month: float = 0.0

    def queries_in_month(self, month: int) -> float:
        """Queries answered in month `month` (1-based), with compounding growth."""
        return self.queries_per_day * DAYS_PER_MONTH * (1.0 + self.growth_per_month) ** (month - 1)

    def with_volume(self, queries_per_day: float) -> CostInputs:
        return replace(self, queries_per_day=queries_per_day)


@dataclass(frozen=True)
class CostLine:
    name: str
    monthly: tuple[float, ...]
    note: str = ""

    @property
    def total(self) -> float:
        return sum(self.monthly)


@dataclass(frozen=True)
class VariantTco:
    variant: Variant
    lines: tuple[CostLine, ...]
    usd_per_answer: float  # inference price of one answer generated (a cache miss)
    prefix_cache_note: str = ""

    @property
    def months(self) -> int:
        return len(self.lines[0].monthly) if self.lines else 0

    @property
    def monthly_totals(self) -> list[float]:
        return [sum(line.monthly[m] for line in self.lines) for m in range(self.months)]

    @property
    def cumulative(self) -> list[float]:
        running, out = 0.0, []
        for value in self.monthly_totals:
            running += value
            out.append(running)
        return out

    @property
    def total(self) -> float:
        return sum(line.total for line in self.lines)

    def line(self, name: str) -> CostLine | None:
        return next((line for line in self.lines if line.name == name), None)



# ----------------------------------------------------------------------------------------------- inference


def api_usd_per_answer(serving: ApiServing, tokens: TokenProfile, queries_per_day: float) -> tuple[float, str]:
    """Price of one answer from a hosted API; the provider's prefix cache is priced by replaying steady
    traffic through it (adaptlab.cache.prompt_caching) and used only when it is cheaper."""
    plain = (tokens.prompt_tokens * serving.input_per_mtok + tokens.completion_tokens * serving.output_per_mtok) / 1e6
    # Under one request a day no request finds the prefix still cached.
    if not serving.prefix_cache or tokens.static_prefix_tokens <= 0 or queries_per_day < 1 or plain <= 0:
        return plain, ""
    prefix = round(tokens.static_prefix_tokens)
    layout = PromptLayout(system_tokens=prefix,
                          question_tokens=max(0, round(tokens.prompt_tokens) - prefix),
                          output_tokens=round(tokens.completion_tokens))
    input_price = serving.input_per_mtok
    pricing = ProviderPricing(
        input_per_million=input_price, output_per_million=serving.output_per_mtok,
        cached_read_multiplier=serving.cached_read_per_mtok / input_price if input_price else 0.0,
        cache_write_multiplier_5m=serving.cache_write_per_mtok / input_price if input_price else 1.0,
        cache_write_multiplier_1h=serving.cache_write_per_mtok / input_price if input_price else 1.0,
        min_cacheable_tokens=serving.min_cacheable_tokens)
    per_hour = queries_per_day / 24.0
    # Steady traffic: a few thousand requests show the steady-state read rate; a full day of 1M would not add.
    ttl_hours = serving.prefix_cache_ttl_seconds / 3600.0
    hours = 24.0 if per_hour * 24.0 <= 2000.0 else max(2000.0 / per_hour, 3 * ttl_hours)
    result = simulate(layout, pricing, steady_timestamps(per_hour, hours=hours), serving.prefix_cache_ttl_seconds)
    # The replay rounds tokens to integers: apply its ratio to the exact price rather than its absolute cost.
    ratio = result.cost_with_cache / result.cost_without_cache if result.cost_without_cache else 1.0
    if result.reads == 0 or ratio >= 1.0:  # too short a prefix, or traffic too sparse: not worth caching
        return plain, ""
    return plain * ratio, (f"provider prefix cache: {prefix} static tokens read at the cached price on "
                           f"{result.read_rate:.0%} of requests")


def gpu_seconds_per_answer(serving: GpuServing, variant: Variant) -> float:
    measured = serving.seconds_per_query.get(variant.name)
    if measured is not None:
        return measured
    return (variant.tokens.prompt_tokens / serving.prefill_tokens_per_second
            + variant.tokens.completion_tokens / serving.decode_tokens_per_second)


def inference_by_month(inputs: CostInputs, variant: Variant) -> tuple[list[float], float, str]:
    """(inference cost of each month, price of one generated answer, prefix-cache note)."""
    miss_rate = 1.0 - (variant.hit_rate if variant.cached else 0.0)
    serving = variant.serving or inputs.serving
    if isinstance(serving, ApiServing):
        per_answer, note = api_usd_per_answer(serving, variant.tokens, inputs.queries_per_day * miss_rate)
    else:
        seconds = gpu_seconds_per_answer(serving, variant)
        per_answer, note = seconds * serving.gpu_usd_per_hour / 3600.0 / serving.utilisation, ""
    if isinstance(serving, ApiServing) or serving.billing == "per_token":
        return [inputs.queries_in_month(m) * miss_rate * per_answer for m in range(1, inputs.months + 1)], \
            per_answer, note
    monthly = []  # dedicated: whole GPUs, enough for each month's load at the target utilisation
    for m in range(1, inputs.months + 1):
        busy_fraction = inputs.queries_in_month(m) / DAYS_PER_MONTH * miss_rate * seconds / SECONDS_PER_DAY
        gpus = math.ceil(busy_fraction / serving.utilisation - 1e-9) if busy_fraction > 0 else 0
        monthly.append(gpus * serving.gpu_usd_per_hour * HOURS_PER_MONTH)
    return monthly, per_answer, ""


# --------------------------------------------------------------------------------------------- the whole TCO


def variant_tco(inputs: CostInputs, variant: Variant) -> VariantTco:
    months = inputs.months
    rate = inputs.engineer_usd_per_hour

    def spread(first: float = 0.0, every: float = 0.0) -> tuple[float, ...]:
        return tuple((first if m == 0 else 0.0) + every for m in range(months))

    inference, per_answer, prefix_note = inference_by_month(inputs, variant)
    lines = [CostLine("inference", tuple(inference), prefix_note)]
    if variant.family in ("finetuned", "finetuned_rag"):
        training = inputs.training
        # The first run's engineering is data preparation (its own line), not a retrain's hours.
        lines.append(CostLine("training", spread(training.compute_usd),
                              f"{training.gpu_hours_per_run:.2f} GPU h per run"))
        retrains = training.retrains_per_year if variant.family == "finetuned" else 0.0
        if retrains:
            lines.append(CostLine("retraining", spread(every=retrains / 12.0 * training.retrain_usd(rate)),
                                  f"{retrains:.3g} retrains a year"))
        if training.data_prep_hours:
            lines.append(CostLine("engineering", spread(training.data_prep_hours * rate), "data preparation"))
    if variant.family in ("rag", "finetuned_rag"):
        rag = inputs.rag
        embed = tuple(((rag.corpus_tokens if m == 0 else 0.0) + rag.new_tokens_per_month) * rag.embed_usd_per_mtok
                      / 1e6 for m in range(months))
        lines.append(CostLine("embedding", embed))
        vector_db = tuple(rag.vector_db_usd_by_month[min(m, len(rag.vector_db_usd_by_month) - 1)]
                          if rag.vector_db_usd_by_month else 0.0 for m in range(months))
        lines.append(CostLine("vector_db", vector_db))
        if rag.setup_hours:
            lines.append(CostLine("rag_setup", spread(rag.setup_hours * rate), "engineering"))
    if variant.cached:
        cache = inputs.cache
        lookups = tuple(inputs.queries_in_month(m) * cache.lookup_tokens_per_query * cache.embed_usd_per_mtok / 1e6
                        for m in range(1, months + 1))
        lines.append(CostLine("cache_hosting", spread(every=cache.hosting_usd_per_month)))
        lines.append(CostLine("cache_lookups", lookups))
        if cache.setup_hours:
            lines.append(CostLine("cache_setup", spread(cache.setup_hours * rate), "engineering"))
    return VariantTco(variant, tuple(lines), per_answer, prefix_note)


def tco_all(inputs: CostInputs, variants: Sequence[Variant]) -> dict[str, VariantTco]:
    return {variant.name: variant_tco(inputs, variant) for variant in variants}


def total_at(inputs: CostInputs, variant: Variant, queries_per_day: float) -> float:
    return variant_tco(inputs.with_volume(queries_per_day), variant).total


# ------------------------------------------------------------------------------------------------ break-even

MIN_VOLUME = 1.0
MAX_VOLUME = 1e9


def volume_grid(points: int = 61, low: float = MIN_VOLUME, high: float = MAX_VOLUME) -> list[float]:
    step = (math.log10(high) - math.log10(low)) / (points - 1)
    return [10 ** (math.log10(low) + i * step) for i in range(points)]


@dataclass(frozen=True)
class BreakEven:
    a: str
    b: str
    queries_per_day: float  # where the two totals cross
    cheaper_below: str  # the one cheaper at lower volume



def break_even(inputs: CostInputs, a: Variant, b: Variant, *, grid: Sequence[float] | None = None
               ) -> list[BreakEven]:
    """Volumes (queries/day) where a and b cost the same over the horizon: a sign change of their difference on
    a log grid, refined by bisection. Usually one crossing (fixed costs vs per-query costs), none when one
    variant is cheaper at every volume; 'dedicated' GPU billing can add more. Cache hosting (sized at the
    workload's volume) and vector DB hosting (sized by the corpus) stay fixed along the volume axis."""
    grid = list(grid or volume_grid())
    diffs = [total_at(inputs, a, q) - total_at(inputs, b, q) for q in grid]
    crossings: list[BreakEven] = []
    for i in range(len(grid) - 1):
        d0, d1 = diffs[i], diffs[i + 1]
        if d0 == 0 or (d0 > 0) == (d1 > 0):
            continue
        low, high = grid[i], grid[i + 1]
        for _ in range(60):
            mid = math.sqrt(low * high)
            dm = total_at(inputs, a, mid) - total_at(inputs, b, mid)
            if (dm > 0) == (d0 > 0):
                low = mid
            else:
                high = mid
        crossings.append(BreakEven(a.name, b.name, math.sqrt(low * high), a.name if d0 < 0 else b.name))
    return crossings


def all_break_evens(inputs: CostInputs, variants: Sequence[Variant]) -> list[BreakEven]:
    grid = volume_grid()
    out: list[BreakEven] = []
    for i, a in enumerate(variants):
        for b in variants[i + 1:]:
            out.extend(break_even(inputs, a, b, grid=grid))
    return out


# ------------------------------------------------------------------------------------------------ sensitivity


@dataclass(frozen=True)
class Knob:
    """One input the sensitivity table moves: a label and how to scale it."""

    label: str
    scale: Callable[[CostInputs, list[Variant], float], tuple[CostInputs, list[Variant]]]


def _scale_tokens(attr: str) -> Callable[[CostInputs, list[Variant], float], tuple[CostInputs, list[Variant]]]:
    def apply(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
        return inputs, [replace(v, tokens=replace(v.tokens, **{attr: getattr(v.tokens, attr) * factor}))
                        for v in variants]
    return apply


def _context_tokens(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
    """Retrieved context: the RAG families' prompt tokens beyond the prompt family's."""
    base = {v.cached: v.tokens.prompt_tokens for v in variants if v.family == "prompt"}
    base_ft = {v.cached: v.tokens.prompt_tokens for v in variants if v.family == "finetuned"}
    out = []
    for v in variants:
        ref = (base if v.family == "rag" else base_ft if v.family == "finetuned_rag" else {}).get(v.cached)
        if ref is None or v.family not in ("rag", "finetuned_rag"):
            out.append(v)
            continue
        extra = max(0.0, v.tokens.prompt_tokens - ref)
        out.append(replace(v, tokens=replace(v.tokens, prompt_tokens=ref + extra * factor)))
    return inputs, out


def _serving(attr: str) -> Callable[[CostInputs, list[Variant], float], tuple[CostInputs, list[Variant]]]:
    def apply(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
        serving = inputs.serving
        if not hasattr(serving, attr):
            return inputs, variants
        value = getattr(serving, attr) * factor
        if attr == "utilisation":
            value = min(1.0, value)
        return replace(inputs, serving=replace(serving, **{attr: value})), variants
    return apply


def _training(attr: str) -> Callable[[CostInputs, list[Variant], float], tuple[CostInputs, list[Variant]]]:
    def apply(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
        return replace(inputs, training=replace(inputs.training,
                                                **{attr: getattr(inputs.training, attr) * factor})), variants
    return apply


def _vector_db(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
    rag = inputs.rag
    return replace(inputs, rag=replace(rag, vector_db_usd_by_month=tuple(v * factor for v in
                                                                          rag.vector_db_usd_by_month))), variants


def _hit_rate(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
    return inputs, [replace(v, hit_rate=min(1.0, v.hit_rate * factor)) if v.cached else v for v in variants]


def _volume(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
    return inputs.with_volume(inputs.queries_per_day * factor), variants


def _cache_hosting(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
    return replace(inputs, cache=replace(inputs.cache,
                                         hosting_usd_per_month=inputs.cache.hosting_usd_per_month * factor)), variants


def _engineer_rate(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
    return replace(inputs, engineer_usd_per_hour=inputs.engineer_usd_per_hour * factor), variants


def _own_deployment(target: ApiServing | GpuServing
                    ) -> Callable[[CostInputs, list[Variant], float], tuple[CostInputs, list[Variant]]]:
    """Scale the price of one [generators.NAME] deployment, for the variants priced on it."""
    def scaled(serving: ApiServing | GpuServing, factor: float) -> ApiServing | GpuServing:
        if isinstance(serving, ApiServing):
            return replace(serving, input_per_mtok=serving.input_per_mtok * factor,
                           output_per_mtok=serving.output_per_mtok * factor,
                           cached_read_per_mtok=serving.cached_read_per_mtok * factor,
                           cache_write_per_mtok=serving.cache_write_per_mtok * factor)
        return replace(serving, gpu_usd_per_hour=serving.gpu_usd_per_hour * factor)

    def apply(inputs: CostInputs, variants: list[Variant], factor: float) -> tuple[CostInputs, list[Variant]]:
        return inputs, [replace(v, serving=scaled(v.serving, factor)) if v.serving == target else v
                        for v in variants]
    return apply


def knobs(inputs: CostInputs, variants: Sequence[Variant] = ()) -> list[Knob]:
    """The inputs the sensitivity table moves, for this deployment and each variant's own (a strategy on a
    [generators.NAME] model with its own price)."""
    out = [Knob("queries/day", _volume),
           Knob("prompt tokens", _scale_tokens("prompt_tokens")),
           Knob("completion tokens", _scale_tokens("completion_tokens")),
           Knob("retrieved context tokens", _context_tokens)]
    if isinstance(inputs.serving, ApiServing):
        out += [Knob("API input price", _serving("input_per_mtok")),
                Knob("API output price", _serving("output_per_mtok"))]
    else:
        out += [Knob("serving GPU $/h", _serving("gpu_usd_per_hour")),
                Knob("decode tokens/s", _serving("decode_tokens_per_second")),
                Knob("prefill tokens/s", _serving("prefill_tokens_per_second")),
                Knob("GPU utilisation", _serving("utilisation"))]
    out += [Knob("training GPU hours", _training("gpu_hours_per_run")),
            Knob("training GPU $/h", _training("gpu_usd_per_hour")),
            Knob("retrains/year", _training("retrains_per_year")),
            Knob("vector DB hosting", _vector_db),
            Knob("cache hit rate", _hit_rate),
            Knob("cache hosting", _cache_hosting),
            Knob("engineer $/h", _engineer_rate)]
    deployments: list[ApiServing | GpuServing] = []
    for variant in variants:
        if variant.serving is not None and variant.serving not in deployments:
            deployments.append(variant.serving)
    for deployment in deployments:
        names = sorted({v.name.removesuffix("+cache") for v in variants if v.serving == deployment})
        unit = "API prices" if isinstance(deployment, ApiServing) else "$/h"
        out.append(Knob(f"{unit} of the model behind {', '.join(names)}", _own_deployment(deployment)))
    return out


@dataclass(frozen=True)
class SensitivityRow:
    label: str
    low_winner: str  # winner with the input at −50%
    high_winner: str  # at +50%
    base_winner: str

    @property
    def changes_winner(self) -> bool:
        return self.low_winner != self.base_winner or self.high_winner != self.base_winner



def sensitivity(inputs: CostInputs, variants: Sequence[Variant],
                pick: Callable[[CostInputs, list[Variant]], str], *, swing: float = 0.5) -> list[SensitivityRow]:
    """Move each input ±swing and ask `pick` (the advisor's ranking) for the winner."""
    base = pick(inputs, list(variants))
    rows = []
    for knob in knobs(inputs, variants):
        winners = []
        for factor in (1.0 - swing, 1.0 + swing):
            moved_inputs, moved_variants = knob.scale(inputs, list(variants), factor)
            winners.append(pick(moved_inputs, moved_variants))
        rows.append(SensitivityRow(knob.label, winners[0], winners[1], base))
    return rows
