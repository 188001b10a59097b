"""The learning curve's fit and the training-seed pooling: the statistics the verdict on fine-tuning rests on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptlab.bench.curve import fit_learning_curve, pool_over_seeds, still_improving


def _scores(correct: int, n: int = 40, offset: int = 0) -> dict[str, float | None]:
    """n cases, `correct` of them right (cases offset.. offset+correct-1 wrap around)."""
    return {f"c{i}": 1.0 if (i - offset) % n < correct else 0.0 for i in range(n)}


def test_a_curve_rising_by_a_tenth_per_doubling_is_fitted_so_and_called_rising() -> None:
    # 40 cases; accuracy 0.3, 0.4, 0.5 at 50, 100, 200 examples, nested (a case right stays right).
    points = [(50, _scores(12)), (100, _scores(16)), (200, _scores(20))]
    fit = fit_learning_curve(points, resamples=1000, seed=0)
    assert fit is not None
    assert fit.gain_per_doubling == pytest.approx(0.1)
    assert fit.low > 0 and fit.rising  # paired resampling: every draw still rises
    assert fit.examples == 200 and fit.points == 3
    assert fit.at_double.value == pytest.approx(0.6)  # one doubling past the data
    assert fit.at_double.low <= 0.6 <= fit.at_double.high
    assert fit.examples_to_reach(0.7) == pytest.approx(800)  # two more doublings


def test_a_flat_curve_is_not_rising_and_reaches_nothing() -> None:
    points = [(50, _scores(20)), (100, _scores(20, offset=3)), (200, _scores(20, offset=7))]
    fit = fit_learning_curve(points, resamples=1000, seed=0)
    assert fit is not None
    assert fit.gain_per_doubling == pytest.approx(0.0, abs=1e-12)
    assert fit.low < 0 < fit.high and not fit.rising
    assert fit.examples_to_reach(0.9) is None


def test_the_fit_needs_two_sizes_and_common_cases() -> None:
    assert fit_learning_curve([(100, _scores(10))]) is None
    assert fit_learning_curve([(100, _scores(10)), (100, _scores(12))]) is None
    # A case either point could not score is left out of both (paired), not counted as 0.
    a = _scores(10, n=10) | {"extra": None}
    b = _scores(10, n=10) | {"extra": 1.0}
    fit = fit_learning_curve([(10, a), (20, b)], resamples=200)
    assert fit is not None and fit.at_double.n == 10


def test_seeds_that_disagree_widen_the_interval_beyond_the_cases_alone() -> None:
    same = [_scores(20), _scores(20)]
    differ = [_scores(12), _scores(28)]  # same mean 0.5, but the seeds disagree by 0.4
    agree = pool_over_seeds(same, resamples=2000, seed=0)
    disagree = pool_over_seeds(differ, resamples=2000, seed=0)
    assert agree is not None and disagree is not None
    assert agree.interval.value == pytest.approx(0.5) and disagree.interval.value == pytest.approx(0.5)
    assert agree.spread == 0.0 and disagree.spread == pytest.approx(math.sqrt(0.08))
    assert disagree.per_seed == pytest.approx([0.3, 0.7])
    width = disagree.interval.high - disagree.interval.low
    assert width > (agree.interval.high - agree.interval.low) * 1.5
    # Drawing seeds: some resamples take one seed twice, so the interval reaches towards either seed's mean.
    assert disagree.interval.low < 0.4 and disagree.interval.high > 0.6


def test_one_seed_pools_to_its_own_bootstrap() -> None:
    pooled = pool_over_seeds([_scores(10)], resamples=500, seed=0)
    assert pooled is not None and pooled.spread == 0.0 and pooled.interval.value == pytest.approx(0.25)
    assert pooled.interval.n == 40


@pytest.mark.parametrize(("curve", "expected"), [
    ([(10, 0.2), (20, 0.4), (30, 0.6)], True),  # best at the end
    ([(10, 0.2), (20, 0.6), (30, 0.6)], False),  # plateau: the best came earlier
    ([(10, 0.6), (20, 0.4), (30, 0.5)], False),
    ([(10, 0.5), (20, 0.5)], False),  # flat: no better than the start
    ([(10, 0.5)], False),
    ([], False),
])
def test_a_validation_curve_still_improves_only_when_its_best_is_its_last(curve, expected) -> None:
    assert still_improving(curve) is expected


def test_the_fit_is_reproducible_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    points = [(n, {f"c{i}": float(rng.random() < p) for i in range(30)}) for n, p in ((20, 0.3), (40, 0.5))]
    first = fit_learning_curve(points, resamples=300, seed=7)
    assert first == fit_learning_curve(points, resamples=300, seed=7)


def test_an_extrapolated_share_stays_within_zero_and_one() -> None:
    # 0.5 → 0.9 over one doubling: a line would predict 1.3 at the next one.
    fit = fit_learning_curve([(50, _scores(20)), (100, _scores(36))], resamples=500)
    assert fit is not None and fit.gain_per_doubling == pytest.approx(0.4)
    assert fit.at_double.value == 1.0 and fit.at_double.high <= 1.0
