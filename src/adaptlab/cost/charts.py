"""Charts for the cost advisor: cumulative TCO, break-even by volume, quality against cost.

Drawn with matplotlib's object API (``Figure`` + the Agg canvas), never pyplot, so nothing touches pyplot's global
figure list or the display. rcParams are global, though, so each render holds a module lock while it sets its own
style (matplotlib's defaults plus a few readable overrides) and writes the file. SVG output is byte-for-byte
reproducible: a fixed ``svg.hashsalt``, no date in the metadata, and text kept as ``<text>`` elements
(``svg.fonttype = "none"``) so that names in the chart are searchable and the files stay small.

Import this module only when drawing: matplotlib costs ~0.3 s to import.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.typing import RcKeyType

__all__ = ["QualityPoint", "breakeven_chart", "format_count", "format_usd", "quality_cost_chart", "tco_chart"]

ESTIMATE_SUFFIX = " — estimates"
CACHE_SUFFIX = "+cache"

# Okabe–Ito (colour-blind safe), then a few darker extras for larger families.
_PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#000000",
    "#8C564B",
    "#7F7F7F",
    "#BCBD22",
)
_HIGHLIGHT = "#C8102E"
_WIDTH_IN = 8.0
_HEIGHT_IN = 4.8

_Values = Sequence[float] | np.ndarray  # a series of numbers: a list, or an array from numpy

_RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "adaptlab-cost-charts",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "font.size": 10.5,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "legend.fontsize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
    "savefig.facecolor": "white",
    "path.simplify": False,
    "text.parse_math": False,  # "$" in labels is a dollar sign, not mathtext
}
_METADATA = {
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
    "png": {},
}
_LOCK = threading.RLock()


@dataclass(frozen=True)
class QualityPoint:
    """One strategy variant on the quality-vs-cost chart."""

    name: str  # strategy variant, e.g. "rag+cache"
    annual_cost: float  # USD over the horizon
    quality: float | None  # metric value; None/NaN: not measured (listed in a note under the chart)
    low: float | None  # CI bounds (None: no interval drawn on that side)
    high: float | None
    estimate: bool  # declared estimates, not measured: hollow marker, "(estimate)" in its label
    recommended: bool  # the advisor's pick: ringed and starred


# --------------------------------------------------------------------------------------------- formatting


def _compact(value: float, units: Sequence[tuple[float, str]]) -> tuple[str, str]:
    a = abs(value)
    for size, suffix in units:
        if a >= size * 0.9995:
            return f"{a / size:.1f}".removesuffix(".0"), suffix
    return "", ""


def _format_compact(value: float, unit: str, small: str) -> str:
    """unit + value, with k/M/B above 1,000; below 10, non-integers get the `small` format spec."""
    if not math.isfinite(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    text, suffix = _compact(value, ((1e9, "B"), (1e6, "M"), (1e3, "k")))
    if suffix:
        return f"{sign}{unit}{text}{suffix}"
    a = abs(value)
    if a == 0:
        return f"{unit}0"
    if a < 10 and round(a) != round(a, 2):
        return f"{sign}{unit}{a:{small}}"
    return f"{sign}{unit}{a:.0f}"


def format_usd(value: float) -> str:
    """$0, $0.35, $12, $1.2k, $3.4M, $2B (negative: -$1.2k)."""
    return _format_compact(value, "$", ".2f")


def format_count(value: float) -> str:
    """Queries per day: 5, 0.5, 1.2k, 3M."""
    return _format_compact(value, "", ".2g")


# --------------------------------------------------------------------------------------------- helpers


def _family(name: str) -> tuple[str, bool]:
    if name.endswith(CACHE_SUFFIX) and len(name) > len(CACHE_SUFFIX):
        return name[: -len(CACHE_SUFFIX)], True
    return name, False


def _family_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per family (name without "+cache"), assigned in sorted order so every chart of the same set
    of variants agrees on colours."""
    families = sorted({_family(n)[0] for n in names})
    return {fam: _PALETTE[i % len(_PALETTE)] for i, fam in enumerate(families)}


def _title(title: str, estimate: bool) -> str:
    return title + ESTIMATE_SUFFIX if estimate and not title.endswith(ESTIMATE_SUFFIX) else title


