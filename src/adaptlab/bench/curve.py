"""The statistics of fine-tuning's learning curve and of training-seed variance, from per-case scores.

Every adapter answered the same eval cases, so resampling is paired: one bootstrap draw of cases is applied to
every point of the curve (and to every training seed), which cancels per-case difficulty the way the harness's
paired tests do.

- The curve is fitted as quality = a + b·log2(examples): `b` is the expected gain from doubling the training data.
  Its interval comes from refitting on each bootstrap draw of the cases. Learning curves flatten, so a log-linear
  fit over-predicts far beyond the data; the report only extrapolates one doubling and says so.
- Training seeds: a two-level bootstrap (draw seeds, then cases) gives the fine-tuned score an interval that
  includes how much the adapter depends on its training seed, not only which cases were asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from adaptlab.types import Interval

Scores = Mapping[str, float | None]  # case_id → score (mean over repeats)


@dataclass(frozen=True)
class CurveFit:
    intercept: float  # a: quality at 1 example on the fitted line (not meaningful alone)
    gain_per_doubling: float  # b
    low: float  # confidence interval of b
    high: float
    at_double: Interval  # the fitted quality at twice the largest training set, with its interval
    examples: int  # the largest training set
    points: int

    @property
    def rising(self) -> bool:
        """Still improving at the full set: more data gains something, with confidence."""
        return self.low > 0

    def examples_to_reach(self, target: float) -> float | None:
        """Where the fitted line reaches `target` (None when it does not rise)."""
        if self.gain_per_doubling <= 0:
            return None
        return float(2 ** ((target - self.intercept) / self.gain_per_doubling))


def _matrix(rows: Sequence[Scores]) -> np.ndarray:
    """Scores of the cases every row scored, one row per point (or seed)."""
    common = [case for case in rows[0] if all(row.get(case) is not None for row in rows)]
    return np.asarray([[float(row[case]) for case in common] for row in rows], dtype=np.float64)  # type: ignore[arg-type]


def fit_learning_curve(points: Sequence[tuple[int, Scores]], *, resamples: int = 2000, confidence: float = 0.95,
                       seed: int = 0) -> CurveFit | None:
    """Fit quality against log2(training examples). None with fewer than two distinct sizes or no common case."""
    sizes = [examples for examples, _ in points]
    if len(set(sizes)) < 2:
        return None
    scores = _matrix([row for _, row in points])
    if scores.shape[1] == 0:
        return None
    x = np.log2(np.asarray(sizes, dtype=np.float64))
    xc = x - x.mean()

    def fit(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # means: (points, draws) → (slopes, intercepts)
        slope = (xc[:, None] * (means - means.mean(axis=0))).sum(axis=0) / (xc ** 2).sum()
        return slope, means.mean(axis=0) - slope * x.mean()

    observed = scores.mean(axis=1)[:, None]
    slope, intercept = (float(v[0]) for v in fit(observed))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, scores.shape[1], size=(resamples, scores.shape[1]))
    slopes, intercepts = fit(scores[:, draws].mean(axis=2))
    alpha = (1 - confidence) / 2
    low, high = (float(v) for v in np.quantile(slopes, [alpha, 1 - alpha]))
    largest = max(sizes)
    doubled = math.log2(2 * largest)
    at_double = intercepts + slopes * doubled
    predicted = intercept + slope * doubled
    if scores.min() >= 0 and scores.max() <= 1:  # a share (accuracy, F1): a line must not predict beyond 1
        at_double, predicted = np.clip(at_double, 0.0, 1.0), min(max(predicted, 0.0), 1.0)
    d_low, d_high = (float(v) for v in np.quantile(at_double, [alpha, 1 - alpha]))
    return CurveFit(intercept, slope, low, high, Interval(predicted, d_low, d_high, scores.shape[1]), largest,
                    len(points))


@dataclass(frozen=True)
class SeedPooled:
    interval: Interval  # mean over seeds and cases; the interval draws seeds, then cases
    spread: float  # standard deviation of the per-seed means
    per_seed: list[float]


def pool_over_seeds(per_seed: Sequence[Scores], *, resamples: int = 2000, confidence: float = 0.95,
                    seed: int = 0) -> SeedPooled | None:
    """One score from several training seeds, with an interval that includes the spread across them."""
    scores = _matrix(per_seed)
    if scores.size == 0:
        return None
    seeds, cases = scores.shape
    means = scores.mean(axis=1)
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, seeds, size=(resamples, seeds))
    case_draws = rng.integers(0, cases, size=(resamples, cases))
    boot = scores[seed_draws[:, :, None], case_draws[:, None, :]].mean(axis=(1, 2))
    alpha = (1 - confidence) / 2
    low, high = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    spread = float(np.std(means, ddof=1)) if seeds > 1 else 0.0
    return SeedPooled(Interval(float(scores.mean()), low, high, cases), spread, [float(m) for m in means])


def still_improving(curve: Sequence[tuple[int, float]]) -> bool:
    """A validation curve whose best value came at its last evaluation, above where it started."""
    if len(curve) < 2:
        return False
    values = [value for _, value in curve]
    best = max(values)
    return values.index(best) == len(values) - 1 and values[-1] > values[0]
