"""adaptlab.numbers: the one USD rule for tables and messages, and the compact forms for chart axes."""

from __future__ import annotations

import math

import pytest

from adaptlab.numbers import count_compact, num, usd, usd_compact


@pytest.mark.parametrize("value, expected", [
    (3, 3.0), (2.5, 2.5), (-1, -1.0), (0, 0.0),
    (None, None), (math.nan, None), (math.inf, None), (-math.inf, None), (True, None), ("3", None), ([1], None),
])
def test_num_keeps_finite_numbers_only(value, expected):
    assert num(value) == expected


@pytest.mark.parametrize("value, text", [
    # ≥ 100: whole dollars, thousands separated
    (100, "$100"), (1234.4, "$1,234"), (1_234_567.8, "$1,234,568"), (99.996, "$100"),
    # 1 ≤ v < 100: cents
    (1, "$1.00"), (12.345678, "$12.35"), (99.99, "$99.99"), (0.9996, "$1.00"),
    # 0 < v < 1: three significant digits, at least the cents, never an exponent
    (0.5, "$0.50"), (0.35, "$0.35"), (0.123456, "$0.123"), (0.0123456, "$0.0123"), (0.01, "$0.01"),
    (0.999, "$0.999"), (0.00012345, "$0.000123"), (1e-7, "$0.0000001"),
    # zero, with no sign
    (0, "$0"), (0.0, "$0"), (-0.0, "$0"),
])
def test_usd_rounding_bands(value, text):
    assert usd(value) == text


def test_usd_negative_uses_a_real_minus_sign():
    assert usd(-12.34) == "−$12.34"
    assert usd(-1234) == "−$1,234"
    assert usd(-0.0123) == "−$0.0123"
    assert "-" not in usd(-5)


@pytest.mark.parametrize("value", [None, math.nan, math.inf, "12", True])
def test_usd_missing(value):
    assert usd(value) == "—"
    assert usd(value, missing="n/a") == "n/a"


@pytest.mark.parametrize("value, text", [
    (0, "$0"), (0.35, "$0.35"), (0.5, "$0.5"), (12, "$12"), (12.5, "$12.5"), (999, "$999"), (999.6, "$1k"),
    (1000, "$1k"), (1200, "$1.2k"), (1250, "$1.25k"), (1234, "$1.23k"), (3.4e6, "$3.4M"), (2e9, "$2B"),
    (1.5e12, "$1,500B"), (0.0012, "$0.0012"), (1e-5, "$0.00001"), (-1500, "−$1.5k"),
])
def test_usd_compact(value, text):
    assert usd_compact(value) == text


@pytest.mark.parametrize("value, text", [
    (0, "0"), (5, "5"), (0.5, "0.5"), (27.4, "27.4"), (1141.5, "1.14k"), (1200, "1.2k"), (3e6, "3M"),
    (1e9, "1B"), (-2500, "−2.5k"),
])
def test_count_compact(value, text):
    assert count_compact(value) == text


def test_compact_forms_missing():
    assert usd_compact(None) == "—" and count_compact(math.nan) == "—"
    assert usd_compact(math.inf, missing="n/a") == "n/a"
