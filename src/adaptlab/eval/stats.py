"""Statistics for the evaluation harness: bootstrap intervals and paired comparisons of strategies.

Eval sets are small (tens to a few hundred cases), so every reported mean carries a confidence interval,
and strategy comparisons are paired (same cases) to cancel per-case difficulty. All resampling uses
`numpy.random.default_rng(seed)` so a report is reproducible bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sp_stats

from adaptlab.types import Interval

__all__ = ["Interval", "PairedResult", "bootstrap_ci", "mcnemar", "paired_bootstrap", "paired_test"]

_NAN = float("nan")


@dataclass(frozen=True)
class PairedResult:
    a: float  # mean of a over the kept pairs
    b: float  # mean of b over the kept pairs
    diff: float  # mean(b - a): positive means b is better on a higher-is-better metric
    low: float  # confidence interval of diff
    high: float
    p_value: float  # two-sided
    n: int  # number of pairs where both values are present
    test: str  # "paired bootstrap" or "mcnemar"


def _missing(v: object) -> bool:
    # NaN counts as missing too: pandas/numpy pipelines use it for "no value".
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def _check_params(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _bootstrap_means(x: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    # One (resamples, n) index matrix: vectorised, and the same seed always gives the same draws.
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(resamples, x.shape[0]))
    means: np.ndarray = x[idx].mean(axis=1)
    return means


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float | None], *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of the non-missing values with a percentile-bootstrap confidence interval.

    None/NaN values (e.g. an undefined citation precision) are dropped and not counted in n.
    """
    _check_params(resamples, confidence)
    x = np.asarray([float(v) for v in values if v is not None and not _missing(v)], dtype=np.float64)
    n = int(x.shape[0])
    if n == 0:
        return Interval(_NAN, _NAN, _NAN, 0)
    value = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        # Resampling a constant gives a constant; skip it so low == high == value exactly (no float noise).
        return Interval(value, value, value, n)
    low, high = _percentiles(_bootstrap_means(x, resamples, seed), confidence)
    return Interval(value, low, high, n)


def _paired_arrays(
    a: Sequence[float | None], b: Sequence[float | None]
) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(f"paired sequences must have the same length, got {len(a)} and {len(b)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True)
             if x is not None and y is not None and not _missing(x) and not _missing(y)]
    arr = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def paired_bootstrap(
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of mean(b - a) over the cases where both strategies have a value.

    Cases are resampled as pairs. The two-sided p-value uses the shifted-null method: the bootstrap
    distribution of the mean difference, centred on zero, is compared with the observed |mean|:
    p = (1 + #{|d*_i - d̄| >= |d̄|}) / (resamples + 1).
    """
    _check_params(resamples, confidence)
    xa, xb = _paired_arrays(a, b)
    n = int(xa.shape[0])
    if n == 0:
        return PairedResult(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0, "paired bootstrap")
    d = xb - xa
    mean_a, mean_b, diff = float(xa.mean()), float(xb.mean()), float(d.mean())
    if np.all(d == 0.0):
        return PairedResult(mean_a, mean_b, 0.0, 0.0, 0.0, 1.0, n, "paired bootstrap")
    if n == 1:
        # One pair cannot show a difference is systematic; the method would otherwise give p = 1/(R+1).
        return PairedResult(mean_a, mean_b, diff, diff, diff, 1.0, n, "paired bootstrap")
    boot = _bootstrap_means(d, resamples, seed)
    low, high = _percentiles(boot, confidence)
    extreme = int(np.count_nonzero(np.abs(boot - diff) >= abs(diff)))
    p_value = min(1.0, (1 + extreme) / (resamples + 1))
    return PairedResult(mean_a, mean_b, diff, low, high, p_value, n, "paired bootstrap")


def _binary(values: Sequence[bool | float | None], name: str) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        if v is None or _missing(v):
            out.append(None)
        elif v in (0, 1):  # True/False, 0/1 and 0.0/1.0 all compare equal to 0 or 1
            out.append(float(v))
        else:
            raise ValueError(f"{name} must contain only 0/1 outcomes (or None), got {v!r}")
    return out


def mcnemar(
    a_correct: Sequence[bool | float | None],
    b_correct: Sequence[bool | float | None],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Exact McNemar test for 0/1 outcomes of two strategies on the same cases.

    Only discordant pairs carry information: b01 = a wrong & b right, b10 = a right & b wrong; under the
    null each discordant pair is a fair coin, so p is the two-sided binomial test of min(b01, b10) out of
    b01 + b10. The interval for b - a comes from a paired bootstrap with the same seed.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(
            f"paired sequences must have the same length, got {len(a_correct)} and {len(b_correct)}"
        )
    xa, xb = _paired_arrays(_binary(a_correct, "a_correct"), _binary(b_correct, "b_correct"))
    n = int(xa.shape[0])
    if n == 0:
        return PairedResult(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0, "mcnemar")
    b01 = int(np.count_nonzero((xa == 0.0) & (xb == 1.0)))
    b10 = int(np.count_nonzero((xa == 1.0) & (xb == 0.0)))
    discordant = b01 + b10
    p_value = 1.0 if discordant == 0 else float(sp_stats.binomtest(min(b01, b10), discordant, 0.5).pvalue)
    boot = paired_bootstrap(xa.tolist(), xb.tolist(), resamples=resamples, confidence=confidence, seed=seed)
    return PairedResult(
        a=boot.a, b=boot.b, diff=boot.diff, low=boot.low, high=boot.high,
        p_value=min(1.0, p_value), n=n, test="mcnemar",
    )


def paired_test(
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult | None:
    """b against a on the same cases: McNemar when every present score is 0/1, else a paired bootstrap. None when
    no pair has both values."""
    present = [v for v in (*a, *b) if v is not None and not _missing(v)]
    if not present:
        return None
    test = mcnemar if all(v in (0.0, 1.0) for v in present) else paired_bootstrap
    result = test(a, b, resamples=resamples, confidence=confidence, seed=seed)
    return None if result.n == 0 else result


def repeat_spread(per_repeat_means: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1) of a metric's mean across `--repeats` runs; 0.0 for < 2 runs.

    This is the sampling variance of the model itself (temperature > 0), separate from the bootstrap
    interval over cases.
    """
    if len(per_repeat_means) < 2:
        return 0.0
    return float(np.std(np.asarray(per_repeat_means, dtype=np.float64), ddof=1))
