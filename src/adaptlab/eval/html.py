"""One eval run as a single self-contained HTML page (results.json → report.html).

Inline CSS and SVG only — no scripts, fonts or URLs — so the file opens offline, can be mailed or attached to a
ticket, and cannot leak anything by loading remote content. Every value from the run (questions, answers,
strategy names, params) is user-controlled text and is escaped. Missing keys and None values render as "n/a"
instead of failing: a report of a partial or failed run is still worth looking at.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any, TypeGuard

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


def render_html(results: dict[str, Any]) -> str:
    """The report page for one run's results dict (the shape results.json holds)."""
    strategies = [s for s in (results.get("strategies") or []) if isinstance(s, dict)]
    run_id = str(results.get("run_id") or "eval run")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>adaptlab eval {escape(run_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        _header(results),
        _warnings(results.get("warnings")),
    ]
    if not strategies:
        parts.append('<p class="note">No strategies in this run.</p>')
    else:
        parts += [_metrics_table(strategies, results.get("confidence")), _params(strategies), _timing(strategies)]
    parts.append(_comparison(results.get("comparison")))
    parts.append(_regression(results.get("regression")))
    if strategies:
        parts.append("<h2>Per-case results</h2>")
        parts += [_cases(strategy) for strategy in strategies]
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part) + "\n"


# ----------------------------------------------------------------------------------------------- sections


def _header(results: dict[str, Any]) -> str:
    sha = str(results.get("cases_sha256") or "")
    facts = [
        ("date", _text(results.get("created"))),
        ("cases", f"<code>{_text(results.get('cases_path'))}</code>"
                  + (f' <span title="sha256 {escape(sha)}">(sha256 {escape(sha[:12])}…)</span>' if sha else "")),
        ("cases scored", _text(results.get("n_cases"))),
        ("repeats", _text(results.get("repeats"))),
        ("seed", _text(results.get("seed"))),
    ]
    meta = " · ".join(f"{name}: {value}" for name, value in facts)
    return (f"<h1>Eval run <code>{_text(results.get('run_id'))}</code></h1>"
            f'<p class="meta">{meta}</p>')


def _warnings(warnings: Any) -> str:
    if not warnings:
        return ""
    items = warnings if isinstance(warnings, list) else [warnings]
    lines = "".join(f"<li>{_text(w)}</li>" for w in items)
    return f'<div class="warnings"><strong>Warnings</strong><ul>{lines}</ul></div>'