def _finite(values: _Values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    finite: np.ndarray = arr[np.isfinite(arr)]
    return finite


def _choose_scale(values: _Values, ratio: float) -> tuple[str, dict]:
    """Axis scale for ``values``: log when all are positive and max/min exceeds ``ratio``; symlog when zeros or
    negatives sit beside such a wide positive range (a log axis cannot show them); linear otherwise."""
    arr = _finite(values)
    positive = arr[arr > 0]
    if positive.size == 0 or positive.max() / positive.min() <= ratio:
        return "linear", {}
    if positive.size == arr.size:
        return "log", {}
    # Zero/negative values beside a wide positive range: symlog, linear up to the smallest positive value so the
    # positive values still spread logarithmically.
    return "symlog", {"linthresh": float(positive.min())}


def _apply_scale(axis: Axis, scale: str, values: _Values, formatter: Callable[[float], str]) -> None:
    """Scale + tick formatting for one axis (``ax.xaxis`` or ``ax.yaxis``)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: formatter(v)))
    if scale == "log":
        arr = _finite(values)
        arr = arr[arr > 0]
        decades = math.log10(arr.max() / arr.min()) if arr.size else 0.0
        if decades <= 3:
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_minor_formatter(NullFormatter())
        else:
            # Wide ranges: decades only, and no minor ticks (dozens of them add clutter and render time).
            axis.set_major_locator(LogLocator(base=10, subs=(1.0,)))
            axis.set_minor_locator(NullLocator())
    elif scale == "symlog":
        axis.set_minor_formatter(NullFormatter())
    else:
        axis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]))


def _set_scale(ax: Axes, which: str, scale: str, kwargs: dict[str, Any], values: _Values,
               formatter: Callable[[float], str]) -> None:
    if which == "x":
        ax.set_xscale(scale, **kwargs)
        _apply_scale(ax.xaxis, scale, values, formatter)
    else:
        ax.set_yscale(scale, **kwargs)
        _apply_scale(ax.yaxis, scale, values, formatter)


def _to_scaled(values: np.ndarray, scale: str) -> np.ndarray:
    """Coordinates in which the plotted segments are straight, to place a point exactly on a drawn line."""
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled: np.ndarray = np.log10(values)
            return scaled
    return values


def _from_scaled(value: float, scale: str) -> float:
    return float(10**value) if scale == "log" else float(value)


def _out_format(out: Path) -> str:
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in _METADATA:
        raise ValueError(f"chart path {out} must end in .svg, .png or .pdf")
    return fmt


@contextmanager
def _figure(out: Path) -> Iterator[Figure]:
    """A fresh Figure under the module's style; saved to ``out`` on success, always released."""
    out = Path(out)
    fmt = _out_format(out)
    with _LOCK, matplotlib.rc_context():
        matplotlib.rcdefaults()  # ignore any user matplotlibrc/style: the same data always gives the same file
        matplotlib.rcParams.update(_RC)
        fig = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), layout="constrained")
        FigureCanvasAgg(fig)
        try:
            yield fig
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, format=fmt, metadata=_METADATA[fmt])
        finally:
            fig.clear()


def _require(mapping: dict, what: str) -> None:
    if not mapping:
        raise ValueError(f"{what}: nothing to plot (no series given)")


def _check_lengths(series: Mapping[str, Sequence[float]], n: int, axis_name: str, what: str) -> None:
    for name, values in series.items():
        if len(values) != n:
            raise ValueError(f"{what}: series {name!r} has {len(values)} values but there are {n} {axis_name}")


def _note(fig: Figure, text: str) -> None:
    fig.supxlabel(text, fontsize=8.5, color="#555555", x=0.01, ha="left")


# --------------------------------------------------------------------------------------------- charts


