"""The cost advisor's charts as standalone SVG files (``adaptlab advise --out``): cumulative cost by month,
total cost against volume (log–log, with the break-even points), and quality against cost.

Each function returns the whole document (``<?xml …?>`` and an ``<svg xmlns=…>`` with a visible title), drawn with
the same parts as the bench report's inline charts, so the two always agree on colours, formats and style. The
same input gives the same bytes. Estimates say so: " — estimates" after the title and a note under the chart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from adaptlab.charts.plots import Frame, Point, frontier_parts, pareto, plot_lines
from adaptlab.charts.svg import (
    HIGHLIGHT,
    MUTED,
    WIDTH,
    Box,
    document,
    line,
    log_axis,
    place_label,
    r,
    text,
)
from adaptlab.numbers import count_compact, num, usd, usd_compact

__all__ = ["ESTIMATE_SUFFIX", "breakeven_chart", "quality_cost_chart", "tco_chart"]

ESTIMATE_SUFFIX = " — estimates"
ESTIMATE_NOTE = "Estimates: costs from declared assumptions, not measured usage."
CROSSING_OFFSETS = ((12, 24), (12, 54), (-12, 24), (12, -30), (-12, -30), (12, 84), (-12, 54), (-12, 84))


def _title(title: str, estimate: bool) -> str:
    return title + ESTIMATE_SUFFIX if estimate and not title.endswith(ESTIMATE_SUFFIX) else title


def _check(what: str, series: Mapping[str, Sequence[float]], axis: Sequence[float], axis_name: str) -> None:
    if not series:
        raise ValueError(f"{what}: nothing to plot (no series given)")
    if not axis:
        raise ValueError(f"{what}: no {axis_name} given")
    for name, values in series.items():
        if len(values) != len(axis):
            raise ValueError(f"{what}: series {name!r} has {len(values)} values but there are {len(axis)} "
                             f"{axis_name}")


def _recommended(highlight: str | None, series: Mapping[str, Sequence[float]]) -> list[str]:
    return [f"★ recommended: {highlight}."] if highlight is not None and highlight in series else []


def _nothing(kind: str, title: str, message: str, notes: Sequence[str]) -> str:
    return document(kind, title, 60, [text(WIDTH / 2, 34, message, anchor="middle", fill=MUTED)], notes)


def tco_chart(months: Sequence[int], cumulative: Mapping[str, Sequence[float]], *, title: str, estimate: bool,
              highlight: str | None = None) -> str:
    """Cumulative cost (USD) at each month-end, one line per strategy: colour = family (the name without
    "+cache"), dashed = with cache; ``highlight`` (the advisor's pick) thicker and starred, named in a note. The
    legend gives each line's total at the last month."""
    _check("tco_chart", cumulative, months, "months")
    shown = _title(title, estimate)
    notes = _recommended(highlight, cumulative) + ([ESTIMATE_NOTE] if estimate else [])
    found = plot_lines(list(cumulative.items()), x=[float(m) for m in months], x_label="month",
                       y_label="cumulative cost (USD)", fmt=usd_compact, label_fmt=usd, highlight=highlight,
                       x_fmt=lambda v: f"{v:g}")
    if found is None:
        return _nothing("tco", shown, "no cost to show", notes)
    parts, frame = found
    return document("tco", shown, frame.height, parts, notes)


def _y_at(frame: Frame, names: Sequence[str], volume: float) -> float | None:
    """The y of the first of `names` that is drawn, at x = volume, on its straight (as drawn) segments."""
    tx = frame.xs.transform(volume)
    for name in names:
        points = [(frame.xs.transform(x), frame.ys.transform(y)) for x, y in frame.series.get(name, [])]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x0 <= tx <= x1:
                ty = y0 if x1 == x0 else y0 + (y1 - y0) * (tx - x0) / (x1 - x0)
                return frame.ys.inverse(ty)
        if len(points) == 1 and math.isclose(points[0][0], tx):
            return frame.ys.inverse(points[0][1])
    return None


def breakeven_chart(volumes: Sequence[float], totals: Mapping[str, Sequence[float]], *, title: str,
                    marker_volume: float | None, crossings: Sequence[tuple[str, str, float]], estimate: bool,
                    highlight: str | None = None) -> str:
    """Total cost over the horizon against queries/day, one line per strategy, on log–log axes (x: symmetric
    log when a volume is 0; y: log when the totals span more than 20×). A dotted line marks the workload's
    volume; each crossing ``(a, b, queries/day)`` gets a dot on the lines and a label — or, outside the plotted
    volumes, a note under the chart."""
    _check("breakeven_chart", totals, volumes, "volumes")
    order = sorted(range(len(volumes)), key=lambda i: volumes[i])
    x = [float(volumes[i]) for i in order]
    series = [(name, [values[i] for i in order]) for name, values in totals.items()]
    finite_x = [v for v in x if num(v) is not None]
    all_y = [v for _, values in series for v in values if num(v) is not None]
    log_x = log_axis(finite_x, 1.0)
    log_y = log_axis(all_y, 20.0)
    shown = _title(title, estimate)
    found = plot_lines(series, x=x, x_label="queries per day", y_label="total cost over the horizon (USD)",
                       fmt=usd_compact, label_fmt=None, highlight=highlight, x_fmt=count_compact, log_x=log_x,
                       log_y=log_y)
    notes = _recommended(highlight, totals)
    if found is None:
        return _nothing("break-even", shown, "no cost to show", notes + ([ESTIMATE_NOTE] if estimate else []))
    parts, frame = found
    xs = frame.xs
    lo_x, hi_x = min(finite_x), max(finite_x)
    pure_log = log_x[0] and log_x[1] is None

    taken: list[Box] = []
    mark = num(marker_volume)
    if mark is not None and lo_x <= mark <= hi_x and not (pure_log and mark <= 0):
        at = xs(mark)
        parts.append(line(at, frame.top, at, frame.bottom, "#444444", 1.6, ' stroke-dasharray="2 3"'))
        anchor, dx = ("end", -5.0) if at > frame.right - 110 else ("start", 5.0)
        for i, shown_text in enumerate(("your workload", f"{count_compact(mark)}/day")):
            parts.append(text(at + dx, frame.top + 12 + 14 * i, shown_text, anchor=anchor, fill="#444444",
                              extra=' font-size="11"'))
        x0 = at + dx - 100 if anchor == "end" else at + dx
        taken.append((x0, frame.top, x0 + 100, frame.top + 30))  # crossing labels keep off the marker's

    outside = []
    for a, b, volume in crossings:
        v = num(volume)
        if v is None or v < lo_x or v > hi_x or (pure_log and v <= 0):
            outside.append(f"{a} = {b} at {count_compact(volume)}/day")
            continue
        lines = (f"{a} = {b}", f"@ {count_compact(v)}/day")
        width = 7.0 * max(len(s) for s in lines)
        y_value = _y_at(frame, (a, b), v)
        cx = xs(v)
        if y_value is None:  # neither strategy is drawn: mark the volume on the x axis
            cy = frame.bottom
            parts.append(f'<path d="M{r(cx - 5)},{r(cy - 9)} L{r(cx + 5)},{r(cy - 9)} L{r(cx)},{r(cy)} Z" '
                         f'fill="#333333"/>')
        else:
            cy = frame.ys(y_value)
            tip = f"{a} = {b} at {count_compact(v)} queries/day: {usd(y_value)}"
            parts.append(f'<circle cx="{r(cx)}" cy="{r(cy)}" r="4.5" fill="#222222" stroke="white" '
                         f'stroke-width="1"><title>{escape(tip)}</title></circle>')
        taken.append((cx - 5, cy - 5, cx + 5, cy + 5))
        # Cost lines rise to the right, so below-right of a crossing is usually clear: labels go there first.
        tx, ty, anchor = place_label(cx, cy, width, taken, frame.left, frame.right, lines=2,
                                     offsets=CROSSING_OFFSETS)
        x0 = tx if anchor == "start" else tx - width
        parts.append(f'<rect x="{r(x0 - 3)}" y="{r(ty - 12)}" width="{r(width + 6)}" height="32" fill="white" '
                     'fill-opacity="0.85" rx="3"/>')
        strong = highlight in (a, b)
        for i, shown_text in enumerate(lines):
            parts.append(text(tx, ty + 14 * i, shown_text, anchor=anchor, fill="#222222",
                              extra=' font-size="11"' + (' font-weight="bold"' if strong and i == 0 else "")))
    if outside:
        notes.append("Outside the plotted volumes: " + "; ".join(outside) + ".")
    if estimate:
        notes.append(ESTIMATE_NOTE)
    return document("break-even", shown, frame.height, parts, notes)


def _legend(points: Sequence[Point], frontier: bool) -> list[str]:
    """One row under the quality chart saying what each mark means (only the marks it uses)."""
    grey = "#57606a"
    items: list[tuple[str, str]] = []
    if any(not p.estimate for p in points):
        items.append((f'<circle cx="{{x}}" cy="10" r="5" fill="{grey}"/>', "measured"))
    if any(p.estimate for p in points):
        items.append((f'<circle cx="{{x}}" cy="10" r="5" fill="white" stroke="{grey}" stroke-width="2"/>',
                      "estimate"))
    if any(num(p.low) is not None and num(p.high) is not None for p in points):
        items.append((f'<line x1="{{x}}" y1="3" x2="{{x}}" y2="17" stroke="{grey}" stroke-width="1.5"/>',
                      "confidence interval"))
    if any(p.highlight for p in points):
        items.append((f'<circle cx="{{x}}" cy="10" r="6" fill="white" stroke="{HIGHLIGHT}" stroke-width="3"/>',
                      "★ recommended"))
    if frontier:
        items.append(('<line x1="{xl}" y1="10" x2="{xr}" y2="10" stroke="#8c959f" stroke-width="1.5" '
                      'stroke-dasharray="5 3"/>', "cost/quality frontier"))
    parts, x = [], 76.0
    for mark, caption in items:
        parts.append(mark.format(x=r(x), xl=r(x - 8), xr=r(x + 8)))
        parts.append(text(x + 14, 14, caption, fill=grey))
        x += 44 + 7.2 * len(caption)
    return parts


def quality_cost_chart(points: Sequence[Point], *, metric: str, title: str, months: int) -> str:
    """Quality (``metric``, with CI whiskers) against the ``months``-month TCO, one labelled point per strategy:
    estimates hollow and "(estimate)" (the title says " — estimates" when all are), the recommendation
    (``highlight``) ringed and starred, the cost/quality frontier connected. Cost is logarithmic when it spans
    more than 20×. Strategies without a measured quality are listed in a note under the chart."""
    if not points:
        raise ValueError("quality_cost_chart: nothing to plot (no points given)")
    all_estimate = all(p.estimate for p in points)
    shown = [p for p in points if num(p.cost) is not None and num(p.quality) is not None]
    missing = [p for p in points if p not in shown]
    notes = []
    if missing:
        notes.append(f"No {metric} measured: " + ", ".join(
            f"{p.name}{' (estimate)' if p.estimate and not all_estimate else ''} ({usd(p.cost)})" for p in missing)
                     + ".")
    if all_estimate:
        notes.append("Estimates: declared numbers, not measured.")
    heading = _title(title, all_estimate)
    found = frontier_parts(points, metric=metric, months=months, estimate_note="" if all_estimate else " (estimate)")
    if found is None:
        return _nothing("quality-cost", heading, f"No strategy has a measured {metric}", notes)
    parts, height = found
    return document("quality-cost", heading, height, parts, notes,
                    footer=_legend(shown, len(pareto(shown)) > 1), footer_height=24)

