"""SVG building blocks shared by every chart: palette, scales, ticks, text, axes and the two wrappers — an inline
``<svg>`` for a page, or a standalone document (with its xmlns and a visible title) for a file.

Coordinates are written with one decimal and every list is iterated in a fixed order, so the same data always
gives the same bytes. All text is escaped.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from html import escape

from adaptlab.numbers import count_compact

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
SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
HEADER = 34  # px above a standalone chart's body: its visible title
NOTE_LINE = 16  # px per note line under a standalone chart
TITLE_CHARS = 82  # characters per line of a standalone chart's title (bold 15 px) …
NOTE_CHARS = 118  # … and of its notes (11 px)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def short(value: float) -> str:
    """Axis tick text: 0.25, 3, 1.2k, 4M."""
    return count_compact(value)


def r(value: float) -> str:
    """A coordinate with one decimal ("12.0" → "12"): short and deterministic."""
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def label(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def family(name: str) -> str:
    return name[: -len(CACHE_SUFFIX)] if name.endswith(CACHE_SUFFIX) and len(name) > len(CACHE_SUFFIX) else name


def colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per family (name without "+cache"), in sorted order, so every chart of a task agrees."""
    families = sorted({family(n) for n in names})
    by_family = {fam: PALETTE[i % len(PALETTE)] for i, fam in enumerate(families)}
    return {n: by_family[family(n)] for n in names}


# ------------------------------------------------------------------------------------------------ scales, ticks


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


