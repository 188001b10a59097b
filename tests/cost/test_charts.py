"""The advisor's charts (adaptlab.charts.advice): standalone, valid and reproducible SVG documents with every
strategy named, the recommendation highlighted, estimates marked, log ticks on the break-even axes; bad input
refused; and `adaptlab advise --out` writing the three files."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from adaptlab.charts import Point, breakeven_chart, quality_cost_chart, tco_chart
from adaptlab.cost.advise import advise
from adaptlab.cost.catalog import load_catalog
from adaptlab.cost.inputs import build_scenario
from adaptlab.cost.report import write_report
from adaptlab.cost.workload import load_workload

SVG_NS = "{http://www.w3.org/2000/svg}"
WORKLOADS = Path(__file__).resolve().parents[2] / "examples" / "workloads"
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
    Point("prompt", 1800, 0.61, 0.55, 0.67),
    Point("rag", 4000, 0.78, 0.72, 0.83),
    Point("rag+cache", 3100, 0.77, 0.71, 0.82, highlight=True),
    Point("finetune", 21000, 0.80, 0.75, 0.85, estimate=True),
    Point("finetune+cache", 20500, None, estimate=True),
    Point("broken", 100, math.nan),
]


def parse(document: str) -> ET.Element:
    root = ET.fromstring(document.encode("utf-8"))  # raises on malformed XML
    assert root.tag == f"{SVG_NS}svg"  # the xmlns is declared: a browser opens the file as an image
    return root


def texts(document: str) -> list[str]:
    return ["".join(el.itertext()) for el in parse(document).iter(f"{SVG_NS}text")]


def tco(*, estimate: bool = False, title: str = "TCO over 12 months") -> str:
    return tco_chart(MONTHS, CUMULATIVE, title=title, estimate=estimate, highlight="rag+cache")


def breakeven(*, estimate: bool = False, crossings=CROSSINGS) -> str:
    return breakeven_chart(VOLUMES, TOTALS, title="Break-even", marker_volume=2500, crossings=crossings,
                           estimate=estimate, highlight="rag+cache")


def quality(points=POINTS) -> str:
    return quality_cost_chart(points, metric="exact match", title="Quality vs cost", months=12)


def highlighted(document: str) -> list[str]:
    """Texts drawn in the highlight colour (the recommendation)."""
    return ["".join(el.itertext()) for el in parse(document).iter(f"{SVG_NS}text") if el.get("fill") == "#C8102E"]


def test_tco_chart_is_a_standalone_svg_with_every_strategy_and_the_pick():
    document = tco()
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    root = parse(document)
    assert root.get("width") == "760" and root.get("data-chart") == "tco"
    shown = texts(document)
    joined = "\n".join(shown)
    for name in CUMULATIVE:
        assert name in joined
    assert "TCO over 12 months" in shown
    assert highlighted(document) == ["★ rag+cache $1,940"]  # the legend: starred, in red, its 12-month total
    assert "★ recommended: rag+cache." in shown
    assert "$0" in shown and "$1k" in shown and "$2k" in shown  # dollar-formatted axis
    assert [str(m) for m in MONTHS] == [t for t in shown if t.isdigit()]
    widths = {el.get("stroke-width") for el in root.iter(f"{SVG_NS}polyline")}
    assert widths == {"2", "3.5"}  # the pick is drawn thicker
    dashed = [el for el in root.iter(f"{SVG_NS}polyline") if el.get("stroke-dasharray")]
    assert len(dashed) == 2  # the "+cache" variants


def test_estimate_marking_in_titles_and_notes():
    shown = texts(tco(estimate=True))
    assert "TCO over 12 months — estimates" in shown and "TCO over 12 months" not in shown
    assert "Estimates: costs from declared assumptions, not measured usage." in shown
    assert "Estimates: costs from declared assumptions, not measured usage." not in texts(tco())
    assert "Break-even — estimates" in texts(breakeven(estimate=True))
    assert "Break-even" in texts(breakeven())

    all_estimates = [Point(p.name, p.cost, p.quality, p.low, p.high, True, p.highlight) for p in POINTS]
    shown = texts(quality(all_estimates))
    assert "Quality vs cost — estimates" in shown and "Estimates: declared numbers, not measured." in shown
    assert "finetune" in shown  # all estimates: no per-point "(estimate)"
    # Mixed: the title stays plain, the estimated point says so in its label and is drawn hollow.
    document = quality()
    assert "Quality vs cost" in texts(document) and "finetune (estimate)" in texts(document)
    hollow = [el for el in parse(document).iter(f"{SVG_NS}circle")
              if el.get("fill") == "white" and "finetune:" in "".join(el.itertext())]
    assert len(hollow) == 1


def test_same_data_gives_identical_bytes():
    for render in (tco, breakeven, quality):
        assert render() == render(), render.__name__
    assert tco() != tco(title="other")


def test_breakeven_has_log_log_axes_marks_the_workload_and_the_crossings():
    document = breakeven(crossings=[*CROSSINGS, ("prompt", "finetune", 5e9)])
    shown = texts(document)
    joined = "\n".join(shown)
    for name in TOTALS:
        assert name in joined
    assert highlighted(document) == ["★ rag+cache"]
    # x: decades of queries/day; y: totals span >20x, so decades of dollars too
    assert [t for t in ("1", "10", "100", "1k", "10k", "100k", "1M") if t in shown] == \
        ["1", "10", "100", "1k", "10k", "100k", "1M"]
    assert {"$1k", "$10k", "$100k", "$1M", "$10M"} <= set(shown)
    assert "your workload" in shown and "2.5k/day" in shown
    assert "prompt = rag+cache" in shown and "@ 27.4/day" in shown
    assert "rag+cache = finetune" in shown and "@ 1.14k/day" in shown
    assert "Outside the plotted volumes: prompt = finetune at 5B/day." in shown
    assert len([el for el in parse(document).iter(f"{SVG_NS}circle") if el.get("fill") == "#222222"]) == 2
    # The dot sits on the line: prompt's total at 27.4/day is 0.5 × 365 × 27.4 = $5,000.
    assert any("27.4 queries/day: $5,001" in "".join(el.itertext()) or "27.4 queries/day: $5,000" in
               "".join(el.itertext()) for el in parse(document).iter(f"{SVG_NS}circle"))


def test_breakeven_zero_volume_and_zero_cost_do_not_break_the_log_axes():
    document = breakeven_chart([0, 10, 100, 1000], {"local": [0.0, 1, 10, 100], "api": [50.0, 50, 50, 50]},
                               title="Zero", marker_volume=0, crossings=[("local", "api", 500), ("ghost", "other", 20)],
                               estimate=False)
    shown = texts(document)
    assert "local = api" in shown and "ghost = other" in shown  # ghost: neither is drawn, marked on the axis
    assert "0" in shown and "1k" in shown and "$0" in shown and "$100" in shown
    assert "nan" not in document.lower() and "inf" not in document.lower()


def test_quality_chart_labels_points_and_lists_unmeasured():
    document = quality()
    shown = texts(document)
    joined = "\n".join(shown)
    assert "prompt" in shown and "rag" in shown
    assert "★ rag+cache" in highlighted(document)  # recommended: starred, red (and ringed)
    ring = [el for el in parse(document).iter(f"{SVG_NS}circle") if el.get("stroke") == "#C8102E"]
    assert len(ring) == 2  # the point and the legend's sample
    assert "★ recommended" in shown and "measured" in shown and "estimate" in shown  # the legend row
    assert "exact match" in shown  # y label
    assert "No exact match measured: finetune+cache (estimate) ($20,500), broken ($100)." in joined
    assert "$10k" in shown and "$20k" in shown and "12-month TCO (USD)" in shown  # costs span <20x: linear
    wide = texts(quality([*POINTS, Point("cheap", 50, 0.3)]))
    assert "12-month TCO (USD, log scale)" in wide and "$100" in wide and "$10k" in wide  # >20x: log axis


def test_quality_chart_without_any_measured_quality_still_renders():
    shown = texts(quality([Point("a", 0.0, None, estimate=True)]))
    assert "No strategy has a measured exact match" in shown
    assert "No exact match measured: a ($0)." in shown


def test_single_month():
    shown = texts(tco_chart([1], {"a": [5.0], "a+cache": [3.0]}, title="One month", estimate=False))
    joined = "\n".join(shown)
    assert "a $5.00" in joined and "a+cache $3.00" in joined and "1" in shown


def test_names_are_escaped():
    evil = '<b>"x"&'
    for document in (tco_chart([1, 2], {evil: [1.0, 2.0]}, title=evil, estimate=False, highlight=evil),
                     breakeven_chart([1, 10], {evil: [1.0, 2.0]}, title=evil, marker_volume=5,
                                     crossings=[(evil, "b", 3)], estimate=False),
                     quality_cost_chart([Point(evil, 1.0, 0.5)], metric=evil, title=evil, months=12)):
        assert evil in texts(document) or any(evil in t for t in texts(document))
        assert "<b>" not in document


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tco_chart(MONTHS, {}, title="t", estimate=False), "nothing to plot"),
        (lambda: tco_chart([], {"a": []}, title="t", estimate=False), "no months"),
        (lambda: tco_chart([1, 2], {"a": [1.0]}, title="t", estimate=False),
         "series 'a' has 1 values but there are 2 months"),
        (lambda: breakeven_chart(VOLUMES, {}, title="t", marker_volume=None, crossings=[], estimate=False),
         "nothing to plot"),
        (lambda: breakeven_chart([], {"a": []}, title="t", marker_volume=None, crossings=[], estimate=False),
         "no volumes"),
        (lambda: breakeven_chart([1, 10, 100], {"a": [1.0, 2.0]}, title="t", marker_volume=None, crossings=[],
                                 estimate=False), "series 'a' has 2 values but there are 3 volumes"),
        (lambda: quality_cost_chart([], metric="m", title="t", months=12), "no points"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_advise_report_writes_the_three_charts(tmp_path: Path):
    scenario = build_scenario(load_workload(WORKLOADS / "finetune-vs-rag-support-bot.toml"), load_catalog())
    advice = advise(scenario, with_sensitivity=False)
    variants = [c.variant for c in scenario.candidates]
    paths = write_report(advice, scenario.inputs, variants, tmp_path / "a")
    names = ["tco_by_month.svg", "break_even.svg", "quality_vs_cost.svg"]
    assert [p.name for p in paths[-3:]] == names
    assert advice.winner is not None
    for name in names:
        document = (tmp_path / "a" / name).read_text(encoding="utf-8")
        title = parse(document).findtext(f"{SVG_NS}title") or ""  # the whole title (the visible one may wrap)
        assert advice.title in title and title.endswith("— estimates")  # the workload declares estimates only
    tco_texts = "\n".join(texts((tmp_path / "a" / "tco_by_month.svg").read_text(encoding="utf-8")))
    for entry in advice.ranked:
        if entry.rank is not None:
            assert entry.name in tco_texts
    assert f"★ {advice.winner.name}" in tco_texts
    # The same advice writes the same bytes; --no-charts writes none.
    again = write_report(advice, scenario.inputs, variants, tmp_path / "b")
    for first, second in zip(paths, again):
        if first.suffix == ".svg":
            assert first.read_bytes() == second.read_bytes()
    bare = write_report(advice, scenario.inputs, variants, tmp_path / "c", charts=False)
    assert not any(p.suffix == ".svg" for p in bare) and not list((tmp_path / "c").glob("*.svg"))
