"""The chart kinds, drawn as inline ``<svg>`` for the bench report: quality with CIs, latency, bars, lines over
months, the quality-vs-cost frontier and the cache threshold sweep.

Each chart is one ``<svg class="chart" data-chart="KIND">`` whose only ids are ``UID`` and ``UID-title`` — the
caller passes a UID unique on the page (e.g. ``t1-quality``). Missing values (None, NaN, inf) are skipped, never
drawn at 0. ``plot_lines`` and ``frontier_parts`` return the bare body, which the advisor's standalone charts
(adaptlab.charts.advice) reuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from adaptlab.charts.svg import (
    CACHE_SUFFIX,
    HIGHLIGHT,
    INK,
    LABEL_W,
    MUTED,
    ROW,
    WIDTH,
    Box,
    Scale,
    colours,
    empty,
    label,
    line,
    log_ticks,
    name_label,
    nice_ticks,
    place_label,
    r,
    scale_ticks,
    short,
    svg,
    text,
    value_range,
    x_axis,
    y_axis,
)
from adaptlab.numbers import num, usd, usd_compact


@dataclass(frozen=True)
class Interval:
    """One strategy's value with its confidence interval (any may be None)."""

    name: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""  # shown instead of a dot when there is no value
    highlight: bool = False


@dataclass(frozen=True)
class Point:
    """One strategy on the quality-vs-cost frontier."""

    name: str
    cost: float | None
    quality: float | None
    low: float | None = None
    high: float | None = None
    estimate: bool = False
    highlight: bool = False


@dataclass(frozen=True)
class Frame:
    """Where a plot_lines body put its plot area, for drawing more on top of it."""

    xs: Scale
    ys: Scale
    left: float
    right: float
    top: float
    bottom: float
    height: float  # of the whole body, legend included
    series: dict[str, list[tuple[float, float]]]  # the drawn (x, y) data points per series


def quality_chart(rows: Sequence[Interval], *, uid: str, metric: str) -> str:
    """Horizontal dot + CI whisker per strategy; a 0–1 axis when every number lies in [0, 1]."""
    title = f"{metric} per strategy with confidence intervals"
    if not rows:
        return empty("quality", uid, title, "no strategies")
    values = [num(v) for row in rows for v in (row.value, row.low, row.high)]
    lo, hi = value_range(values, unit=True)
    left, right, top = LABEL_W, WIDTH - 90, 10
    bottom = top + ROW * len(rows)
    scale = Scale(lo, hi, left + 6, right)
    parts = x_axis(scale, nice_ticks(lo, hi), top, bottom, short, metric)
    for i, row in enumerate(rows):
        y = top + ROW * i + ROW / 2
        colour = HIGHLIGHT if row.highlight else "#0969da"
        parts.append(name_label(left - 8, y + 4, row.name, row.highlight))
        v, low, high = num(row.value), num(row.low), num(row.high)
        if low is not None and high is not None:
            parts.append(line(scale(low), y, scale(high), y, colour, 2))
            parts += [line(scale(t), y - 5, scale(t), y + 5, colour, 2) for t in (low, high)]
        if v is None:
            parts.append(text(left + 10, y + 4, row.note or "not measured", fill=MUTED, extra=' font-style="italic"'))
            continue
        parts.append(f'<circle cx="{r(scale(v))}" cy="{r(y)}" r="4.5" fill="{colour}"><title>'
                     f'{escape(row.name)}: {v:.3f}' + (f" [{low:.3f}, {high:.3f}]" if low is not None
                                                       and high is not None else "") + "</title></circle>")
        parts.append(text(right + 8, y + 4, f"{v:.3f}", fill=colour))
    return svg("quality", uid, bottom + 42, title, parts)