class Scale:
    """Maps data to pixels on [p0, p1]: linear, log10, or symmetric log (``linthresh``: linear within
    ±linthresh, log10 beyond, so a log-like axis can still show 0)."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False,
                 linthresh: float | None = None) -> None:
        self.log = log
        self.linthresh = linthresh if log and linthresh else None
        self.lo, self.hi = self.transform(lo), self.transform(hi)
        if self.hi == self.lo:
            self.hi = self.lo + 1.0
        self.p0, self.p1 = p0, p1

    def transform(self, value: float) -> float:
        """The value in the coordinates in which the axis is linear."""
        if not self.log:
            return value
        if self.linthresh is None:
            return math.log10(value)
        a = abs(value) / self.linthresh
        return math.copysign(a if a <= 1 else 1 + math.log10(a), value)

    def inverse(self, t: float) -> float:
        if not self.log:
            return t
        if self.linthresh is None:
            return float(10 ** t)
        a = abs(t)
        return math.copysign(self.linthresh * (a if a <= 1 else 10 ** (a - 1)), t)

    def __call__(self, value: float) -> float:
        return self.p0 + (self.transform(value) - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def scale_ticks(lo: float, hi: float, log: bool, linthresh: float | None = None) -> list[float]:
    """Ticks for an axis on [lo, hi]: nice linear steps, 1-2-5 (or decade) log ticks, or 0 plus log ticks."""
    if not log:
        return nice_ticks(lo, hi)
    if linthresh:
        ticks = [0.0] if lo <= 0 <= hi else []
        if hi > linthresh:
            ticks += log_ticks(linthresh, hi)
        if lo < -linthresh:
            ticks = [-t for t in reversed(log_ticks(linthresh, -lo))] + ticks
        return ticks
    return log_ticks(lo, hi)


def value_range(values: Sequence[float | None], *, zero: bool = False, unit: bool = False) -> tuple[float, float]:
    """A round [lo, hi] covering the values (from 0 with ``zero``; within [0, 1] for shares with ``unit``)."""
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


def log_axis(values: Sequence[float], ratio: float) -> tuple[bool, float | None]:
    """Whether an axis over ``values`` should be logarithmic (all positive values spanning more than ``ratio``×),
    and the linear threshold when zeros or negatives sit beside such a range (symmetric log)."""
    positive = [v for v in values if v > 0]
    if not positive or max(positive) / min(positive) <= ratio:
        return False, None
    return True, (None if len(positive) == len(values) else min(positive))


# ------------------------------------------------------------------------------------------------ svg parts


def svg(kind: str, uid: str, height: float, title: str, body: list[str]) -> str:
    """An inline chart: ``<svg class="chart" data-chart=KIND>`` whose only ids are ``uid`` and ``uid-title``."""
    return (f'<svg class="chart" data-chart="{escape(kind)}" id="{escape(uid)}" width="{WIDTH}" '
            f'height="{r(height)}" viewBox="0 0 {WIDTH} {r(height)}" role="img" '
            f'aria-labelledby="{escape(uid)}-title" font-size="12">'
            f'<title id="{escape(uid)}-title">{escape(title)}</title>' + "".join(body) + "</svg>")


def document(kind: str, title: str, height: float, body: list[str], notes: Sequence[str] = (),
             footer: Sequence[str] = (), footer_height: float = 0.0) -> str:
    """A standalone SVG file: white background, the title on top, the chart body below it, then ``footer``
    parts (drawn at y = 0 and moved under the body) and the notes; long titles and notes wrap."""
    title_lines = textwrap.wrap(title, TITLE_CHARS) or [""]
    note_lines = [part for note in notes for part in textwrap.wrap(note, NOTE_CHARS)]
    header = HEADER + 20 * (len(title_lines) - 1)
    notes_top = header + height + footer_height
    total = notes_top + NOTE_LINE * len(note_lines) + (8 if note_lines else 0)
    parts = [f'<rect width="{WIDTH}" height="{r(total)}" fill="white"/>']
    parts += [text(14, 22 + 20 * i, part, extra=' font-size="15" font-weight="bold"')
              for i, part in enumerate(title_lines)]
    parts.append(f'<g transform="translate(0 {r(header)})">' + "".join(body) + "</g>")
    if footer:
        parts.append(f'<g transform="translate(0 {r(header + height)})">' + "".join(footer) + "</g>")
    parts += [text(14, notes_top + NOTE_LINE * (i + 1) - 4, part, fill=MUTED, extra=' font-size="11"')
              for i, part in enumerate(note_lines)]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="{SVG_NS}" class="chart" data-chart="{escape(kind)}" width="{WIDTH}" '
            f'height="{r(total)}" viewBox="0 0 {WIDTH} {r(total)}" role="img" aria-labelledby="{escape(kind)}-title" '
            f'font-size="12" font-family="{escape(FONT)}">'
            f'<title id="{escape(kind)}-title">{escape(title)}</title>' + "".join(parts) + "</svg>\n")


def text(x: float, y: float, content: str, *, anchor: str = "start", fill: str = INK, extra: str = "") -> str:
    return (f'<text x="{r(x)}" y="{r(y)}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f"{escape(content)}</text>")


def line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, width: float = 1, extra: str = "") -> str:
    return (f'<line x1="{r(x1)}" y1="{r(y1)}" x2="{r(x2)}" y2="{r(y2)}" stroke="{stroke}" '
            f'stroke-width="{width:g}"{extra}/>')


def name_label(x: float, y: float, name: str, highlight: bool) -> str:
    weight = ' font-weight="bold"' if highlight else ""
    shown = ("★ " if highlight else "") + label(name)
    return (f'<g><title>{escape(name)}</title>'
            + text(x, y, shown, anchor="end", fill=HIGHLIGHT if highlight else INK, extra=weight) + "</g>")


def x_axis(scale: Scale, ticks: Sequence[float], top: float, bottom: float, fmt: Callable[[float], str],
           caption: str) -> list[str]:
    parts = []
    for t in ticks:
        x = scale(t)
        parts.append(line(x, top, x, bottom))
        parts.append(text(x, bottom + 15, fmt(t), anchor="middle", fill=MUTED))
    parts.append(text((scale.p0 + scale.p1) / 2, bottom + 32, caption, anchor="middle", fill=MUTED))
    return parts


def y_axis(scale: Scale, ticks: Sequence[float], left: float, right: float, fmt: Callable[[float], str],
           caption: str, top: float, bottom: float) -> list[str]:
    parts = []
    for t in ticks:
        y = scale(t)
        parts.append(line(left, y, right, y))
        parts.append(text(left - 6, y + 4, fmt(t), anchor="end", fill=MUTED))
    mid = (top + bottom) / 2
    parts.append(f'<text x="14" y="{r(mid)}" text-anchor="middle" fill="{MUTED}" '
                 f'transform="rotate(-90 14 {r(mid)})">{escape(caption)}</text>')
    return parts


def empty(kind: str, uid: str, title: str, message: str) -> str:
    return svg(kind, uid, 60, title, [text(WIDTH / 2, 34, message, anchor="middle", fill=MUTED)])


def overlaps(box: Box, taken: Sequence[Box]) -> int:
    return sum(1 for b in taken if box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3])


LABEL_OFFSETS = ((8, -8), (8, 16), (-8, -8), (-8, 16), (8, 4), (-8, 4), (8, -22), (8, 30), (-8, -22), (-8, 30))


def place_label(x: float, y: float, width: float, taken: list[Box], x_min: float, x_max: float,
                lines: int = 1, offsets: Sequence[tuple[float, float]] = LABEL_OFFSETS) -> tuple[float, float, str]:
    """A spot for a point's label (``lines`` lines of 14 px) that overlaps no label placed before (else the
    least crowded one), trying `offsets` (from the point to the first baseline) in order; the box is added to
    `taken`. Returns the text's x, first baseline y and anchor."""
    extra = 14 * (lines - 1)
    best: tuple[int, Box, tuple[float, float, str]] | None = None
    for dx, dy in offsets:
        anchor = "start" if dx > 0 else "end"
        x0 = x + dx if dx > 0 else x + dx - width
        top = y + dy - 11 - (extra if dy < 0 else 0)
        box = (x0, top, x0 + width, top + 14 + extra)
        if box[0] < x_min or box[2] > x_max:
            continue
        hits = overlaps(box, taken)
        if best is None or hits < best[0]:
            best = (hits, box, (x + dx, box[1] + 11, anchor))
        if hits == 0:
            break
    if best is None:
        return x + 8, y - 8, "start"
    taken.append(best[1])
    return best[2]
