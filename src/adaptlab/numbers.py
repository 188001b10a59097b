"""How numbers are shown: the one USD rule for tables and messages, and compact forms for chart axes.

Standard library only, so any layer may use it. Every formatter takes any value: None, NaN, inf, bools and
strings are "missing", never shown as 0.

``usd`` (tables, reports, reason strings):

- |v| ≥ 100: whole dollars with thousands separators — ``$1,234``
- 1 ≤ |v| < 100: cents — ``$12.34``
- 0 < |v| < 1: three significant digits, at least the cents, never an exponent — ``$0.50``, ``$0.0123``
- 0: ``$0``; negative: a real minus sign before the dollar — ``−$12.34``; missing: ``missing`` (default "—")

``usd_compact`` / ``count_compact`` (axis ticks, chart labels): at most three significant digits, k/M/B above a
thousand — ``$0``, ``$0.35``, ``$12``, ``$1.2k``, ``$1.25k``, ``$3.4M``; ``5``, ``0.5``, ``1.2k``, ``3M``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["count_compact", "num", "usd", "usd_compact"]

MINUS = "−"  # U+2212: the sign in every formatted number
_UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "k"))


def num(value: Any) -> float | None:
    """The value as a finite float, or None (None, NaN, inf, bools, strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _significant(a: float, digits: int = 3, min_decimals: int = 0) -> str:
    """Non-negative ``a`` to ``digits`` significant digits in plain notation (no exponent), trailing zeros dropped
    down to ``min_decimals`` decimals."""
    if a == 0:
        return "0" if min_decimals == 0 else "0." + "0" * min_decimals
    decimals = digits - 1 - math.floor(math.log10(a))
    if decimals <= 0:  # 1234 → "1230"
        return f"{round(a, decimals):.0f}"
    text = f"{a:.{decimals}f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(min_decimals, "0")
        text = f"{whole}.{frac}" if frac else whole
    return text


def usd(value: Any, missing: str = "—") -> str:
    """$1,234 · $12.34 · $0.0123 · $0 · −$12.34; ``missing`` for None/NaN/inf/non-numbers."""
    v = num(value)
    if v is None:
        return missing
    a = abs(v)
    if a == 0:
        return "$0"
    sign = MINUS if v < 0 else ""
    if a >= 99.995:  # rounds to $100 or more: whole dollars (so 99.999 is $100, not $100.00)
        return f"{sign}${a:,.0f}"
    if a >= 0.9995:  # rounds to $1.00 or more: cents
        return f"{sign}${a:,.2f}"
    return f"{sign}${_significant(a, 3, 2)}"


def _compact(value: Any, unit: str, missing: str) -> str:
    v = num(value)
    if v is None:
        return missing
    a = abs(v)
    if a == 0:
        return f"{unit}0"
    sign = MINUS if v < 0 else ""
    rounded = float(_significant(a))  # 999.6 → 1000 → "1k", not "1e+03"
    for size, suffix in _UNITS:
        if rounded >= size:
            scaled = rounded / size
            text = f"{scaled:,.0f}" if scaled >= 1000 else _significant(scaled)
            return f"{sign}{unit}{text}{suffix}"
    return f"{sign}{unit}{_significant(a)}"


def usd_compact(value: Any, missing: str = "—") -> str:
    """Axis ticks in dollars: $0, $0.35, $12, $1.2k, $3.4M, $2B (negative: −$1.5k)."""
    return _compact(value, "$", missing)


def count_compact(value: Any, missing: str = "—") -> str:
    """Counts and rates (queries per day, tick values): 5, 0.5, 27.4, 1.2k, 3M."""
    return _compact(value, "", missing)