def latency_chart(rows: Sequence[tuple[str, float | None, float | None]], *, uid: str,
                  highlight: str | None = None) -> str:
    """Per strategy: a solid bar to the p50 latency and a lighter one on to the p95 (milliseconds)."""
    title = "Latency per answer: p50 (solid) and p95 (light), milliseconds"
    if not rows:
        return empty("latency", uid, title, "no strategies")
    lo, hi = value_range([num(v) for _, a, b in rows for v in (a, b)], zero=True)
    left, right, top = LABEL_W, WIDTH - 150, 10
    bottom = top + ROW * len(rows)
    scale = Scale(lo, hi, left + 6, right)
    parts = x_axis(scale, nice_ticks(lo, hi), top, bottom, short, "milliseconds per answer")
    for i, (name, p50, p95) in enumerate(rows):
        y = top + ROW * i + 5
        parts.append(name_label(left - 8, y + 12, name, name == highlight))
        a, b = num(p50), num(p95)
        if b is not None:
            parts.append(f'<rect x="{r(scale(0))}" y="{r(y)}" width="{r(scale(b) - scale(0))}" height="16" '
                         f'fill="#9ecbff"><title>{escape(name)} p95: {b:.0f} ms</title></rect>')
        if a is not None:
            parts.append(f'<rect x="{r(scale(0))}" y="{r(y)}" width="{r(scale(a) - scale(0))}" height="16" '
                         f'fill="#0969da"><title>{escape(name)} p50: {a:.0f} ms</title></rect>')
        shown = "not measured" if a is None and b is None else (
            f"p50 {a:,.0f} · p95 {b:,.0f} ms" if a is not None and b is not None
            else f"{'p50' if a is not None else 'p95'} {(a if a is not None else b):,.0f} ms")
        end = max(scale(v) for v in (a, b, 0.0) if v is not None)
        parts.append(text(end + 6, y + 12, shown, fill=MUTED))
    return svg("latency", uid, bottom + 42, title, parts)


def bar_chart(rows: Sequence[tuple[str, float | None, str]], *, uid: str, kind: str, title: str, axis: str,
              fmt: Callable[[float], str] = short, highlight: str | None = None) -> str:
    """Horizontal bars from 0; rows are (name, value, text shown after the bar)."""
    if not rows:
        return empty(kind, uid, title, "nothing to show")
    lo, hi = value_range([num(v) for _, v, _ in rows], zero=True)
    left, right, top = LABEL_W, WIDTH - 170, 10
    bottom = top + ROW * len(rows)
    scale = Scale(lo, hi, left + 6, right)
    colour = colours([name for name, _, _ in rows])
    parts = x_axis(scale, nice_ticks(lo, hi), top, bottom, fmt, axis)
    for i, (name, value, shown) in enumerate(rows):
        y = top + ROW * i + 5
        parts.append(name_label(left - 8, y + 12, name, name == highlight))
        v = num(value)
        if v is None:
            parts.append(text(scale(0) + 4, y + 12, shown or "not priced", fill=MUTED, extra=' font-style="italic"'))
            continue
        x0, x1 = sorted((scale(0), scale(v)))
        stroke = f' stroke="{HIGHLIGHT}" stroke-width="2"' if name == highlight else ""
        parts.append(f'<rect x="{r(x0)}" y="{r(y)}" width="{r(max(x1 - x0, 1))}" height="16" '
                     f'fill="{colour[name]}"{stroke}><title>{escape(name)}: {escape(shown)}</title></rect>')
        parts.append(text(x1 + 6, y + 12, shown, fill=MUTED))
    return svg(kind, uid, bottom + 42, title, parts)


def line_chart(series: Sequence[tuple[str, Sequence[Any]]], *, uid: str, kind: str, title: str, x_label: str,
               y_label: str, fmt: Callable[[float], str] = short, label_fmt: Callable[[float], str] | None = None,
               highlight: str | None = None) -> str:
    """One line per series over x = 1..n (months); a legend at the right (with each series' last value, in
    `label_fmt`); cached variants dashed."""
    found = plot_lines(series, x_label=x_label, y_label=y_label, fmt=fmt, label_fmt=label_fmt or fmt,
                       highlight=highlight)
    if found is None:
        return empty(kind, uid, title, "nothing to show")
    parts, frame = found
    return svg(kind, uid, frame.height, title, parts)


def _log_range(values: Sequence[float], linthresh: float | None) -> tuple[float, float]:
    """[lo, hi] of a log axis: out to the nearest 1-2-5 step (from 0 or below on a symmetric log axis)."""
    positive = [v for v in values if v > 0]
    lo, hi = min(positive), max(positive)
    steps = [s * 10 ** k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
             for s in (1.0, 2.0, 5.0)]
    lo_step = max((s for s in steps if s <= lo * 1.000001), default=lo)
    hi_step = min((s for s in steps if s >= hi * 0.999999), default=hi)
    if linthresh is not None:
        low = min(values)
        return (0.0 if low >= 0 else -_log_range([-low], None)[1]), hi_step
    return lo_step, hi_step