def tco_chart(
    months: list[int],
    cumulative: dict[str, list[float]],
    out: Path,
    *,
    title: str,
    estimate: bool,
    highlight: str | None = None,
) -> Path:
    """Cumulative cost (USD) at each month-end, one line per variant.

    Colour = family (the name without "+cache"), dashed = with cache; ``highlight`` (the advisor's pick) is drawn
    thicker and labelled "(recommended)". A single month is drawn as markers.
    """
    _require(cumulative, "tco_chart")
    if not months:
        raise ValueError("tco_chart: no months given")
    _check_lengths(cumulative, len(months), "months", "tco_chart")
    out = Path(out)
    colours = _family_colours(list(cumulative))
    x = np.asarray(months, dtype=float)
    few = len(months) <= 3
    with _figure(out) as fig:
        ax = fig.add_subplot()
        for name, values in cumulative.items():
            fam, cached = _family(name)
            is_pick = highlight is not None and name == highlight
            ax.plot(
                x,
                np.asarray(values, dtype=float),
                label=f"{name} (recommended)" if is_pick else name,
                color=colours[fam],
                linestyle="--" if cached else "-",
                linewidth=3.4 if is_pick else 1.8,
                alpha=1.0 if is_pick or highlight is None else 0.85,
                marker="o" if few else None,
                markersize=7 if is_pick else 5,
                zorder=3 if is_pick else 2,
            )
        all_values = _finite([v for vs in cumulative.values() for v in vs])
        if all_values.size and all_values.min() >= 0:
            ax.set_ylim(bottom=0)
        if len(months) == 1:
            ax.set_xlim(x[0] - 0.5, x[0] + 0.5)
        else:
            ax.set_xlim(x.min(), x.max())
        if len(months) <= 12:
            ax.set_xticks(x)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_usd(v)))
        ax.set_xlabel("Month")
        ax.set_ylabel("Cumulative cost (USD)")
        ax.set_title(_title(title, estimate))
        fig.legend(loc="outside right upper", frameon=False, handlelength=2.6)
        if estimate:
            _note(fig, "Estimates: costs from declared assumptions, not measured usage.")
    return out


