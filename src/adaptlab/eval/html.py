"""One eval run as a single self-contained HTML page (results.json → report.html).

Inline CSS and SVG only — no scripts, fonts or URLs — so the file opens offline, can be mailed or attached to a
ticket, and cannot leak anything by loading remote content. Every value from the run (questions, answers,
strategy names, params) is user-controlled text and is escaped. The page reads the typed run record
(`adaptlab.eval.results.EvalRunResult`); values that were not measured (None) render as "n/a": a report of a
partial or failed run is still worth looking at.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any, Literal, TypeGuard

from adaptlab.eval.harness import CaseResult
from adaptlab.eval.results import EvalRunResult, MetricResult, PairedComparison, StrategyResult, Timing

MAX_CASES_SHOWN = 500
BAR_WIDTH = 160  # px of the 0–1 scale in a CI bar
BAR_HEIGHT = 14

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 24px;
       max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: #57606a; } .meta code { color: #1f2328; }
.warnings { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 14px; margin: 14px 0; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th[title] { cursor: help; text-decoration: underline dotted; }
tr.significant td { background: #dafbe1; } tr.regressed td { background: #ffebe9; color: #82071e; }
.ci { display: block; margin-top: 2px; }
.text { white-space: pre-wrap; max-width: 420px; overflow-wrap: anywhere; }
.note { color: #57606a; font-style: italic; }
details { margin: 8px 0; } summary { cursor: pointer; font-weight: 600; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
"""


def render_html(result: EvalRunResult) -> str:
    """The report page for one eval run's record (what results.json holds)."""
    strategies = result.strategies
    run_id = result.run_id or "eval run"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>adaptlab eval {escape(run_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        _header(result),
        _warnings(result.warnings),
    ]
    if not strategies:
        parts.append('<p class="note">No strategies in this run.</p>')
    else:
        parts += [_metrics_table(strategies, result.confidence), _origin_table(strategies), _params(strategies),
                  _timing(strategies)]
    if result.comparison is not None:
        parts.append(_comparison(result.comparison.a, result.comparison.b, result.comparison.metrics))
    if result.regression is not None:
        parts.append(_regression(result.regression.baseline_run_id, result.regression.metrics))
    if strategies:
        parts.append("<h2>Per-case results</h2>")
        parts += [_cases(strategy) for strategy in strategies]
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part) + "\n"


# ----------------------------------------------------------------------------------------------- sections


def _header(result: EvalRunResult) -> str:
    sha = result.cases_sha256
    facts = [
        ("date", _text(result.created)),
        ("cases", f"<code>{_text(result.cases_path)}</code>"
                  + (f' <span title="sha256 {escape(sha)}">(sha256 {escape(sha[:12])}…)</span>' if sha else "")),
        ("cases scored", _text(result.n_cases)),
        ("repeats", _text(result.repeats)),
        ("seed", _text(result.seed)),
    ]
    meta = " · ".join(f"{name}: {value}" for name, value in facts)
    return (f"<h1>Eval run <code>{_text(result.run_id)}</code></h1>"
            f'<p class="meta">{meta}</p>')


def _warnings(warnings: list[str]) -> str:
    if not warnings:
        return ""
    lines = "".join(f"<li>{_text(w)}</li>" for w in warnings)
    return f'<div class="warnings"><strong>Warnings</strong><ul>{lines}</ul></div>'


