"""Provider prompt caching simulator against hand-computed bills."""

from __future__ import annotations

import pytest

from adaptlab.cache.prompt_caching import (
    PromptLayout,
    ProviderPricing,
    simulate,
    steady_timestamps,
)

LAYOUT = PromptLayout(system_tokens=2000, context_tokens=500, question_tokens=50, output_tokens=200)
PRICING = ProviderPricing(input_per_million=3.0, output_per_million=15.0)


def test_steady_traffic_within_the_ttl_writes_once_then_reads() -> None:
    result = simulate(LAYOUT, PRICING, steady_timestamps(60, hours=10 / 60), ttl_seconds=300)  # 10 requests, 60 s apart
    assert (result.requests, result.writes, result.reads) == (10, 1, 9)
    # Without: 10 × (2550 × $3 + 200 × $15) / 1M = $0.1065.
    assert result.cost_without_cache == pytest.approx(0.1065)
    # With: write 2000 × 3 × 1.25 = 7500, reads 9 × 2000 × 3 × 0.1 = 5400, dynamic 10 × 550 × 3 = 16500,
    # output 10 × 200 × 15 = 30000 → $0.0594.
    assert result.cost_with_cache == pytest.approx(0.0594)
    assert result.savings == pytest.approx(0.0471) and result.savings_pct == pytest.approx(44.225, abs=1e-3)
    assert result.cached_prefix_tokens == 2000 and result.read_rate == 0.9 and result.note == ""


def test_sparse_traffic_pays_the_write_premium_every_time() -> None:
    result = simulate(LAYOUT, PRICING, steady_timestamps(6, hours=1), ttl_seconds=300)  # every 10 minutes
    assert (result.requests, result.writes, result.reads) == (6, 6, 0)
    # Every request writes: 2000 × 3 × 0.25 extra = $0.0015 more per request than no caching.
    assert result.cost_with_cache - result.cost_without_cache == pytest.approx(6 * 0.0015)
    assert result.savings < 0 and "costs more" in result.note
    hourly = simulate(LAYOUT, PRICING, steady_timestamps(6, hours=1), ttl_seconds=3600)
    assert (hourly.writes, hourly.reads) == (1, 5)
    # 1-hour writes cost 2×: 2000 × 3 × 2 = 12000 once, reads 5 × 600 = 3000.
    assert hourly.cost_with_cache == pytest.approx((12000 + 3000 + 6 * 550 * 3 + 6 * 200 * 15) / 1e6)


def test_every_read_refreshes_the_ttl() -> None:
    # 200 s apart with a 300 s TTL: without the refresh the entry written at 0 would expire at 300.
    result = simulate(LAYOUT, PRICING, [0, 200, 400, 600, 800], ttl_seconds=300)
    assert (result.writes, result.reads) == (1, 4)
    gap = simulate(LAYOUT, PRICING, [0, 200, 500, 799, 1098], ttl_seconds=300)
    assert (gap.writes, gap.reads) == (2, 3)  # 500 is exactly 300 after 200: expired (write); 799, 1098 read


def test_a_prefix_below_the_minimum_is_never_cached() -> None:
    short = PromptLayout(system_tokens=600, fewshot_tokens=400, question_tokens=30, output_tokens=50)  # 1000 < 1024
    result = simulate(short, PRICING, steady_timestamps(120, hours=1), ttl_seconds=300)
    assert (result.writes, result.reads, result.cached_prefix_tokens) == (0, 0, 0)
    assert result.cost_with_cache == result.cost_without_cache and "shorter than" in result.note
    longer = PromptLayout(system_tokens=600, fewshot_tokens=424, question_tokens=30, output_tokens=50)
    assert simulate(longer, PRICING, steady_timestamps(120, hours=1)).reads == 119


def test_static_context_joins_the_prefix_and_multipliers_are_configurable() -> None:
    layout = PromptLayout(system_tokens=300, context_tokens=900, question_tokens=20, static_context=True)
    assert (layout.prefix_tokens, layout.dynamic_tokens, layout.input_tokens) == (1200, 20, 1220)
    openai_like = ProviderPricing(2.0, 8.0, cached_read_multiplier=0.5, cache_write_multiplier_5m=1.0)
    result = simulate(layout, openai_like, [0, 10, 20])
    # write 1200 × 2 × 1.0 + 2 reads × 1200 × 2 × 0.5 + 3 × 20 × 2 = 2400 + 2400 + 120 (no output tokens)
    assert result.cost_with_cache == pytest.approx(4920 / 1e6)
    assert result.to_dict()["savings_pct"] == pytest.approx(100 * (7320 - 4920) / 7320)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no requests"):
        simulate(LAYOUT, PRICING, [])
    with pytest.raises(ValueError, match="system_tokens"):
        PromptLayout(system_tokens=-1)
    with pytest.raises(ValueError):
        steady_timestamps(0)
    assert steady_timestamps(2, hours=2) == [0.0, 1800.0, 3600.0, 5400.0]