def breakeven_chart(
    volumes: list[float],
    totals: dict[str, list[float]],
    out: Path,
    *,
    title: str,
    marker_volume: float | None,
    crossings: list[tuple[str, str, float]],
    estimate: bool,
) -> Path:
    """Total cost over the horizon against queries/day, one line per variant.

    x is logarithmic (symlog when a volume is 0, linear when none is positive); y turns logarithmic when the totals
    span more than 20x. A dotted vertical line marks the workload's volume; each crossing ``(a, b, queries/day)``
    gets a dot on the lines and a label. Crossings outside the plotted volumes are listed in a note instead.
    """
    _require(totals, "breakeven_chart")
    if not volumes:
        raise ValueError("breakeven_chart: no volumes given")
    _check_lengths(totals, len(volumes), "volumes", "breakeven_chart")
    out = Path(out)
    order = np.argsort(np.asarray(volumes, dtype=float), kind="stable")
    x = np.asarray(volumes, dtype=float)[order]
    series = {name: np.asarray(vals, dtype=float)[order] for name, vals in totals.items()}
    colours = _family_colours(list(series))
    all_y = np.concatenate(list(series.values()))
    x_scale, x_kw = _choose_scale(x, ratio=1.0)
    y_scale, y_kw = _choose_scale(all_y, ratio=20.0)
    with _figure(out) as fig:
        ax = fig.add_subplot()
        for name, ys in series.items():
            fam, cached = _family(name)
            ax.plot(
                x,
                ys,
                label=name,
                color=colours[fam],
                linestyle="--" if cached else "-",
                linewidth=1.9,
                marker="o" if len(x) <= 3 else None,
                markersize=5,
                zorder=2,
            )
        _set_scale(ax, "x", x_scale, x_kw, x, format_count)
        _set_scale(ax, "y", y_scale, y_kw, all_y, format_usd)
        if len(x) > 1 and x.min() < x.max():
            ax.set_xlim(x.min(), x.max())
        if y_scale == "linear" and all_y[np.isfinite(all_y)].size and np.nanmin(all_y) >= 0:
            ax.set_ylim(bottom=0)

        if marker_volume is not None and math.isfinite(marker_volume) and (x_scale != "log" or marker_volume > 0):
            ax.axvline(marker_volume, color="#444444", linestyle=":", linewidth=1.6, zorder=1)
            ax.annotate(
                f"your workload\n{format_count(marker_volume)}/day",
                xy=(marker_volume, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -4),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=8.5,
                color="#444444",
            )

        outside: list[str] = []
        sx = _to_scaled(x, x_scale)
        placed = 0
        for a, b, volume in crossings:
            label = f"{a} = {b}\n@ {format_count(volume)}/day"
            if not math.isfinite(volume) or volume < x.min() or volume > x.max() or (x_scale == "log" and volume <= 0):
                outside.append(f"{a} = {b} at {format_count(volume)}/day")
                continue
            y = None
            for name in (a, b):
                if name in series:
                    ys = series[name]
                    ok = np.isfinite(ys) & np.isfinite(sx)
                    if y_scale == "log":
                        ok &= ys > 0
                    if ok.sum() >= 1:
                        sy = _to_scaled(ys[ok], y_scale)
                        vx = float(_to_scaled(np.asarray([volume]), x_scale)[0])
                        y = _from_scaled(float(np.interp(vx, sx[ok], sy)), y_scale)
                        break
            if y is None:
                # Neither variant is plotted: mark the volume on the x axis.
                ax.plot([volume], [0.0], marker="v", color="#333333", transform=ax.get_xaxis_transform(),
                        clip_on=False, zorder=4)
                ax.annotate(label, xy=(volume, 0.0), xycoords=("data", "axes fraction"), xytext=(0, 8),
                            textcoords="offset points", ha="center", va="bottom", fontsize=8)
                placed += 1
                continue
            ax.plot([volume], [y], marker="o", markersize=6.5, color="#222222", markeredgecolor="white",
                    markeredgewidth=1.0, linestyle="none", zorder=6)
            # Cost lines rise to the right, so below-right of a crossing is usually empty: labels go there,
            # staggered so that neighbouring crossings do not stack their labels on one another.
            ax.annotate(
                label,
                xy=(volume, y),
                xytext=(14, -16 - 26 * (placed % 3)),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=8,
                color="#222222",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                arrowprops={"arrowstyle": "-", "color": "#888888", "linewidth": 0.7},
                zorder=5,
            )
            placed += 1

        ax.set_xlabel("Queries per day")
        ax.set_ylabel("Total cost over horizon (USD)")
        ax.set_title(_title(title, estimate))
        fig.legend(loc="outside right upper", frameon=False, handlelength=2.6)
        notes = []
        if outside:
            notes.append("Outside the plotted volumes: " + "; ".join(outside) + ".")
        if estimate:
            notes.append("Estimates: costs from declared assumptions, not measured usage.")
        if notes:
            _note(fig, "\n".join(notes))
    return out


