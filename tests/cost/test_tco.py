"""The TCO formulas against hand-computed cases, and their properties (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptlab.cost.tco import (
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    ApiServing,
    CacheCost,
    CostInputs,
    GpuServing,
    RagCost,
    TokenProfile,
    TrainingCost,
    Variant,
    api_usd_per_answer,
    break_even,
    sensitivity,
    variant_tco,
)

API = ApiServing(input_per_mtok=1.0, output_per_mtok=2.0, cached_read_per_mtok=0.1, cache_write_per_mtok=1.25,
                 min_cacheable_tokens=1024, prefix_cache=False)
GPU = GpuServing(gpu_usd_per_hour=3.6, prefill_tokens_per_second=1000, decode_tokens_per_second=100,
                 utilisation=0.5)
TRAINING = TrainingCost(gpu_hours_per_run=2.0, gpu_usd_per_hour=3.0, usd_per_run=4.0, data_prep_hours=0.0,
                        hours_per_retrain=1.0, retrains_per_year=12.0)
RAG = RagCost(corpus_tokens=1e6, new_tokens_per_month=1e5, embed_usd_per_mtok=0.1,
              vector_db_usd_by_month=(5.0,) * 12)
CACHE = CacheCost(hosting_usd_per_month=10.0, lookup_tokens_per_query=20, embed_usd_per_mtok=0.1)
TOKENS = TokenProfile(prompt_tokens=1000, completion_tokens=500)


def inputs(serving=API, queries_per_day=1000.0, **changes) -> CostInputs:
    base = CostInputs(queries_per_day=queries_per_day, months=12, serving=serving, training=TRAINING, rag=RAG,
                      cache=CACHE, engineer_usd_per_hour=100.0)
    return replace(base, **changes)


def variant(family="prompt", cached=False, hit_rate=0.0, tokens=TOKENS, name=None) -> Variant:
    return Variant(name or family + ("+cache" if cached else ""), family, cached, tokens, hit_rate)


# ------------------------------------------------------------------------------------------- hand-computed


def test_api_inference_is_tokens_times_list_prices():
    tco = variant_tco(inputs(), variant())
    assert tco.usd_per_answer == pytest.approx(1000 * 1e-6 + 500 * 2e-6)  # $0.002
    assert tco.line("inference").monthly[0] == pytest.approx(1000 * DAYS_PER_MONTH * 0.002)  # $60.83
    assert tco.total == pytest.approx(365 * 1000 * 0.002)  # $730 a year
    assert [line.name for line in tco.lines] == ["inference"]


def test_self_hosted_per_token_is_gpu_seconds_times_price_over_utilisation():
    tco = variant_tco(inputs(GPU), variant())
    # 1000 prompt ÷ 1000/s + 500 completion ÷ 100/s = 6 s; 6 s × $3.6/h ÷ 3600 ÷ 0.5 = $0.012
    assert tco.usd_per_answer == pytest.approx(0.012)
    assert tco.total == pytest.approx(365 * 1000 * 0.012)


def test_dedicated_billing_rounds_up_to_whole_gpus():
    serving = replace(GPU, billing="dedicated", utilisation=0.6)
    tokens = TokenProfile(1000, 100)  # 1 s + 1 s = 2 s per answer
    q = 0.7 * 86_400 / 2  # busy 70% of one GPU → 0.7 / 0.6 → 2 GPUs
    tco = variant_tco(inputs(serving, queries_per_day=q), variant(tokens=tokens))
    assert tco.line("inference").monthly[0] == pytest.approx(2 * 3.6 * HOURS_PER_MONTH)
    assert variant_tco(inputs(serving, queries_per_day=0), variant(tokens=tokens)).total == 0


def test_finetuned_pays_a_first_run_then_retrains():
    tco = variant_tco(inputs(), variant("finetuned"))
    assert tco.line("training").monthly == pytest.approx((2 * 3.0 + 4.0,) + (0.0,) * 11)  # $10, once
    # each retrain: GPU $6 + $4 + 1 engineering hour × $100 = $110; 12 a year → $110 a month
    assert tco.line("retraining").monthly == pytest.approx((110.0,) * 12)
    assert tco.total == pytest.approx(730 + 10 + 12 * 110)


def test_finetuned_rag_trains_once_and_pays_retrieval():
    tco = variant_tco(inputs(), variant("finetuned_rag"))
    assert tco.line("retraining") is None  # knowledge stays fresh through retrieval
    # corpus 1M tokens × $0.1/M = $0.10 once; new 0.1M tokens a month = $0.01 a month; vector DB $5 a month
    assert tco.line("embedding").monthly[0] == pytest.approx(0.1 + 0.01)
    assert tco.line("embedding").monthly[5] == pytest.approx(0.01)
    assert tco.line("vector_db").total == pytest.approx(60.0)
    assert tco.total == pytest.approx(730 + 10 + 0.1 + 12 * 0.01 + 60)


def test_cache_removes_hits_from_inference_and_adds_hosting_and_lookups():
    tco = variant_tco(inputs(), variant("prompt", cached=True, hit_rate=0.25))
    assert tco.line("inference").total == pytest.approx(0.75 * 730)
    assert tco.line("cache_hosting").total == pytest.approx(120.0)
    # every question is embedded for the lookup: 365k × 20 tokens × $0.1/M
    assert tco.line("cache_lookups").total == pytest.approx(365_000 * 20 * 0.1 / 1e6)


def test_growth_compounds_monthly():
    tco = variant_tco(inputs(growth_per_month=0.1), variant())
    monthly = tco.line("inference").monthly
    assert monthly[1] / monthly[0] == pytest.approx(1.1)
    assert monthly[11] / monthly[0] == pytest.approx(1.1 ** 11)


def test_provider_prefix_cache_discounts_the_static_prefix_on_dense_traffic():
    serving = replace(API, prefix_cache=True)
    tokens = TokenProfile(prompt_tokens=3000, completion_tokens=100, static_prefix_tokens=2000)
    per_answer, note = api_usd_per_answer(serving, tokens, queries_per_day=100_000)
    plain = (3000 * 1.0 + 100 * 2.0) / 1e6
    # almost every request reads the 2000-token prefix at $0.1/M instead of $1/M
    expected = (1000 * 1.0 + 2000 * 0.1 + 100 * 2.0) / 1e6
    assert per_answer == pytest.approx(expected, rel=0.01)
    assert per_answer < plain and "prefix cache" in note


def test_provider_prefix_cache_is_not_used_when_sparse_traffic_makes_it_dearer():
    serving = replace(API, prefix_cache=True)
    tokens = TokenProfile(prompt_tokens=3000, completion_tokens=100, static_prefix_tokens=2000)
    per_answer, _ = api_usd_per_answer(serving, tokens, queries_per_day=24)  # one an hour, TTL 5 min
    assert per_answer == pytest.approx((3000 * 1.0 + 100 * 2.0) / 1e6)


def test_break_even_of_fixed_versus_per_query_cost():
    cheap_per_query = variant("finetuned", tokens=TokenProfile(0, 250))  # $0.0005 an answer, $10 + retraining
    dear_per_query = variant("prompt")  # $0.002 an answer, no fixed cost
    base = inputs()
    [crossing] = break_even(base, cheap_per_query, dear_per_query)
    fixed = 10 + 12 * 110
    expected = fixed / ((0.002 - 0.0005) * 365)
    assert crossing.queries_per_day == pytest.approx(expected, rel=1e-6)
    assert crossing.cheaper_below == "prompt"


def test_no_break_even_when_one_is_cheaper_everywhere():
    assert break_even(inputs(), variant("prompt"), variant("rag", tokens=TokenProfile(2000, 500))) == []


def test_sensitivity_names_the_inputs_that_flip_the_winner():
    ft = variant("finetuned", tokens=TokenProfile(0, 250))
    prompt = variant("prompt")
    base = inputs(queries_per_day=2000)  # near break-even (~1,760/day): volume ±50% decides

    def cheapest(moved_inputs, moved):
        return min(moved, key=lambda v: variant_tco(moved_inputs, v).total).name

    rows = {row.label: row for row in sensitivity(base, [ft, prompt], cheapest)}
    assert rows["queries/day"].changes_winner
    assert rows["queries/day"].low_winner == "prompt" and rows["queries/day"].high_winner == "finetuned"
    assert not rows["vector DB hosting"].changes_winner  # neither retrieves


# ---------------------------------------------------------------------------------------------- properties

volumes = st.floats(min_value=0, max_value=1e8, allow_nan=False)
families = st.sampled_from(["prompt", "rag", "finetuned", "finetuned_rag"])
servings = st.sampled_from([API, replace(API, prefix_cache=True), GPU, replace(GPU, billing="dedicated")])
token_profiles = st.builds(TokenProfile, st.floats(0, 5000), st.floats(0, 1000), st.floats(0, 3000))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(volumes, volumes, families, servings, token_profiles, st.booleans(), st.floats(0, 1))
def test_cost_never_falls_as_volume_rises(q1, q2, family, serving, tokens, cached, hit_rate):
    low, high = sorted((q1, q2))
    v = variant(family, cached, hit_rate, tokens)
    cost_low = variant_tco(inputs(serving, low), v).total
    cost_high = variant_tco(inputs(serving, high), v).total
    assert cost_high >= cost_low - 1e-9 * max(1.0, cost_low)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(families, servings, token_profiles, st.booleans(), st.floats(0, 1))
def test_zero_volume_leaves_only_fixed_costs(family, serving, tokens, cached, hit_rate):
    tco = variant_tco(inputs(serving, 0.0), variant(family, cached, hit_rate, tokens))
    assert tco.line("inference").total == 0
    if cached:
        assert tco.line("cache_lookups").total == 0
    fixed = {"training": 10.0 if family in ("finetuned", "finetuned_rag") else 0.0,
             "retraining": 12 * 110.0 if family == "finetuned" else 0.0,
             "embedding": 0.1 + 12 * 0.01 if family in ("rag", "finetuned_rag") else 0.0,
             "vector_db": 60.0 if family in ("rag", "finetuned_rag") else 0.0,
             "cache_hosting": 120.0 if cached else 0.0}
    assert tco.total == pytest.approx(sum(fixed.values()))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(volumes, families, servings, token_profiles, st.floats(0, 1), st.floats(0, 1))
def test_more_cache_hits_never_cost_more(q, family, serving, tokens, rate1, rate2):
    low, high = sorted((rate1, rate2))
    base = inputs(serving, q)
    cost_low_hits = variant_tco(base, variant(family, True, low, tokens)).total
    cost_high_hits = variant_tco(base, variant(family, True, high, tokens)).total
    assert cost_high_hits <= cost_low_hits + 1e-9 * max(1.0, cost_low_hits)


def test_totals_are_finite_for_extreme_inputs():
    tco = variant_tco(inputs(GPU, 1e9), variant("finetuned_rag", True, 0.99))
    assert all(math.isfinite(x) for x in tco.monthly_totals)