def plot_lines(series: Sequence[tuple[str, Sequence[Any]]], *, x_label: str, y_label: str,
               fmt: Callable[[float], str] = short, label_fmt: Callable[[float], str] | None = None,
               highlight: str | None = None, x: Sequence[float] | None = None,
               x_fmt: Callable[[float], str] | None = None, log_x: tuple[bool, float | None] = (False, None),
               log_y: tuple[bool, float | None] = (False, None),
               y_extent: Sequence[float] = ()) -> tuple[list[str], Frame] | None:
    """The body of a line chart: one polyline per series, a legend at the right (each series' last value in
    `label_fmt`, names only when it is None; the `highlight` starred and bold),
    cached variants dashed, markers when there are three points or fewer. x is 1..n (months) unless `x` gives
    the values every series is measured at; `log_x`/`log_y` are (log, linear threshold) as from log_axis;
    `y_extent`: more values the y axis must cover (whiskers the caller draws on the frame).
    None when no series has a value to draw."""
    xv = [float(v) for v in x] if x is not None else None
    (lx, x_thresh), (ly, y_thresh) = log_x, log_y

    def usable(i: int, v: Any) -> float | None:
        value = num(v)
        if value is None or (ly and y_thresh is None and value <= 0):
            return None  # a pure log axis cannot show 0 or below
        if xv is not None and (i >= len(xv) or num(xv[i]) is None or (lx and x_thresh is None and xv[i] <= 0)):
            return None
        return value

    drawn = [(name, [usable(i, v) for i, v in enumerate(values)]) for name, values in series]
    drawn = [(name, values) for name, values in drawn if any(v is not None for v in values)]
    if not drawn:
        return None
    n = max(len(values) for _, values in drawn)
    all_y = [v for _, values in drawn for v in values if v is not None] + [float(v) for v in y_extent]
    lo, hi = _log_range(all_y, y_thresh) if ly else value_range(all_y, zero=True)

    def last(values: Sequence[float | None]) -> float:
        return next(v for v in reversed(values) if v is not None)

    labels = {name: f"{'★ ' if name == highlight else ''}{label(name)}"
                    + (f" {label_fmt(last(values))}" if label_fmt else "") for name, values in drawn}
    legend_w = min(300.0, 56 + 7.6 * max(len(shown) for shown in labels.values()))  # bold text: ~7.5 px a character
    left, right, top = 70, WIDTH - legend_w, 12
    bottom = top + 260
    xs_of = xv if xv is not None else [float(m) for m in range(1, n + 1)]
    shown_x = [xs_of[i] for _, values in drawn for i, v in enumerate(values) if v is not None]
    if xv is None:
        xlo, xhi = 1.0, float(max(n, 2))
    elif lx:
        xlo, xhi = (min(shown_x), max(shown_x)) if x_thresh is None else (min(0.0, min(shown_x)), max(shown_x))
    else:
        xlo, xhi = min(shown_x), max(shown_x)
        if xhi == xlo:
            xlo, xhi = xlo - 0.5, xhi + 0.5
    xs = Scale(xlo, xhi, left, right, lx, x_thresh)
    ys = Scale(lo, hi, bottom, top, ly, y_thresh)
    parts = y_axis(ys, scale_ticks(lo, hi, ly, y_thresh), left, right, fmt, y_label, top, bottom)
    if lx:
        ticks = [t for t in scale_ticks(xlo, xhi, True, x_thresh) if xlo * 0.999 <= t <= xhi * 1.001 or t == 0]
        parts += x_axis(xs, ticks, top, bottom, x_fmt or short, x_label)
    else:
        step = max(1, math.ceil(len(xs_of) / 12))
        tick_fmt = x_fmt or (lambda v: f"{v:g}")
        parts += [text(xs(t), bottom + 15, tick_fmt(t), anchor="middle", fill=MUTED) for t in xs_of[::step]]
        parts.append(text((left + right) / 2, bottom + 32, x_label, anchor="middle", fill=MUTED))
    colour = colours([name for name, _ in drawn])
    order = sorted(drawn, key=lambda s: -last(s[1]))
    data: dict[str, list[tuple[float, float]]] = {}
    for i, (name, values) in enumerate(order):  # legend sorted by the last value, highest first
        strong = name == highlight
        width = 3.5 if strong else 2
        dash = ' stroke-dasharray="6 3"' if name.endswith(CACHE_SUFFIX) else ""
        data[name] = [(xs_of[m], v) for m, v in enumerate(values) if v is not None]
        points = " ".join(f"{r(xs(a))},{r(ys(b))}" for a, b in data[name])
        tip = f"{name}: {(label_fmt or fmt)(last(values))}" + (f" after {len(values)}" if xv is None else "")
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour[name]}" stroke-width="{width:g}"'
                     f'{dash}><title>{escape(tip)}</title></polyline>')
        if len(data[name]) <= 3:  # too few points for a visible line
            parts += [f'<circle cx="{r(xs(a))}" cy="{r(ys(b))}" r="{4.5 if strong else 3.5}" '
                      f'fill="{colour[name]}"/>' for a, b in data[name]]
        ly_ = top + 8 + 18 * i
        parts.append(line(right + 14, ly_ - 4, right + 38, ly_ - 4, colour[name], width, dash))
        parts.append(f"<g><title>{escape(name)}</title>" + text(
            right + 44, ly_, labels[name], fill=HIGHLIGHT if strong else INK,
            extra=' font-weight="bold"' if strong else "") + "</g>")
    height = max(bottom + 42, top + 18 * len(order) + 10)
    return parts, Frame(xs, ys, left, right, top, bottom, height, data)


