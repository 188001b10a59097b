"""Hand-built inline SVG charts for the bench report: quality with CIs, latency, cost bars, TCO lines, the
quality-vs-cost frontier and the cache threshold sweep.

Plain strings, no matplotlib: the page inlines several charts, so every chart must be small, byte-for-byte
reproducible and free of id collisions. Each chart is one ``<svg class="chart" data-chart="KIND">`` whose only
ids are ``UID`` and ``UID-title`` — the caller passes a UID unique on the page (e.g. ``t1-quality``). All text
(strategy names come from the user) is escaped. Missing values (None, NaN, inf) are skipped, never drawn at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = [
    "Interval",
    "Point",
    "bar_chart",
    "fmt_usd",
    "frontier_chart",
    "latency_chart",
    "line_chart",
    "num",
    "pareto",
    "quality_chart",
    "sweep_chart",
]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#8C564B",
           "#7F7F7F", "#BCBD22")
HIGHLIGHT = "#C8102E"
GRID = "#d8dee4"
INK = "#1f2328"
MUTED = "#57606a"
WIDTH = 760
ROW = 26  # px per strategy row in the horizontal charts
LABEL_W = 170  # px for strategy names left of a horizontal chart
MAX_LABEL = 24  # characters of a name shown in a chart (the full name is in the tooltip and the tables)
CACHE_SUFFIX = "+cache"


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


# ------------------------------------------------------------------------------------------------ numbers


def num(value: Any) -> float | None:
    """The value as a finite float, or None (None, NaN, inf, bools, strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt_usd(value: Any) -> str:
    """$1,234 / $12.34 / $0.0123; "—" when missing."""
    v = num(value)
    if v is None:
        return "—"
    sign, a = ("−" if v < 0 else ""), abs(v)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    return f"{sign}${a:.3g}" if a else "$0"


def short(value: float) -> str:
    """Axis tick text: 0.25, 3, 1.2k, 4M."""
    a = abs(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= size:
            return f"{value / size:.3g}{suffix}"
    if a == 0:
        return "0"
    return f"{value:.3g}"


def _r(value: float) -> str:
    """A coordinate with one decimal ("12.0" → "12"): short and deterministic."""
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _label(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def _family(name: str) -> str:
    return name[: -len(CACHE_SUFFIX)] if name.endswith(CACHE_SUFFIX) and len(name) > len(CACHE_SUFFIX) else name


def colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per family (name without "+cache"), in sorted order, so every chart of a task agrees."""
    families = sorted({_family(n) for n in names})
    by_family = {fam: PALETTE[i % len(PALETTE)] for i, fam in enumerate(families)}
    return {n: by_family[_family(n)] for n in names}


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5, 5 × 10^k steps)."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 × 10^k ticks within [lo, hi] (decades only when the range is wide)."""
    subs = (1.0, 2.0, 5.0) if math.log10(hi / lo) <= 3 else (1.0,)
    ticks = []
    for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        ticks += [s * 10 ** k for s in subs if lo * 0.999 <= s * 10 ** k <= hi * 1.001]
    return ticks


class _Scale:
    """Maps data to pixels on [p0, p1]; linear or log10."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False) -> None:
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        if self.hi == self.lo:
            self.hi = self.lo + 1.0
        self.p0, self.p1 = p0, p1

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def _range(values: Sequence[float | None], *, zero: bool = False, unit: bool = False) -> tuple[float, float]:
    found = [v for v in values if v is not None]
    if unit and found and all(0.0 <= v <= 1.0 for v in found):  # a share: from 0, up to a round top ≤ 1
        return 0.0, min(1.0, nice_ticks(0.0, max(max(found), 0.05))[-1])
    lo, hi = (min(found), max(found)) if found else (0.0, 1.0)
    if zero:
        lo = min(lo, 0.0)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 0.5), hi + (abs(hi) * 0.1 or 0.5)
    ticks = nice_ticks(lo, hi)
    return ticks[0], ticks[-1]


# ------------------------------------------------------------------------------------------------ svg parts


def _svg(kind: str, uid: str, height: float, title: str, body: list[str]) -> str:
    return (f'<svg class="chart" data-chart="{escape(kind)}" id="{escape(uid)}" width="{WIDTH}" '
            f'height="{_r(height)}" viewBox="0 0 {WIDTH} {_r(height)}" role="img" '
            f'aria-labelledby="{escape(uid)}-title" font-size="12">'
            f'<title id="{escape(uid)}-title">{escape(title)}</title>' + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK, extra: str = "") -> str:
    return (f'<text x="{_r(x)}" y="{_r(y)}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f"{escape(text)}</text>")


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, width: float = 1, extra: str = "") -> str:
    return (f'<line x1="{_r(x1)}" y1="{_r(y1)}" x2="{_r(x2)}" y2="{_r(y2)}" stroke="{stroke}" '
            f'stroke-width="{width:g}"{extra}/>')


def _name_label(x: float, y: float, name: str, highlight: bool) -> str:
    weight = ' font-weight="bold"' if highlight else ""
    shown = ("★ " if highlight else "") + _label(name)
    return (f'<g><title>{escape(name)}</title>'
            + _text(x, y, shown, anchor="end", fill=HIGHLIGHT if highlight else INK, extra=weight) + "</g>")


def _x_axis(scale: _Scale, ticks: Sequence[float], top: float, bottom: float, fmt: Callable[[float], str],
            caption: str) -> list[str]:
    parts = []
    for t in ticks:
        x = scale(t)
        parts.append(_line(x, top, x, bottom))
        parts.append(_text(x, bottom + 15, fmt(t), anchor="middle", fill=MUTED))
    parts.append(_text((scale.p0 + scale.p1) / 2, bottom + 32, caption, anchor="middle", fill=MUTED))
    return parts


def _y_axis(scale: _Scale, ticks: Sequence[float], left: float, right: float, fmt: Callable[[float], str],
            caption: str, top: float, bottom: float) -> list[str]:
    parts = []
    for t in ticks:
        y = scale(t)
        parts.append(_line(left, y, right, y))
        parts.append(_text(left - 6, y + 4, fmt(t), anchor="end", fill=MUTED))
    mid = (top + bottom) / 2
    parts.append(f'<text x="14" y="{_r(mid)}" text-anchor="middle" fill="{MUTED}" '
                 f'transform="rotate(-90 14 {_r(mid)})">{escape(caption)}</text>')
    return parts


def _empty(kind: str, uid: str, title: str, message: str) -> str:
    return _svg(kind, uid, 60, title, [_text(WIDTH / 2, 34, message, anchor="middle", fill=MUTED)])


# ------------------------------------------------------------------------------------------------ charts


def quality_chart(rows: Sequence[Interval], *, uid: str, metric: str) -> str:
    """Horizontal dot + CI whisker per strategy; a 0–1 axis when every number lies in [0, 1]."""
    title = f"{metric} per strategy with confidence intervals"
    if not rows:
        return _empty("quality", uid, title, "no strategies")
    values = [num(v) for r in rows for v in (r.value, r.low, r.high)]
    lo, hi = _range(values, unit=True)
    left, right, top = LABEL_W, WIDTH - 90, 10
    bottom = top + ROW * len(rows)
    scale = _Scale(lo, hi, left + 6, right)
    parts = _x_axis(scale, nice_ticks(lo, hi), top, bottom, short, metric)
    for i, r in enumerate(rows):
        y = top + ROW * i + ROW / 2
        colour = HIGHLIGHT if r.highlight else "#0969da"
        parts.append(_name_label(left - 8, y + 4, r.name, r.highlight))
        v, low, high = num(r.value), num(r.low), num(r.high)
        if low is not None and high is not None:
            parts.append(_line(scale(low), y, scale(high), y, colour, 2))
            parts += [_line(scale(t), y - 5, scale(t), y + 5, colour, 2) for t in (low, high)]
        if v is None:
            parts.append(_text(left + 10, y + 4, r.note or "not measured", fill=MUTED, extra=' font-style="italic"'))
            continue
        parts.append(f'<circle cx="{_r(scale(v))}" cy="{_r(y)}" r="4.5" fill="{colour}"><title>'
                     f'{escape(r.name)}: {v:.3f}' + (f" [{low:.3f}, {high:.3f}]" if low is not None
                                                     and high is not None else "") + "</title></circle>")
        parts.append(_text(right + 8, y + 4, f"{v:.3f}", fill=colour))
    return _svg("quality", uid, bottom + 42, title, parts)


def latency_chart(rows: Sequence[tuple[str, float | None, float | None]], *, uid: str,
                  highlight: str | None = None) -> str:
    """Per strategy: a solid bar to the p50 latency and a lighter one on to the p95 (milliseconds)."""
    title = "Latency per answer: p50 (solid) and p95 (light), milliseconds"
    if not rows:
        return _empty("latency", uid, title, "no strategies")
    lo, hi = _range([num(v) for _, a, b in rows for v in (a, b)], zero=True)
    left, right, top = LABEL_W, WIDTH - 150, 10
    bottom = top + ROW * len(rows)
    scale = _Scale(lo, hi, left + 6, right)
    parts = _x_axis(scale, nice_ticks(lo, hi), top, bottom, short, "milliseconds per answer")
    for i, (name, p50, p95) in enumerate(rows):
        y = top + ROW * i + 5
        parts.append(_name_label(left - 8, y + 12, name, name == highlight))
        a, b = num(p50), num(p95)
        if b is not None:
            parts.append(f'<rect x="{_r(scale(0))}" y="{_r(y)}" width="{_r(scale(b) - scale(0))}" height="16" '
                         f'fill="#9ecbff"><title>{escape(name)} p95: {b:.0f} ms</title></rect>')
        if a is not None:
            parts.append(f'<rect x="{_r(scale(0))}" y="{_r(y)}" width="{_r(scale(a) - scale(0))}" height="16" '
                         f'fill="#0969da"><title>{escape(name)} p50: {a:.0f} ms</title></rect>')
        label = "not measured" if a is None and b is None else (
            f"p50 {a:,.0f} · p95 {b:,.0f} ms" if a is not None and b is not None
            else f"{'p50' if a is not None else 'p95'} {(a if a is not None else b):,.0f} ms")
        end = max(scale(v) for v in (a, b, 0.0) if v is not None)
        parts.append(_text(end + 6, y + 12, label, fill=MUTED))
    return _svg("latency", uid, bottom + 42, title, parts)


def bar_chart(rows: Sequence[tuple[str, float | None, str]], *, uid: str, kind: str, title: str, axis: str,
              fmt: Callable[[float], str] = short, highlight: str | None = None) -> str:
    """Horizontal bars from 0; rows are (name, value, text shown after the bar)."""
    if not rows:
        return _empty(kind, uid, title, "nothing to show")
    lo, hi = _range([num(v) for _, v, _ in rows], zero=True)
    left, right, top = LABEL_W, WIDTH - 170, 10
    bottom = top + ROW * len(rows)
    scale = _Scale(lo, hi, left + 6, right)
    colour = colours([name for name, _, _ in rows])
    parts = _x_axis(scale, nice_ticks(lo, hi), top, bottom, fmt, axis)
    for i, (name, value, text) in enumerate(rows):
        y = top + ROW * i + 5
        parts.append(_name_label(left - 8, y + 12, name, name == highlight))
        v = num(value)
        if v is None:
            parts.append(_text(scale(0) + 4, y + 12, text or "not priced", fill=MUTED, extra=' font-style="italic"'))
            continue
        x0, x1 = sorted((scale(0), scale(v)))
        stroke = f' stroke="{HIGHLIGHT}" stroke-width="2"' if name == highlight else ""
        parts.append(f'<rect x="{_r(x0)}" y="{_r(y)}" width="{_r(max(x1 - x0, 1))}" height="16" '
                     f'fill="{colour[name]}"{stroke}><title>{escape(name)}: {escape(text)}</title></rect>')
        parts.append(_text(x1 + 6, y + 12, text, fill=MUTED))
    return _svg(kind, uid, bottom + 42, title, parts)


def line_chart(series: Sequence[tuple[str, Sequence[Any]]], *, uid: str, kind: str, title: str, x_label: str,
               y_label: str, fmt: Callable[[float], str] = short, label_fmt: Callable[[float], str] | None = None,
               highlight: str | None = None) -> str:
    """One line per series over x = 1..n (months); a legend at the right (with each series' last value, in
    `label_fmt`); cached variants dashed."""
    label_fmt = label_fmt or fmt
    drawn = [(name, [num(v) for v in values]) for name, values in series]
    drawn = [(name, values) for name, values in drawn if any(v is not None for v in values)]
    if not drawn:
        return _empty(kind, uid, title, "nothing to show")
    n = max(len(values) for _, values in drawn)
    lo, hi = _range([v for _, values in drawn for v in values], zero=True)
    labels = {name: f"{'★ ' if name == highlight else ''}{_label(name)} "
                    f"{label_fmt(next(v for v in reversed(values) if v is not None))}" for name, values in drawn}
    legend_w = min(280.0, 50 + 7.2 * max(len(text) for text in labels.values()))  # bold text: ~7 px a character
    left, right, top = 70, WIDTH - legend_w, 12
    bottom = top + 260
    xs = _Scale(1, max(n, 2), left, right)
    ys = _Scale(lo, hi, bottom, top)
    parts = _y_axis(ys, nice_ticks(lo, hi), left, right, fmt, y_label, top, bottom)
    step = max(1, math.ceil(n / 12))
    parts += [_text(xs(m), bottom + 15, str(m), anchor="middle", fill=MUTED) for m in range(1, n + 1, step)]
    parts.append(_text((left + right) / 2, bottom + 32, x_label, anchor="middle", fill=MUTED))
    colour = colours([name for name, _ in drawn])
    order = sorted(drawn, key=lambda s: -(next((v for v in reversed(s[1]) if v is not None), 0.0)))
    for i, (name, values) in enumerate(order):  # legend sorted by the last value, highest first
        strong = name == highlight
        width = 3.5 if strong else 2
        dash = ' stroke-dasharray="6 3"' if name.endswith(CACHE_SUFFIX) else ""
        points = " ".join(f"{_r(xs(m + 1))},{_r(ys(v))}" for m, v in enumerate(values) if v is not None)
        last = next(v for v in reversed(values) if v is not None)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour[name]}" stroke-width="{width:g}"'
                     f'{dash}><title>{escape(name)}: {escape(label_fmt(last))} after {len(values)}</title></polyline>')
        ly = top + 8 + 18 * i
        parts.append(_line(right + 14, ly - 4, right + 38, ly - 4, colour[name], width, dash))
        parts.append(f"<g><title>{escape(name)}</title>" + _text(
            right + 44, ly, labels[name], fill=HIGHLIGHT if strong else INK,
            extra=' font-weight="bold"' if strong else "") + "</g>")
    return _svg(kind, uid, max(bottom + 42, top + 18 * len(order) + 10), title, parts)


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
    usable = [p for p in points if num(p.cost) is not None and num(p.quality) is not None]
    if not usable:
        return _empty("frontier", uid, title, "quality or cost not measured for any strategy: no frontier")
    costs = [p.cost for p in usable]
    log = min(costs) > 0 and max(costs) / min(costs) > 20  # type: ignore[type-var, operator]
    left, right, top = 70, WIDTH - 150, 14
    bottom = top + 280
    if log:
        xlo, xhi = min(costs) / 1.5, max(costs) * 1.5  # type: ignore[type-var, operator]
        xticks = log_ticks(xlo, xhi)
    else:
        xlo, xhi = _range(costs, zero=True)
        xticks = nice_ticks(xlo, xhi)
    ylo, yhi = _range([num(v) for p in usable for v in (p.quality, p.low, p.high)], unit=True)
    xs, ys = _Scale(xlo, xhi, left, right, log), _Scale(ylo, yhi, bottom, top)
    parts = _y_axis(ys, nice_ticks(ylo, yhi), left, right, short, metric, top, bottom)
    parts += _x_axis(xs, xticks, top, bottom, lambda v: "$" + short(v),
                     f"{months}-month TCO (USD{', log scale' if log else ''})")
    best = pareto(usable)
    if len(best) > 1:
        line = " ".join(f"{_r(xs(p.cost))},{_r(ys(p.quality))}" for p in best)  # type: ignore[arg-type]
        parts.append(f'<polyline points="{line}" fill="none" stroke="#8c959f" stroke-width="1.5" '
                     'stroke-dasharray="5 3"/>')
    colour = colours([p.name for p in usable])
    on_frontier = {p.name for p in best}
    placed = sorted(usable, key=lambda q: (q.cost, q.name))
    taken: list[tuple[float, float, float, float]] = []  # dots, then labels placed so far: labels avoid them
    for p in placed:
        x, y = xs(p.cost), ys(p.quality)  # type: ignore[arg-type]
        low, high = num(p.low), num(p.high)
        if low is not None and high is not None:
            parts.append(_line(x, ys(low), x, ys(high), colour[p.name], 1.5))
        fill = "white" if p.estimate else colour[p.name]
        ring = (f' stroke="{HIGHLIGHT}" stroke-width="3"' if p.highlight
                else f' stroke="{colour[p.name]}" stroke-width="2"')
        tip = f"{p.name}: {metric} {p.quality:.3f}, TCO {fmt_usd(p.cost)}" + (" (estimate)" if p.estimate else "")
        parts.append(f'<circle cx="{_r(x)}" cy="{_r(y)}" r="{6 if p.highlight else 5}" fill="{fill}"{ring}>'
                     f"<title>{escape(tip)}</title></circle>")
        taken.append((x - 6, y - 6, x + 6, y + 6))
    # Labels: the recommendation first, then the frontier, then the rest, each where it overlaps least.
    for p in sorted(placed, key=lambda q: (not q.highlight, q.name not in on_frontier)):
        x, y = xs(p.cost), ys(p.quality)  # type: ignore[arg-type]
        strong = p.name in on_frontier
        text = ("★ " if p.highlight else "") + _label(p.name) + (" (est.)" if p.estimate else "")
        tx, ty, anchor = _place_label(x, y, len(text) * 7.0, taken, 2, WIDTH - 4)
        parts.append(_text(tx, ty, text, anchor=anchor,
                           fill=HIGHLIGHT if p.highlight else (INK if strong else MUTED),
                           extra=' font-weight="bold"' if strong else ""))
    return _svg("frontier", uid, bottom + 42, title, parts)


def _place_label(x: float, y: float, width: float, taken: list[tuple[float, float, float, float]],
                 x_min: float, x_max: float) -> tuple[float, float, str]:
    """A spot for a point's label that overlaps no label placed before (else the least crowded one); the box is
    added to `taken`. Returns the text's x, baseline y and anchor."""
    offsets = [(8, -8), (8, 16), (-8, -8), (-8, 16), (8, 4), (-8, 4), (8, -22), (8, 30), (-8, -22), (-8, 30)]
    best: tuple[int, tuple[float, float, float, float], tuple[float, float, str]] | None = None
    for dx, dy in offsets:
        anchor = "start" if dx > 0 else "end"
        x0 = x + dx if dx > 0 else x + dx - width
        box = (x0, y + dy - 11, x0 + width, y + dy + 3)
        if box[0] < x_min or box[2] > x_max:
            continue
        hits = sum(1 for b in taken if box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3])
        if best is None or hits < best[0]:
            best = (hits, box, (x + dx, y + dy, anchor))
        if hits == 0:
            break
    if best is None:
        return x + 8, y - 8, "start"
    taken.append(best[1])
    return best[2]


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
        return _empty("cache-sweep", uid, title, "no sweep rows")
    left, right, top = 70, WIDTH - 180, 12
    bottom = top + 240
    xlo, xhi = min(xs_all), max(xs_all)
    if xhi == xlo:
        xlo, xhi = xlo - 0.05, xhi + 0.05
    xs, ys = _Scale(xlo, xhi, left, right), _Scale(0.0, 1.0, bottom, top)
    parts = _y_axis(ys, nice_ticks(0, 1), left, right, lambda v: f"{v:.0%}", "rate", top, bottom)
    parts += _x_axis(xs, [t for t in nice_ticks(xlo, xhi) if xlo - 1e-9 <= t <= xhi + 1e-9], top, bottom,
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
            outline = [f"{_r(xs(t))},{_r(ys(hi))}" for t, _, hi in band]
            outline += [f"{_r(xs(t))},{_r(ys(lo))}" for t, lo, _ in reversed(band)]
            parts.append(f'<polygon points="{" ".join(outline)}" fill="{colour}" fill-opacity="0.15" stroke="none"/>')
        line = " ".join(f"{_r(xs(t))},{_r(ys(v))}" for t, v, _, _ in drawn)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        parts += [f'<circle cx="{_r(xs(t))}" cy="{_r(ys(v))}" r="2.5" fill="{colour}"><title>{name} at {t:.2f}: '
                  f'{v:.1%}</title></circle>' for t, v, _, _ in drawn]
        ly = top + 8 + 18 * legend
        parts.append(_line(right + 12, ly - 4, right + 34, ly - 4, colour, 2, dash))
        parts.append(_text(right + 40, ly, name))
        legend += 1
    marks = ((num(threshold), "configured", ""), (num(recommended), "pairs' pick", ' stroke-dasharray="2 3"'))
    for value, label, dash in marks:
        if value is None:
            continue
        parts.append(_line(xs(value), top, xs(value), bottom, HIGHLIGHT, 1.5, dash))
        parts.append(_text(xs(value) + 4, top + 12 + (14 if dash else 0), f"{label} {value:.2f}", fill=HIGHLIGHT))
    return _svg("cache-sweep", uid, bottom + 42, title, parts)