def _metrics_table(strategies: list[dict[str, Any]], confidence: Any) -> str:
    names = _metric_names(strategies)
    level = f"{confidence * 100:g}% CI" if _finite(confidence) else "CI"
    if not names:
        return '<h2>Metrics</h2><p class="note">No metrics were computed.</p>'
    head = "".join(f"<th>{_text(s.get('name'))}</th>" for s in strategies)
    rows = []
    for name in names:
        stats = [(s.get("metrics") or {}).get(name) or {} for s in strategies]
        description = next((str(st["description"]) for st in stats if st.get("description")), "")
        title = f' title="{escape(description)}"' if description else ""
        bars = _unit_interval(stats)
        cells = []
        for st in stats:
            cell = f"{_fmt(st.get('value'))} {_interval(st.get('low'), st.get('high'))}".strip()
            if st.get("n") is not None:
                cell += f' <span class="note">n={_text(st.get("n"))}</span>'
            if bars:
                cell += _ci_bar(st.get("value"), st.get("low"), st.get("high"))
            cells.append(f'<td class="num">{cell}</td>')
        rows.append(f"<tr><th{title}>{escape(name)}</th>{''.join(cells)}</tr>")
    return (f"<h2>Metrics</h2><p class=\"meta\">value [{escape(level)}]; hover a metric for its definition.</p>"
            f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>")


def _params(strategies: list[dict[str, Any]]) -> str:
    rows = []
    for s in strategies:
        params = s.get("params") or {}
        shown = ", ".join(f"{escape(str(k))}={_text(_compact(v))}" for k, v in params.items()) if isinstance(
            params, dict) else _text(_compact(params))
        rows.append(f"<tr><th>{_text(s.get('name'))}</th><td><code>{_text(s.get('run_id'))}</code></td>"
                    f"<td><code>{shown or 'none'}</code></td></tr>")
    return f"<h2>Strategies</h2><table><tr><th>strategy</th><th>run</th><th>params</th></tr>{''.join(rows)}</table>"


def _timing(strategies: list[dict[str, Any]]) -> str:
    columns = [("seconds_per_case", "s / case"), ("latency_ms_p50", "latency p50 (ms)"),
               ("latency_ms_p95", "latency p95 (ms)"), ("prompt_tokens_mean", "prompt tokens (mean)"),
               ("completion_tokens_mean", "completion tokens (mean)")]
    head = "".join(f"<th>{label}</th>" for _, label in columns)
    rows = []
    for s in strategies:
        timing = s.get("timing") or {}
        cells = "".join(f'<td class="num">{_fmt(timing.get(key), 3 if key == "seconds_per_case" else 1)}</td>'
                        for key, _ in columns)
        rows.append(f"<tr><th>{_text(s.get('name'))}</th>{cells}</tr>")
    return f"<h2>Timing</h2><table><tr><th>strategy</th>{head}</tr>{''.join(rows)}</table>"


def _comparison(comparison: Any) -> str:
    if not isinstance(comparison, dict):
        return ""
    a, b = _text(comparison.get("a")), _text(comparison.get("b"))
    table = _diff_table(comparison.get("metrics"), a, b, flag="significant")
    return (f"<h2>Comparison: {b} − {a}</h2>"
            f'<p class="meta">Paired difference (b − a) with its CI; highlighted rows are significant.</p>{table}')


def _regression(regression: Any) -> str:
    if not isinstance(regression, dict):
        return ""
    table = _diff_table(regression.get("metrics"), "baseline", "this run", flag="regressed")
    return (f"<h2>Regression check against <code>{_text(regression.get('baseline_run_id'))}</code></h2>"
            f'<p class="meta">Red rows got significantly worse than the baseline.</p>{table}')


def _diff_table(metrics: Any, a_label: str, b_label: str, *, flag: str) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return '<p class="note">No metrics to compare.</p>'
    rows = []
    for name, m in metrics.items():
        m = m if isinstance(m, dict) else {}
        marked = bool(m.get(flag))
        row_class = f' class="{flag}"' if marked else ""
        rows.append(
            f"<tr{row_class}><th>{escape(str(name))}</th><td class=\"num\">{_fmt(m.get('a'))}</td>"
            f"<td class=\"num\">{_fmt(m.get('b'))}</td>"
            f"<td class=\"num\">{_fmt(m.get('diff'), signed=True)} {_interval(m.get('low'), m.get('high'), True)}</td>"
            f"<td class=\"num\">{_p_value(m.get('p_value'))}</td><td class=\"num\">{_text(m.get('n'))}</td>"
            f"<td>{_text(m.get('test'))}</td><td>{'yes' if marked else 'no'}</td></tr>"
        )
    return (f"<table><tr><th>metric</th><th>{a_label}</th><th>{b_label}</th><th>diff [CI]</th><th>p</th>"
            f"<th>n</th><th>test</th><th>{escape(flag)}</th></tr>{''.join(rows)}</table>")


def _cases(strategy: dict[str, Any]) -> str:
    cases = [c for c in (strategy.get("cases") or []) if isinstance(c, dict)]
    name = _text(strategy.get("name"))
    if not cases:
        return f'<details><summary>{name}: no per-case results</summary></details>'
    shown = cases[:MAX_CASES_SHOWN]
    note = (f'<p class="note">Showing the first {MAX_CASES_SHOWN} of {len(cases)} case results; '
            "results.json has all of them.</p>") if len(cases) > MAX_CASES_SHOWN else ""
    rows = []
    for c in shown:
        scores = c.get("scores") or {}
        score_text = "<br>".join(f"{escape(str(k))}: {_fmt(v)}" for k, v in scores.items()) if isinstance(
            scores, dict) else _text(scores)
        refused = ' <span class="note">(refused)</span>' if c.get("refused") else ""
        rows.append(
            f"<tr><td><code>{_text(c.get('case_id'))}</code></td><td class=\"num\">{_text(c.get('repeat'))}</td>"
            f"<td class=\"text\">{_text(c.get('question'))}</td><td class=\"text\">{_text(c.get('expected'))}</td>"
            f"<td class=\"text\">{_text(c.get('answer'))}{refused}</td><td class=\"num\">{score_text}</td>"
            f"<td class=\"num\">{_fmt(c.get('latency_ms'), 0)}</td>"
            f"<td class=\"num\">{_text(c.get('prompt_tokens'))} / {_text(c.get('completion_tokens'))}</td></tr>"
        )
    return (f"<details><summary>{name}: {len(cases)} case results</summary>{note}"
            "<table><tr><th>case</th><th>repeat</th><th>question</th><th>expected</th><th>answer</th>"
            f"<th>scores</th><th>latency (ms)</th><th>tokens in / out</th></tr>{''.join(rows)}</table></details>")


# ------------------------------------------------------------------------------------------------ helpers


def _metric_names(strategies: list[dict[str, Any]]) -> list[str]:
    """Metric names in first-seen order across strategies (a metric one strategy lacks shows n/a there)."""
    names: dict[str, None] = {}
    for s in strategies:
        metrics = s.get("metrics")
        if isinstance(metrics, dict):
            names.update(dict.fromkeys(str(k) for k in metrics))
    return list(names)


def _unit_interval(stats: list[dict[str, Any]]) -> bool:
    """Whether a metric's numbers all lie in [0, 1], so a bar on a fixed 0–1 scale is meaningful."""
    values = [st.get(key) for st in stats for key in ("value", "low", "high")]
    numbers = [v for v in values if _finite(v)]
    return bool(numbers) and all(0.0 <= v <= 1.0 for v in numbers)


def _ci_bar(value: Any, low: Any, high: Any) -> str:
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


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if _finite(value):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return escape(str(value))  # NaN, inf, bools, strings: shown as they are rather than hidden


def _interval(low: Any, high: Any, signed: bool = False) -> str:
    if low is None and high is None:
        return ""
    return f"[{_fmt(low, signed=signed)}, {_fmt(high, signed=signed)}]"


def _p_value(p: Any) -> str:
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


def _text(value: Any) -> str:
    """User text, escaped; None as n/a."""
    return "n/a" if value is None else escape(str(value))