def quality_cost_chart(points: list[QualityPoint], out: Path, *, metric: str, title: str) -> Path:
    """Quality (``metric``, with CI error bars) against annual cost, one labelled point per variant.

    Hollow markers and "(estimate)" for estimated points (the title gets " — estimates" when all are); the
    recommended point is ringed and starred. Cost is logarithmic when it spans more than 20x (symlog if a cost is
    0). Points without a quality value (None/NaN) are listed in a note under the chart.
    """
    if not points:
        raise ValueError("quality_cost_chart: nothing to plot (no points given)")
    out = Path(out)

    def has_quality(p: QualityPoint) -> bool:
        return p.quality is not None and math.isfinite(float(p.quality)) and math.isfinite(float(p.annual_cost))

    shown = [p for p in points if has_quality(p)]
    missing = [p for p in points if not has_quality(p)]
    all_estimate = all(p.estimate for p in points)
    colours = _family_colours([p.name for p in points])
    costs = [float(p.annual_cost) for p in shown]
    x_scale, x_kw = _choose_scale(costs, ratio=20.0)

    with _figure(out) as fig:
        ax = fig.add_subplot()
        # Alternate label offsets by cost rank so neighbouring labels do not sit on top of each other.
        rank = {id(p): i for i, p in enumerate(sorted(shown, key=lambda p: (p.annual_cost, p.name)))}
        for p in shown:
            fam, cached = _family(p.name)
            colour = colours[fam]
            assert p.quality is not None  # has_quality
            q = float(p.quality)
            lo = q - float(p.low) if p.low is not None and math.isfinite(float(p.low)) else 0.0
            hi = float(p.high) - q if p.high is not None and math.isfinite(float(p.high)) else 0.0
            ax.errorbar(
                [p.annual_cost],
                [q],
                yerr=[[max(lo, 0.0)], [max(hi, 0.0)]],
                fmt="none",
                ecolor=colour,
                elinewidth=1.4,
                capsize=4,
                zorder=2,
            )
            ax.plot(
                [p.annual_cost],
                [q],
                marker="s" if cached else "o",
                markersize=9,
                markerfacecolor="none" if p.estimate else colour,
                markeredgecolor=colour,
                markeredgewidth=2.0,
                linestyle="none",
                zorder=3,
            )
            if p.recommended:
                ax.plot([p.annual_cost], [q], marker="o", markersize=22, markerfacecolor="none",
                        markeredgecolor=_HIGHLIGHT, markeredgewidth=2.0, linestyle="none", zorder=4)
            label = p.name
            if p.estimate and not all_estimate:
                label += " (estimate)"
            if p.recommended:
                label = "★ " + label  # the legend explains the ring
            up = rank[id(p)] % 2 == 0
            off = 14 if p.recommended else 10
            ax.annotate(
                label,
                xy=(p.annual_cost, q),
                xytext=(off, off if up else -off),
                textcoords="offset points",
                ha="left",
                va="bottom" if up else "top",
                fontsize=9,
                fontweight="bold" if p.recommended else "normal",
                color=_HIGHLIGHT if p.recommended else "#222222",
                zorder=5,
            )

        if shown:
            _set_scale(ax, "x", x_scale, x_kw, costs, format_usd)
            if x_scale == "linear":
                lo_x, hi_x = min(costs), max(costs)
                pad = (hi_x - lo_x) * 0.15 or max(abs(hi_x) * 0.2, 1.0)
                ax.set_xlim(lo_x - pad, hi_x + pad * 2)  # room on the right for labels
            elif x_scale == "log":
                ax.set_xlim(min(costs) / 1.6, max(costs) * 2.5)
            ax.margins(y=0.18)
        else:
            ax.text(0.5, 0.5, f"No variant has a measured {metric}", transform=ax.transAxes, ha="center",
                    va="center", fontsize=11, color="#555555")
            ax.set_xticks([])
            ax.set_yticks([])

        ax.set_xlabel("Annual cost (USD)")
        ax.set_ylabel(metric)
        ax.set_title(_title(title, all_estimate))

        handles = []
        if any(not p.estimate for p in shown):
            handles.append(Line2D([], [], marker="o", color="#555555", markerfacecolor="#555555", linestyle="none",
                                  markersize=7, label="measured"))
        if any(p.estimate for p in shown):
            handles.append(Line2D([], [], marker="o", color="#555555", markerfacecolor="none", markeredgewidth=1.8,
                                  linestyle="none", markersize=7, label="estimate"))
        if any(p.low is not None or p.high is not None for p in shown):
            handles.append(Line2D([], [], marker="|", color="#555555", linestyle="none", markersize=12,
                                  markeredgewidth=1.4, label="confidence interval"))
        if any(_family(p.name)[1] for p in shown):
            handles.append(Line2D([], [], marker="s", color="#555555", markerfacecolor="#555555",
                                  linestyle="none", markersize=7, label="with cache"))
        if any(p.recommended for p in shown):
            handles.append(Line2D([], [], marker="o", color=_HIGHLIGHT, markerfacecolor="none", markeredgewidth=2,
                                  linestyle="none", markersize=12, label="recommended"))
        if shown:
            fig.legend(handles=handles, loc="outside right upper", frameon=False)
        notes = []
        if missing:
            notes.append(
                f"No {metric} measured: "
                + ", ".join(
                    f"{p.name}{' (estimate)' if p.estimate and not all_estimate else ''} ({format_usd(p.annual_cost)})"
                    for p in missing
                )
                + "."
            )
        if all_estimate:
            notes.append("Estimates: declared numbers, not measured.")
        if notes:
            _note(fig, "\n".join(notes))
    return out
