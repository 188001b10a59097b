"""Fine-tuning's learning curve: quality against training examples (log axis), each adapter's score with its
confidence interval, the fitted line out to one doubling of the data, and the bar to clear (the best strategy
that is not fine-tuned) as a horizontal line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from adaptlab.charts.plots import plot_lines
from adaptlab.charts.svg import MUTED, colours, empty, line, r, svg

MEASURED = "fine-tuned (measured)"
FITTED = "fitted, to 2× the data"


@dataclass(frozen=True)
class CurvePoint:
    examples: int
    value: float | None
    low: float | None = None
    high: float | None = None
    label: str = ""  # tooltip: which adapter


def learning_curve_chart(points: Sequence[CurvePoint], *, uid: str, metric: str,
                         fit: tuple[float, float] | None = None, baseline: tuple[str, float] | None = None,
                         seeds: Sequence[CurvePoint] = ()) -> str:
    """fit: (intercept, gain per doubling) of metric = a + b·log2(examples); baseline: (name, its score);
    seeds: the full set's other training seeds, drawn as open circles."""
    title = f"{metric} against training examples, with confidence intervals"
    measured = sorted((p for p in points if p.value is not None), key=lambda p: p.examples)
    if not measured:
        return empty("learning-curve", uid, title, "no adapter was scored")
    largest = measured[-1].examples
    xs = [float(p.examples) for p in measured] + ([2.0 * largest] if fit else [])
    series: list[tuple[str, list[float | None]]] = [(MEASURED, [p.value for p in measured] + ([None] if fit else []))]
    if fit is not None:
        from math import log2

        series.append((FITTED, [fit[0] + fit[1] * log2(x) for x in xs]))
    if baseline is not None:
        series.append((f"{baseline[0]} (bar to clear)", [baseline[1]] * len(xs)))
    whiskers = [v for p in [*measured, *seeds] for v in (p.low, p.high, p.value) if v is not None]
    found = plot_lines(series, x_label="training examples (log scale)", y_label=metric, x=xs,
                       log_x=(len(xs) > 1, None), x_fmt=lambda v: f"{v:,.0f}", y_extent=whiskers)
    if found is None:
        return empty("learning-curve", uid, title, "nothing to show")
    parts, frame = found
    colour = colours([name for name, _ in series])[MEASURED]  # the measured line's colour, as plot_lines drew it
    for p in [*measured, *seeds]:
        if p.value is None:
            continue
        x, y = frame.xs(float(p.examples)), frame.ys(p.value)
        if p.low is not None and p.high is not None:
            parts.append(line(x, frame.ys(p.low), x, frame.ys(p.high), colour, 2))
            parts += [line(x - 5, frame.ys(t), x + 5, frame.ys(t), colour, 2) for t in (p.low, p.high)]
        hollow = p in seeds
        tip = (f"{p.label}: " if p.label else "") + f"{p.value:.3f}" + (
            f" [{p.low:.3f}, {p.high:.3f}]" if p.low is not None and p.high is not None else "")
        parts.append(f'<circle cx="{r(x)}" cy="{r(y)}" r="5" fill="{"white" if hollow else colour}" '
                     f'stroke="{colour}" stroke-width="2"><title>{escape(tip)}</title></circle>')
    if seeds:
        parts.append(f'<text x="{r(frame.left + 6)}" y="{r(frame.top + 12)}" font-size="11" fill="{MUTED}">'
                     f"open circles: other training seeds</text>")
    return svg("learning-curve", uid, frame.height, title, parts)
