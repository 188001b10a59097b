"""Unit tests for adaptlab.eval.stats, checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptlab.eval.stats import (
    Interval,
    bootstrap_ci,
    mcnemar,
    paired_bootstrap,
    repeat_spread,
)

# --- bootstrap_ci ----------------------------------------------------------------------------------


def test_bootstrap_ci_constant_values() -> None:
    ci = bootstrap_ci([0.7, 0.7, 0.7, 0.7])
    assert ci == Interval(0.7, 0.7, 0.7, 4)
    assert bootstrap_ci([0.3]) == Interval(0.3, 0.3, 0.3, 1)


def test_bootstrap_ci_empty_is_nan() -> None:
    ci = bootstrap_ci([None, float("nan")])
    assert ci.n == 0
    assert math.isnan(ci.value) and math.isnan(ci.low) and math.isnan(ci.high)


def test_bootstrap_ci_skips_missing_values() -> None:
    # kept: 1, 0, 1 → n = 3, mean = 2/3
    ci = bootstrap_ci([1.0, None, 0.0, float("nan"), 1.0])
    assert ci.n == 3
    assert ci.value == pytest.approx(2 / 3)
    assert 0.0 <= ci.low <= ci.value <= ci.high <= 1.0


def test_bootstrap_ci_contains_mean_and_narrows_with_n() -> None:
    draws = np.random.default_rng(7).integers(0, 2, size=2000).astype(float)  # Bernoulli(0.5)
    small = bootstrap_ci(draws[:20].tolist())
    large = bootstrap_ci(draws.tolist())
    for ci in (small, large):
        assert ci.low <= ci.value <= ci.high
    # normal approximation: width ≈ 2·1.96·0.5/√n → 0.44 for n=20, 0.044 for n=2000 (10× narrower)
    assert (large.high - large.low) < (small.high - small.low) / 5
    assert large.high - large.low == pytest.approx(2 * 1.96 * 0.5 / math.sqrt(2000), rel=0.15)
    assert large.low < 0.5 < large.high


def test_bootstrap_ci_is_deterministic_per_seed() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    # a lower confidence gives an interval nested inside the higher one (same draws, same seed)
    wide = bootstrap_ci(values, confidence=0.95)
    narrow = bootstrap_ci(values, confidence=0.5)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


# --- paired_bootstrap ------------------------------------------------------------------------------


def test_paired_bootstrap_identical_strategies() -> None:
    a = np.random.default_rng(1).random(30).tolist()
    result = paired_bootstrap(a, a)
    assert (result.diff, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.n == 30
    assert result.test == "paired bootstrap"


def test_paired_bootstrap_clearly_better_strategy() -> None:
    rng = np.random.default_rng(123)
    a = rng.normal(0.4, 0.1, size=50)
    b = a + 0.5 + rng.normal(0.0, 0.1, size=50)
    result = paired_bootstrap(a.tolist(), b.tolist())
    assert result.diff == pytest.approx(float(np.mean(b - a)))
    assert result.p_value < 0.01
    assert 0.0 < result.low <= result.diff <= result.high
    # the smallest p the method can give is 1/(resamples + 1)
    assert result.p_value == pytest.approx(1 / 2001)


def test_paired_bootstrap_no_real_difference_has_large_p() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(0.5, 0.2, size=40)
    b = a + rng.normal(0.0, 0.2, size=40)  # noise only
    result = paired_bootstrap(a.tolist(), b.tolist())
    assert result.low < 0.0 < result.high
    assert result.p_value > 0.05


def test_paired_bootstrap_drops_incomplete_pairs() -> None:
    # only positions 0 and 3 have both values: a = [1, 1], b = [1, 0]
    # mean a = 1.0, mean b = 0.5, diff = -0.5
    result = paired_bootstrap([1.0, None, 0.0, 1.0], [1.0, 1.0, None, 0.0])
    assert result.n == 2
    assert (result.a, result.b, result.diff) == (1.0, 0.5, -0.5)


def test_paired_bootstrap_errors_and_empty() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 2.0], [1.0])
    result = paired_bootstrap([None], [1.0])
    assert result.n == 0
    assert math.isnan(result.diff) and math.isnan(result.p_value)


def test_paired_bootstrap_is_deterministic_per_seed() -> None:
    a = [0.1, 0.5, 0.3, 0.9, 0.4]
    b = [0.3, 0.4, 0.6, 0.9, 0.8]
    assert paired_bootstrap(a, b, seed=11) == paired_bootstrap(a, b, seed=11)


# --- mcnemar ---------------------------------------------------------------------------------------


def test_mcnemar_hand_built_table() -> None:
    # 10 cases a wrong & b right (b01 = 10), none the other way (b10 = 0), 5 both right, 5 both wrong
    a = [0] * 10 + [1] * 5 + [0] * 5
    b = [1] * 10 + [1] * 5 + [0] * 5
    result = mcnemar(a, b)
    # exact two-sided: 2 · P(X ≤ 0 | n=10, p=0.5) = 2 · 0.5**10 = 0.001953125
    assert result.p_value == pytest.approx(0.001953125)
    # accuracies: a = 5/20 = 0.25, b = 15/20 = 0.75, diff = 0.5
    assert (result.a, result.b, result.diff) == (0.25, 0.75, 0.5)
    assert result.n == 20
    assert result.test == "mcnemar"
    assert 0.0 < result.low <= 0.5 <= result.high


def test_mcnemar_small_discordant_counts() -> None:
    # b01 = 3, b10 = 1: 2 · P(X ≤ 1 | n=4) = 2 · (1 + 4)/16 = 0.625
    a = [False, False, False, True, True]
    b = [True, True, True, False, True]
    assert mcnemar(a, b).p_value == pytest.approx(0.625)


def test_mcnemar_identical_and_missing() -> None:
    a = [True, False, None, True, 1.0, 0]
    result = mcnemar(a, a)
    assert result.p_value == 1.0
    assert (result.diff, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.n == 5  # the None position is dropped


def test_mcnemar_rejects_non_binary_and_mismatched() -> None:
    with pytest.raises(ValueError):
        mcnemar([0.5, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        mcnemar([1, 0, 1], [1, 0])


# --- repeat_spread ---------------------------------------------------------------------------------


def test_repeat_spread() -> None:
    # mean 0.6, deviations ±0.1 → Σ = 0.02, /(2−1) = 0.02, √ = 0.141421
    assert repeat_spread([0.5, 0.7]) == pytest.approx(math.sqrt(0.02))
    assert repeat_spread([0.4]) == 0.0
    assert repeat_spread([]) == 0.0