def _metrics_table(strategies: list[StrategyResult], confidence: float) -> str:
    names = _metric_names(strategies)
    level = f"{confidence * 100:g}% CI" if _finite(confidence) else "CI"
    if not names:
        return '<h2>Metrics</h2><p class="note">No metrics were computed.</p>'
    head = "".join(f"<th>{_text(s.name)}</th>" for s in strategies)
    rows = []
    for name in names:
        stats = [s.metric(name) for s in strategies]  # None: this strategy did not compute the metric
        description = next((st.description for st in stats if st is not None and st.description), "")
        title = f' title="{escape(description)}"' if description else ""
        bars = _unit_interval(stats)
        cells = []
        for st in stats:
            value, low, high = (None, None, None) if st is None else (st.value, st.low, st.high)
            cell = f"{_fmt(value)} {_interval(low, high)}".strip()
            if st is not None:
                cell += f' <span class="note">n={_text(st.n)}</span>'
            if bars:
                cell += _ci_bar(value, low, high)
            cells.append(f'<td class="num">{cell}</td>')
        rows.append(f"<tr><th{title}>{escape(name)}</th>{''.join(cells)}</tr>")
    return (f"<h2>Metrics</h2><p class=\"meta\">value [{escape(level)}]; hover a metric for its definition.</p>"
            f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>")


def _origin_table(strategies: list[StrategyResult]) -> str:
    """Quality on drafted (`cases generate`) and on hand-written cases apart: when they disagree, the synthetic
    cases measure something else than the team's own."""
    split = [s for s in strategies if s.by_origin]
    if not split:
        return ""
    names = sorted({m for s in split for scores in s.by_origin.values() for m in scores.metrics})
    head = "".join(f"<th>{_text(s.name)}: synthetic (n={s.by_origin['synthetic'].n})</th>"
                   f"<th>{_text(s.name)}: hand-written (n={s.by_origin['hand-written'].n})</th>" for s in split)
    rows = "".join(
        f"<tr><th>{escape(name)}</th>" + "".join(
            f'<td class="num">{_fmt(s.by_origin[origin].metrics.get(name))}</td>'
            for s in split for origin in ("synthetic", "hand-written")) + "</tr>"
        for name in names)
    return ("<h2>Synthetic and hand-written cases</h2><p class='meta'>Mean of each metric on the cases drafted by "
            "<code>adaptlab cases generate</code> and on the others.</p>"
            f"<table><tr><th>metric</th>{head}</tr>{rows}</table>")


def _params(strategies: list[StrategyResult]) -> str:
    rows = []
    for s in strategies:
        shown = ", ".join(f"{escape(str(k))}={_text(_compact(v))}" for k, v in s.params.items())
        rows.append(f"<tr><th>{_text(s.name)}</th><td><code>{_text(s.run_id)}</code></td>"
                    f"<td><code>{shown or 'none'}</code></td></tr>")
    return f"<h2>Strategies</h2><table><tr><th>strategy</th><th>run</th><th>params</th></tr>{''.join(rows)}</table>"


TIMING_COLUMNS = ("s / case", "latency p50 (ms)", "latency p95 (ms)", "first token p50 (ms)",
                  "first token p95 (ms)", "prompt tokens (mean)", "completion tokens (mean)")


def _timing_cells(t: Timing) -> list[tuple[float | None, int]]:
    """The timing row's values with their decimals, in TIMING_COLUMNS' order."""
    return [(t.seconds_per_case, 3), (t.latency_ms_p50, 1), (t.latency_ms_p95, 1), (t.first_token_ms_p50, 1),
            (t.first_token_ms_p95, 1), (t.prompt_tokens_mean, 1), (t.completion_tokens_mean, 1)]


def _timing(strategies: list[StrategyResult]) -> str:
    head = "".join(f"<th>{label}</th>" for label in TIMING_COLUMNS)
    rows = []
    for s in strategies:
        cells = "".join(f'<td class="num">{_fmt(value, digits)}</td>' for value, digits in _timing_cells(s.timing))
        rows.append(f"<tr><th>{_text(s.name)}</th>{cells}</tr>")
    return f"<h2>Timing</h2><table><tr><th>strategy</th>{head}</tr>{''.join(rows)}</table>"


def _comparison(a_name: str, b_name: str, metrics: dict[str, PairedComparison]) -> str:
    a, b = _text(a_name), _text(b_name)
    table = _diff_table(metrics, a, b, flag="significant")
    return (f"<h2>Comparison: {b} − {a}</h2>"
            f'<p class="meta">Paired difference (b − a) with its CI; highlighted rows are significant.</p>{table}')


def _regression(baseline_run_id: str, metrics: dict[str, PairedComparison]) -> str:
    table = _diff_table(metrics, "baseline", "this run", flag="regressed")
    return (f"<h2>Regression check against <code>{_text(baseline_run_id)}</code></h2>"
            f'<p class="meta">Red rows got significantly worse than the baseline.</p>{table}')


def _diff_table(metrics: dict[str, PairedComparison], a_label: str, b_label: str, *,
                flag: Literal["significant", "regressed"]) -> str:
    if not metrics:
        return '<p class="note">No metrics to compare.</p>'
    rows = []
    for name, m in metrics.items():
        marked = m.significant if flag == "significant" else m.regressed
        row_class = f' class="{flag}"' if marked else ""
        rows.append(
            f"<tr{row_class}><th>{escape(name)}</th><td class=\"num\">{_fmt(m.a)}</td>"
            f"<td class=\"num\">{_fmt(m.b)}</td>"
            f"<td class=\"num\">{_fmt(m.diff, signed=True)} {_interval(m.low, m.high, True)}</td>"
            f"<td class=\"num\">{_p_value(m.p_value)}</td><td class=\"num\">{_text(m.n)}</td>"
            f"<td>{_text(m.test)}</td><td>{'yes' if marked else 'no'}</td></tr>"
        )
    return (f"<table><tr><th>metric</th><th>{a_label}</th><th>{b_label}</th><th>diff [CI]</th><th>p</th>"
            f"<th>n</th><th>test</th><th>{escape(flag)}</th></tr>{''.join(rows)}</table>")


def _cases(strategy: StrategyResult) -> str:
    cases = strategy.cases
    name = _text(strategy.name)
    if not cases:
        return f'<details><summary>{name}: no per-case results</summary></details>'
    shown = cases[:MAX_CASES_SHOWN]
    note = (f'<p class="note">Showing the first {MAX_CASES_SHOWN} of {len(cases)} case results; '
            "results.json has all of them.</p>") if len(cases) > MAX_CASES_SHOWN else ""
    rows = [_case_row(c) for c in shown]
    return (f"<details><summary>{name}: {len(cases)} case results</summary>{note}"
            "<table><tr><th>case</th><th>repeat</th><th>question</th><th>expected</th><th>answer</th>"
            f"<th>scores</th><th>latency (ms)</th><th>tokens in / out</th></tr>{''.join(rows)}</table></details>")


def _case_row(c: CaseResult) -> str:
    score_text = "<br>".join(f"{escape(k)}: {_fmt(v)}" for k, v in c.scores.items())
    refused = ' <span class="note">(refused)</span>' if c.refused else ""
    return (
        f"<tr><td><code>{_text(c.case_id)}</code></td><td class=\"num\">{_text(c.repeat)}</td>"
        f"<td class=\"text\">{_text(c.question)}</td><td class=\"text\">{_text(c.expected)}</td>"
        f"<td class=\"text\">{_text(c.answer)}{refused}</td><td class=\"num\">{score_text}</td>"
        f"<td class=\"num\">{_fmt(c.latency_ms, 0)}</td>"
        f"<td class=\"num\">{_text(c.prompt_tokens)} / {_text(c.completion_tokens)}</td></tr>"
    )


# ------------------------------------------------------------------------------------------------ helpers


def _metric_names(strategies: list[StrategyResult]) -> list[str]:
    """Metric names in first-seen order across strategies (a metric one strategy lacks shows n/a there)."""
    names: dict[str, None] = {}
    for s in strategies:
        names.update(dict.fromkeys(s.metrics))
    return list(names)


def _unit_interval(stats: list[MetricResult | None]) -> bool:
    """Whether a metric's numbers all lie in [0, 1], so a bar on a fixed 0–1 scale is meaningful."""
    values = [v for st in stats if st is not None for v in (st.value, st.low, st.high)]
    numbers = [v for v in values if _finite(v)]
    return bool(numbers) and all(0.0 <= v <= 1.0 for v in numbers)


def _ci_bar(value: float | None, low: float | None, high: float | None) -> str:
    """A 0–1 axis with the CI as a whisker and the value as a dot; empty axis when the value is missing."""
    w, h, mid = BAR_WIDTH, BAR_HEIGHT, BAR_HEIGHT / 2

    def x(v: float) -> float:
        return round(min(max(v, 0.0), 1.0) * (w - 8) + 4, 1)  # 4 px margin so the dot at 0 or 1 is whole

    shapes = [f'<line x1="4" y1="{mid}" x2="{w - 4}" y2="{mid}" stroke="#d0d7de" stroke-width="1"/>']
    shapes += [f'<line x1="{x(t)}" y1="{mid - 3}" x2="{x(t)}" y2="{mid + 3}" stroke="#d0d7de"/>' for t in (0, 0.5, 1)]
    if _finite(low) and _finite(high):
        shapes.append(f'<line x1="{x(low)}" y1="{mid}" x2="{x(high)}" y2="{mid}" stroke="#0969da" stroke-width="2"/>')
        shapes += [f'<line x1="{x(t)}" y1="{mid - 4}" x2="{x(t)}" y2="{mid + 4}" stroke="#0969da" stroke-width="2"/>'
                   for t in (low, high)]
    if _finite(value):
        shapes.append(f'<circle cx="{x(value)}" cy="{mid}" r="3.5" fill="#0969da"/>')
    label = f"{_fmt(value)} {_interval(low, high)}".strip()
    return (f'<svg class="ci" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
            f"{''.join(shapes)}</svg>")


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if _finite(value):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return escape(str(value))  # NaN, inf: shown as they are rather than hidden


def _interval(low: float | None, high: float | None, signed: bool = False) -> str:
    if low is None and high is None:
        return ""
    return f"[{_fmt(low, signed=signed)}, {_fmt(high, signed=signed)}]"


def _p_value(p: float | None) -> str:
    if _finite(p) and p < 0.001:
        return "&lt;0.001"
    return _fmt(p)


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _text(value: str | int | None) -> str:
    """User text, escaped; None as n/a."""
    return "n/a" if value is None else escape(str(value))
