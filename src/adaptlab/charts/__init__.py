"""Every chart adaptlab draws, as hand-written SVG: no plotting library, small, byte-for-byte reproducible.

- adaptlab.charts.svg: the parts (palette, scales, ticks, axes, text, the inline and standalone wrappers)
- adaptlab.charts.plots: the chart kinds, inline in the bench report (quality, latency, bars, lines, the
  quality-vs-cost frontier, the cache sweep)
- adaptlab.charts.training: fine-tuning's learning curve
- adaptlab.charts.advice: the advisor's standalone files (TCO by month, break-even, quality vs cost)

Numbers are formatted by adaptlab.numbers. This package imports nothing else from adaptlab.
"""

from __future__ import annotations

from adaptlab.charts.advice import breakeven_chart, quality_cost_chart, tco_chart
from adaptlab.charts.plots import (
    Interval,
    Point,
    bar_chart,
    frontier_chart,
    latency_chart,
    line_chart,
    pareto,
    quality_chart,
    sweep_chart,
)
from adaptlab.charts.svg import colours, log_ticks, nice_ticks, short
from adaptlab.charts.training import CurvePoint, learning_curve_chart

__all__ = [
    "CurvePoint",
    "Interval",
    "Point",
    "bar_chart",
    "breakeven_chart",
    "colours",
    "frontier_chart",
    "latency_chart",
    "learning_curve_chart",
    "line_chart",
    "log_ticks",
    "nice_ticks",
    "pareto",
    "quality_chart",
    "quality_cost_chart",
    "short",
    "sweep_chart",
    "tco_chart",
]
