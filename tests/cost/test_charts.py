"""The advisor's charts: files written, valid and reproducible SVG, names and estimate labels visible, bad input
refused."""

from __future__ import annotations

import math
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from adaptlab.cost.charts import (
    QualityPoint,
    breakeven_chart,
    format_count,
    format_usd,
    quality_cost_chart,
    tco_chart,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
MONTHS = list(range(1, 13))
CUMULATIVE = {
    "prompt": [100.0 * m for m in MONTHS],
    "prompt+cache": [60.0 * m + 50 for m in MONTHS],
    "rag": [200.0 * m + 500 for m in MONTHS],
    "rag+cache": [120.0 * m + 500 for m in MONTHS],
    "finetune": [2000.0 + 30 * m for m in MONTHS],
}
VOLUMES = [10 ** (i / 4) for i in range(25)]  # 1 .. 1M queries/day
TOTALS = {
    "prompt": [0.5 * 365 * v for v in VOLUMES],
    "rag+cache": [3000 + 0.2 * 365 * v for v in VOLUMES],
    "finetune": [20000 + 0.05 * 365 * v for v in VOLUMES],
}
CROSSINGS = [("prompt", "rag+cache", 27.4), ("rag+cache", "finetune", 1141.5)]
POINTS = [
    QualityPoint("prompt", 1800, 0.61, 0.55, 0.67, estimate=False, recommended=False),
    QualityPoint("rag", 4000, 0.78, 0.72, 0.83, estimate=False, recommended=False),
    QualityPoint("rag+cache", 3100, 0.77, 0.71, 0.82, estimate=False, recommended=True),
    QualityPoint("finetune", 21000, 0.80, 0.75, 0.85, estimate=True, recommended=False),
    QualityPoint("finetune+cache", 20500, None, None, None, estimate=True, recommended=False),
    QualityPoint("broken", 100, math.nan, None, None, estimate=False, recommended=False),
]


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")]


def render_tco(out: Path, *, estimate: bool = False, title: str = "TCO over 12 months") -> Path:
    return tco_chart(MONTHS, CUMULATIVE, out, title=title, estimate=estimate, highlight="rag+cache")


def render_breakeven(out: Path, *, estimate: bool = False) -> Path:
    return breakeven_chart(
        VOLUMES, TOTALS, out, title="Break-even", marker_volume=2500, crossings=CROSSINGS, estimate=estimate
    )


def render_quality(out: Path, points: list[QualityPoint] = POINTS) -> Path:
    return quality_cost_chart(points, out, metric="exact match", title="Quality vs cost")


def test_tco_chart_writes_svg_with_every_series_and_the_pick(tmp_path):
    out = tmp_path / "nested" / "tco.svg"
    assert render_tco(out) == out
    texts = svg_texts(out)
    for name in ["prompt", "prompt+cache", "rag", "finetune"]:
        assert name in texts
    assert "rag+cache (recommended)" in texts
    assert "TCO over 12 months" in texts
    assert "$1k" in texts and "$0" in texts  # dollar-formatted axis
    width = ET.parse(out).getroot().get("width")
    assert width == "576pt"  # 8 in


def test_estimate_suffix_in_titles(tmp_path):
    texts = svg_texts(render_tco(tmp_path / "est.svg", estimate=True))
    assert "TCO over 12 months — estimates" in texts
    assert "TCO over 12 months" not in texts
    assert "Break-even — estimates" in svg_texts(render_breakeven(tmp_path / "be.svg", estimate=True))
    assert "Break-even" in svg_texts(render_breakeven(tmp_path / "be2.svg", estimate=False))

    all_estimates = [QualityPoint(p.name, p.annual_cost, p.quality, p.low, p.high, True, p.recommended) for p in POINTS]
    assert "Quality vs cost — estimates" in svg_texts(render_quality(tmp_path / "q.svg", all_estimates))
    # Mixed: the title stays plain and the estimated point says so in its label.
    mixed = svg_texts(render_quality(tmp_path / "q2.svg"))
    assert "Quality vs cost" in mixed
    assert "finetune (estimate)" in mixed


def test_same_data_gives_identical_svg_bytes(tmp_path):
    for render in (render_tco, render_breakeven, render_quality):
        a = render(tmp_path / f"{render.__name__}-a.svg")
        b = render(tmp_path / f"{render.__name__}-b.svg")
        assert a.read_bytes() == b.read_bytes(), render.__name__


def test_concurrent_renders_are_identical_and_leave_global_state_alone(tmp_path):
    import matplotlib

    figs_before = sys.modules["matplotlib.pyplot"].get_fignums() if "matplotlib.pyplot" in sys.modules else None
    salt_before = matplotlib.rcParams["svg.hashsalt"]
    outs = [tmp_path / f"t{i}.svg" for i in range(4)]
    threads = [threading.Thread(target=render_tco, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({o.read_bytes() for o in outs}) == 1
    assert matplotlib.rcParams["svg.hashsalt"] == salt_before
    if figs_before is None:
        assert "matplotlib.pyplot" not in sys.modules  # charts never touch pyplot's figure manager
    else:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == figs_before


def test_png_output(tmp_path):
    for render in (render_tco, render_breakeven, render_quality):
        out = render(tmp_path / f"{render.__name__}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_breakeven_marks_workload_crossings_and_out_of_range_ones(tmp_path):
    out = breakeven_chart(
        VOLUMES,
        TOTALS,
        tmp_path / "be.svg",
        title="Break-even",
        marker_volume=2500,
        crossings=[*CROSSINGS, ("prompt", "finetune", 5e9)],
        estimate=False,
    )
    joined = "\n".join(svg_texts(out))
    for name in TOTALS:
        assert name in joined
    assert "your workload" in joined and "2.5k/day" in joined
    assert "prompt = rag+cache" in joined and "@ 27/day" in joined
    assert "rag+cache = finetune" in joined and "@ 1.1k/day" in joined
    assert "Outside the plotted volumes: prompt = finetune at 5B/day." in joined
    assert "$10M" in joined  # totals span >20x: log y axis with dollar ticks


def test_breakeven_zero_volume_and_zero_cost_do_not_break_the_log_axes(tmp_path):
    out = breakeven_chart(
        [0, 10, 100, 1000],
        {"local": [0.0, 1, 10, 100], "api": [50.0, 50, 50, 50]},
        tmp_path / "zero.svg",
        title="Zero",
        marker_volume=0,
        crossings=[("local", "api", 500), ("ghost", "other", 20)],
        estimate=False,
    )
    joined = "\n".join(svg_texts(out))
    assert "local = api" in joined and "ghost = other" in joined


def test_quality_chart_labels_points_and_lists_unmeasured(tmp_path):
    texts = svg_texts(render_quality(tmp_path / "q.svg"))
    joined = "\n".join(texts)
    assert "prompt" in texts and "rag" in texts
    assert "★ rag+cache" in texts  # recommended: starred (and ringed)
    assert "recommended" in texts  # legend entry for the ring
    assert "exact match" in texts  # y label
    assert "No exact match measured: finetune+cache (estimate) ($20.5k), broken ($100)." in joined
    assert "$10k" in texts  # costs span >20x: log axis


def test_quality_chart_without_any_measured_quality_still_renders(tmp_path):
    out = render_quality(tmp_path / "none.svg", [QualityPoint("a", 0.0, None, None, None, True, False)])
    assert "No variant has a measured exact match" in svg_texts(out)


def test_single_month(tmp_path):
    out = tco_chart([1], {"a": [5.0], "a+cache": [3.0]}, tmp_path / "one.svg", title="One month", estimate=False)
    texts = svg_texts(out)
    assert "a" in texts and "a+cache" in texts and "1" in texts


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda out: tco_chart(MONTHS, {}, out, title="t", estimate=False), "nothing to plot"),
        (lambda out: tco_chart([], {"a": []}, out, title="t", estimate=False), "no months"),
        (lambda out: tco_chart([1, 2], {"a": [1.0]}, out, title="t", estimate=False), "'a' has 1 values"),
        (
            lambda out: breakeven_chart(VOLUMES, {}, out, title="t", marker_volume=None, crossings=[], estimate=False),
            "nothing to plot",
        ),
        (
            lambda out: breakeven_chart([], {"a": []}, out, title="t", marker_volume=None, crossings=[],
                                        estimate=False),
            "no volumes",
        ),
        (lambda out: quality_cost_chart([], out, metric="m", title="t"), "no points"),
        (lambda out: render_tco(out.with_suffix(".gif")), r"\.svg, \.png"),
    ],
)
def test_bad_input_raises_value_error(tmp_path, call, message):
    out = tmp_path / "x.svg"
    with pytest.raises(ValueError, match=message):
        call(out)
    assert not out.exists() and not out.with_suffix(".gif").exists()


@pytest.mark.parametrize(
    "value, text",
    [(0, "$0"), (0.35, "$0.35"), (12, "$12"), (999, "$999"), (1000, "$1k"), (1234, "$1.2k"), (3.4e6, "$3.4M"),
     (2e9, "$2B"), (-1500, "-$1.5k"), (float("nan"), "n/a")],
)
def test_format_usd(value, text):
    assert format_usd(value) == text


def test_format_count():
    assert [format_count(v) for v in (0, 0.5, 27.4, 1141.5, 1e6)] == ["0", "0.5", "27", "1.1k", "1M"]