def pareto(points: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both axes (cheaper or equal and better), cheapest first."""
    usable = sorted((p for p in points if num(p.cost) is not None and num(p.quality) is not None),
                    key=lambda p: (p.cost, -p.quality, p.name))  # type: ignore[operator]
    frontier: list[Point] = []
    for p in usable:
        if not frontier or p.quality > frontier[-1].quality:  # type: ignore[operator]
            frontier.append(p)
    return frontier


def frontier_chart(points: Sequence[Point], *, uid: str, metric: str, months: int) -> str:
    """Quality (y) against the TCO (x, log when max/min > 20); the Pareto frontier connected and labelled."""
    title = f"{metric} against {months}-month TCO; the connected points are the cost/quality frontier"
    found = frontier_parts(points, metric=metric, months=months)
    if found is None:
        return empty("frontier", uid, title, "quality or cost not measured for any strategy: no frontier")
    parts, height = found
    return svg("frontier", uid, height, title, parts)


def frontier_parts(points: Sequence[Point], *, metric: str, months: int,
                   estimate_note: str = " (est.)") -> tuple[list[str], float] | None:
    """The body of a frontier chart (estimated points hollow, `estimate_note` after their label; the highlighted
    point ringed and starred); None when no point has both a cost and a quality."""
    usable = [p for p in points if num(p.cost) is not None and num(p.quality) is not None]
    if not usable:
        return None
    costs = [p.cost for p in usable]
    log = min(costs) > 0 and max(costs) / min(costs) > 20  # type: ignore[type-var, operator]
    left, right, top = 70, WIDTH - 150, 14
    bottom = top + 280
    if log:
        xlo, xhi = min(costs) / 1.5, max(costs) * 1.5  # type: ignore[type-var, operator]
        xticks = log_ticks(xlo, xhi)
    else:
        xlo, xhi = value_range(costs, zero=True)
        xticks = nice_ticks(xlo, xhi)
    ylo, yhi = value_range([num(v) for p in usable for v in (p.quality, p.low, p.high)], unit=True)
    xs, ys = Scale(xlo, xhi, left, right, log), Scale(ylo, yhi, bottom, top)
    parts = y_axis(ys, nice_ticks(ylo, yhi), left, right, short, metric, top, bottom)
    parts += x_axis(xs, xticks, top, bottom, usd_compact,
                    f"{months}-month TCO (USD{', log scale' if log else ''})")
    best = pareto(usable)
    if len(best) > 1:
        path = " ".join(f"{r(xs(p.cost))},{r(ys(p.quality))}" for p in best)  # type: ignore[arg-type]
        parts.append(f'<polyline points="{path}" fill="none" stroke="#8c959f" stroke-width="1.5" '
                     'stroke-dasharray="5 3"/>')
    colour = colours([p.name for p in usable])
    on_frontier = {p.name for p in best}
    placed = sorted(usable, key=lambda q: (q.cost, q.name))
    taken: list[Box] = []  # dots, then labels placed so far: labels avoid them
    for p in placed:
        x, y = xs(p.cost), ys(p.quality)  # type: ignore[arg-type]
        low, high = num(p.low), num(p.high)
        if low is not None and high is not None:
            parts.append(line(x, ys(low), x, ys(high), colour[p.name], 1.5))
        fill = "white" if p.estimate else colour[p.name]
        ring = (f' stroke="{HIGHLIGHT}" stroke-width="3"' if p.highlight
                else f' stroke="{colour[p.name]}" stroke-width="2"')
        tip = f"{p.name}: {metric} {p.quality:.3f}, TCO {usd(p.cost)}" + (" (estimate)" if p.estimate else "")
        parts.append(f'<circle cx="{r(x)}" cy="{r(y)}" r="{6 if p.highlight else 5}" fill="{fill}"{ring}>'
                     f"<title>{escape(tip)}</title></circle>")
        taken.append((x - 6, y - 6, x + 6, y + 6))
    # Labels: the recommendation first, then the frontier, then the rest, each where it overlaps least.
    for p in sorted(placed, key=lambda q: (not q.highlight, q.name not in on_frontier)):
        x, y = xs(p.cost), ys(p.quality)  # type: ignore[arg-type]
        strong = p.name in on_frontier
        shown = ("★ " if p.highlight else "") + label(p.name) + (estimate_note if p.estimate else "")
        tx, ty, anchor = place_label(x, y, len(shown) * 7.0, taken, 2, WIDTH - 4)
        parts.append(text(tx, ty, shown, anchor=anchor,
                          fill=HIGHLIGHT if p.highlight else (INK if strong else MUTED),
                          extra=' font-weight="bold"' if strong else ""))
    return parts, bottom + 42


def sweep_chart(hits: Sequence[tuple[Any, Any, Any, Any]], false_hits: Sequence[tuple[Any, Any, Any, Any]],
                *, uid: str, threshold: float | None, recommended: float | None = None) -> str:
    """Hit rate (with its CI band) against the similarity threshold; the false-hit rate on labelled pairs when
    given; a vertical line at the configured threshold (and a dotted one at the pairs' recommendation)."""
    title = "Cache hit rate on the query log against the similarity threshold"
    curves = [[(t, num(v), num(lo), num(hi)) for t, v, lo, hi in rows if num(t) is not None]
              for rows in (hits, false_hits)]
    xs_all = [t for rows in curves for t, *_ in rows]
    xs_all += [v for v in (num(threshold), num(recommended)) if v is not None]
    if not any(v is not None for rows in curves for _, v, _, _ in rows):
        return empty("cache-sweep", uid, title, "no sweep rows")
    left, right, top = 70, WIDTH - 180, 12
    bottom = top + 240
    xlo, xhi = min(xs_all), max(xs_all)
    if xhi == xlo:
        xlo, xhi = xlo - 0.05, xhi + 0.05
    xs, ys = Scale(xlo, xhi, left, right), Scale(0.0, 1.0, bottom, top)
    parts = y_axis(ys, nice_ticks(0, 1), left, right, lambda v: f"{v:.0%}", "rate", top, bottom)
    parts += x_axis(xs, [t for t in nice_ticks(xlo, xhi) if xlo - 1e-9 <= t <= xhi + 1e-9], top, bottom,
                    lambda v: f"{v:.2f}", "similarity threshold")
    styles = (("#0969da", "hit rate (query log)", ""),
              ("#D55E00", "false-hit rate (pairs)", ' stroke-dasharray="6 3"'))
    legend = 0
    for rows, (colour, name, dash) in zip(curves, styles):
        drawn = [(t, v, lo, hi) for t, v, lo, hi in rows if v is not None]
        if not drawn:
            continue
        band = [(t, lo, hi) for t, _, lo, hi in drawn if lo is not None and hi is not None]
        if len(band) > 1:
            outline = [f"{r(xs(t))},{r(ys(hi))}" for t, _, hi in band]
            outline += [f"{r(xs(t))},{r(ys(lo))}" for t, lo, _ in reversed(band)]
            parts.append(f'<polygon points="{" ".join(outline)}" fill="{colour}" fill-opacity="0.15" stroke="none"/>')
        path = " ".join(f"{r(xs(t))},{r(ys(v))}" for t, v, _, _ in drawn)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        parts += [f'<circle cx="{r(xs(t))}" cy="{r(ys(v))}" r="2.5" fill="{colour}"><title>{name} at {t:.2f}: '
                  f'{v:.1%}</title></circle>' for t, v, _, _ in drawn]
        ly = top + 8 + 18 * legend
        parts.append(line(right + 12, ly - 4, right + 34, ly - 4, colour, 2, dash))
        parts.append(text(right + 40, ly, name))
        legend += 1
    marks = ((num(threshold), "configured", ""), (num(recommended), "pairs' pick", ' stroke-dasharray="2 3"'))
    for value, mark, dash in marks:
        if value is None:
            continue
        parts.append(line(xs(value), top, xs(value), bottom, HIGHLIGHT, 1.5, dash))
        parts.append(text(xs(value) + 4, top + 12 + (14 if dash else 0), f"{mark} {value:.2f}", fill=HIGHLIGHT))
    return svg("cache-sweep", uid, bottom + 42, title, parts)
