"""The bench report: one self-contained HTML page for one or more bench results (`BenchResult` records, what a
bench writes as results.json).

Read top to bottom, each task answers "what should we run, and why?" first, then shows the evidence: quality with
confidence intervals, latency, cost per 1,000 answers, the 12-month TCO, the quality-vs-cost frontier, the cache
sweep, the training-data check, how every number was measured, and finally the per-case answers.

Inline CSS and inline SVG only (see adaptlab.charts): no URLs, fonts or external scripts, so the file opens
offline and cannot leak anything. The one inline script only counts the charts that rendered with a size (for a
browser test). Every value from a run is user text and is escaped; a missing (None) or NaN value shows as "—"
— a report of a partial run is still worth reading. The output depends only on the input: two renders are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from adaptlab import charts
from adaptlab.bench.results import BenchResult, Machine
from adaptlab.bench.sections import (
    cache_section,
    cases_section,
    ci_text,
    dash,
    data_check_section,
    duration,
    finetuning_section,
    fmt,
    measurement_section,
    table,
)
from adaptlab.cost.records import AdviceRecord, QualityRecord, RankedRecord
from adaptlab.eval.results import MetricResult, StrategyResult
from adaptlab.numbers import num, usd
from adaptlab.textfiles import write_text_atomic

__all__ = ["render_bench_html", "write_bench_html"]

DAYS_PER_MONTH = 365 / 12
TIER_NAMES: dict[object, str] = {1: "best quality", 2: "significantly worse", 3: "quality not measured"}
QUALITY_MARKERS = (" p = ", "significant", "quality as", "distinguishable", "quality floor", "best ")
FALLBACK_METRICS = ("token_f1", "exact_match", "accuracy")

CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; --accent: #0969da; --good: #1a7f37;
        --bad: #c8102e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0;
       background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 6px; } h2 { font-size: 21px; margin: 0 0 6px; }
h3 { font-size: 17px; margin: 30px 0 8px; padding-top: 10px; border-top: 1px solid var(--line); }
h4 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: var(--muted); margin: 4px 0; } .meta code { color: var(--ink); }
section.task { margin-top: 40px; padding-top: 20px; border-top: 3px solid var(--ink); }
nav.toc { color: var(--muted); margin: 6px 0 0; } nav.toc a { margin-right: 12px; }
a { color: var(--accent); }
.rec { border-left: 6px solid var(--good); background: #f0fff4; padding: 12px 18px; margin: 14px 0;
       border-radius: 0 6px 6px 0; }
.rec .winner { font-size: 20px; font-weight: 700; }
.rec ul { margin: 6px 0; padding-left: 22px; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 10px;
         border: 1px solid var(--line); background: var(--soft); vertical-align: middle; }
.badge.estimate { background: #fff8c5; border-color: #d4a72c; } .badge.measured { background: #dafbe1;
         border-color: #4ac26b; }
.badge.bad { background: #ffebe9; border-color: #ff8182; } .badge.good { background: #dafbe1; border-color: #4ac26b; }
.callout { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 14px; margin: 12px 0; }
.callout ul, .plain { margin: 4px 0; padding-left: 20px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
thead th, tr.head th { background: var(--soft); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.winner td, tr.winner th { background: #f0fff4; }
tr.total td, tr.total th { font-weight: 700; border-top: 2px solid var(--muted); }
.note { color: var(--muted); font-size: 13px; }
.text { white-space: pre-wrap; max-width: 380px; overflow-wrap: anywhere; }
figure { margin: 12px 0 18px; padding: 0; }
svg.chart { display: block; width: 100%; max-width: 860px; height: auto; font-family: inherit; }
figcaption { color: var(--muted); font-size: 13px; max-width: 860px; margin-top: 4px; }
.scroll { max-width: 100%; overflow-x: auto; }
details { margin: 10px 0; } summary { cursor: pointer; font-weight: 600; }
pre.cmd { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
          overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
dl.how dt { font-weight: 600; margin-top: 6px; } dl.how dd { margin: 0 0 0 18px; }
@media print { main { max-width: none; padding: 0; } section.task { break-before: page; }
  figure, table, .rec { break-inside: avoid; } a { color: inherit; text-decoration: none; } }
"""

COUNT_SCRIPT = ("<script>window.addEventListener('load',function(){var n=0;"
                "document.querySelectorAll('svg.chart').forEach(function(s){var r=s.getBoundingClientRect();"
                "if(r.width>0&&r.height>0){n++;}});document.body.dataset.charts=String(n);});</script>")


def render_bench_html(results: Sequence[BenchResult] | BenchResult, *, title: str = "adaptlab bench") -> str:
    """The report page for one or more bench results (what the bench writes as results.json)."""
    tasks = [results] if isinstance(results, BenchResult) else list(results)
    body = [_page_header(tasks, title)]
    if not tasks:
        body.append('<p class="note">No bench results to show.</p>')
    body += [_task(task, i) for i, task in enumerate(tasks, start=1)]
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
            + "\n".join(part for part in body if part)
            + f"\n</main>{COUNT_SCRIPT}</body></html>\n")


def write_bench_html(results: Sequence[BenchResult] | BenchResult, path: str | Path, *,
                     title: str = "adaptlab bench") -> Path:
    """Render and write the page atomically (a failed write never leaves half a file); returns the path."""
    out = Path(path)
    write_text_atomic(out, render_bench_html(results, title=title))
    return out


# ------------------------------------------------------------------------------------------------ page header


def _page_header(tasks: list[BenchResult], title: str) -> str:
    created = sorted(t.created for t in tasks if t.created)
    seconds = [s for s in (num(t.seconds) for t in tasks) if s is not None]
    facts = [f"created {dash(created[0] if created else None)}",
             f"total wall time {duration(sum(seconds)) if seconds else '—'}"]
    parts = [f"<header><h1>{escape(title)}</h1>", f'<p class="meta">{" · ".join(facts)}</p>']
    if tasks:
        parts.append(f'<p class="meta">machine: {_machine(tasks[0].machine)}</p>')
    if len(tasks) > 1:
        links = "".join(f'<a href="#task-{i}">{i}. {_title(t, i)}</a>' for i, t in enumerate(tasks, start=1))
        parts.append(f'<nav class="toc">Tasks: {links}</nav>')
        parts.append(_summary(tasks))
    parts.append("</header>")
    return "\n".join(parts)


def _title(task: BenchResult, index: int) -> str:
    return dash(task.title or f"task {index}")


def _machine(machine: Machine) -> str:
    cores = f"{dash(machine.cores)} cores / {dash(machine.threads)} threads"
    return " · ".join([dash(machine.cpu), cores, f"Python {dash(machine.python)}",
                       f"adaptlab {dash(machine.adaptlab)}"])


def _summary(tasks: list[BenchResult]) -> str:
    rows = []
    for i, task in enumerate(tasks, start=1):
        advice = task.advice
        winner = _winner(advice)
        metric = _metric(task)
        quality = _quality_of(task, winner.name, metric) if winner is not None else None
        kind = ("—" if advice is None else '<span class="badge estimate">estimates</span>' if advice.estimate
                else '<span class="badge measured">measured</span>')
        rows.append([f'<a href="#task-{i}">{_title(task, i)}</a>',
                     f"<strong>{dash(advice.recommendation if advice is not None else None)}</strong>",
                     usd(winner.total_usd if winner is not None else None),
                     f"{escape(metric)}: {ci_text(quality)}" if quality is not None else "—", kind])
    horizons = {_months(t.advice) for t in tasks if t.advice is not None}
    tco_head = f"{horizons.pop()}-month TCO" if len(horizons) == 1 else "TCO over the horizon"
    return "<h2>Summary</h2>" + table(["task", "recommendation", tco_head, "quality", "figures"], rows,
                                       num_cols={2})


# ------------------------------------------------------------------------------------------------ one task


def _task(task: BenchResult, index: int) -> str:
    uid = f"task-{index}"
    advice, strategies = task.advice, task.strategies
    metric = _metric(task)
    best = _winner(advice)
    winner = best.name if best is not None else None
    sections = [
        ("recommendation", "Recommendation", _recommendation(task, advice, metric)),
        ("quality", "Quality per strategy", _quality(task, strategies, advice, metric, uid, winner)),
        ("latency", "Latency and tokens", _latency(strategies, uid, winner)),
        ("cost", "Cost per 1,000 queries", _cost(advice, uid, winner)),
        ("tco", f"{_months(advice)}-month total cost of ownership", _tco(advice, uid, winner)),
        ("frontier", "Quality against cost", _frontier(task, advice, metric, uid, winner)),
        ("cache", "Cache threshold sweep", cache_section(task, strategies, metric, uid)),
        ("finetuning", "Learning curve of fine-tuning", finetuning_section(task.finetuning, uid)),
        ("data", "Training-data check", data_check_section(task.data_check)),
        ("how", "How each number was measured", measurement_section(task, advice)),
    ]
    toc = "".join(f'<a href="#{uid}-{key}">{escape(name)}</a>' for key, name, _ in sections)
    head = [f'<section class="task" id="{uid}">', f"<h2>{index}. {_title(task, index)}</h2>", _task_meta(task),
            f'<nav class="toc">{toc}<a href="#{uid}-cases">Per-case answers</a></nav>']
    warnings = [w for w in task.warnings if w]
    if warnings:
        head.append(f'<p class="callout">{len(warnings)} warning{"s" if len(warnings) != 1 else ""} — listed '
                    f'under <a href="#{uid}-how">How each number was measured</a>.</p>')
    body = [f'<h3 id="{uid}-{key}">{escape(name)}</h3>{html}' for key, name, html in sections]
    body.append(f'<div id="{uid}-cases">{cases_section(strategies, metric)}</div>')
    return "\n".join(head + body + ["</section>"])


def _task_meta(task: BenchResult) -> str:
    models = task.models
    level = num(task.confidence)
    facts = [f"run <code>{dash(task.run_id)}</code>", f"created {dash(task.created)}",
             f"wall time {duration(task.seconds)}",
             f"{dash(task.n_cases)} cases × {dash(task.repeats)} repeat(s)",
             f"seed {dash(task.seed)}",
             f"{level * 100:g}% confidence intervals" if level is not None else "confidence level —"]
    line2 = f"generator <code>{dash(models.generator)}</code> · embedder <code>{dash(models.embedder)}</code>"
    return f'<p class="meta">{" · ".join(facts)}</p><p class="meta">{line2}</p>'


# ------------------------------------------------------------------------------------------------ a. advice


def _recommendation(task: BenchResult, advice: AdviceRecord | None, metric: str) -> str:
    if advice is None:
        return ('<p class="note">No cost analysis in this run, so no recommendation: the quality and latency '
                "below are measured, but nothing was priced.</p>")
    winner = _winner(advice)
    months = _months(advice)
    badge = ('<span class="badge estimate">estimates: declared inputs, not measured</span>' if advice.estimate
             else '<span class="badge measured">priced from this run\'s measurements</span>')
    if winner is None:
        parts = [f'<div class="rec"><div class="winner">No strategy qualifies</div> {badge}']
    else:
        quality = _quality_of(task, winner.name, metric)
        facts = [f"{months}-month TCO {usd(winner.total_usd)}", f"at {_count(advice.queries_per_day)} queries/day"]
        if quality is not None:
            facts.append(f"{escape(metric)} {ci_text(quality)}")
        parts = [f'<div class="rec"><div class="winner">Recommendation: {dash(winner.name)}</div>',
                 f'<p class="meta">{" · ".join(facts)} {badge}</p>', "<strong>Why</strong>",
                 _list(winner.reasons, "no reasons recorded")]
    changing = [r for r in advice.sensitivity if r.changes_winner]
    if changing:
        items = [f"{dash(r.input)}: −50% → {dash(r.minus_50)}, +50% → {dash(r.plus_50)}" for r in changing]
        parts.append("<strong>The pick changes if</strong>" + _list(items, "", escaped=True))
    elif advice.sensitivity:
        parts.append(f'<p class="note">Robust: moving any of the {len(advice.sensitivity)} cost inputs by ±50% '
                     "does not change the pick.</p>")
    parts.append("</div>")
    ranked, excluded = _ranked(advice), _excluded(advice)
    if ranked:
        rows = []
        for e in ranked:
            q = e.quality
            rows.append(([dash(e.rank), f"<strong>{dash(e.name)}</strong>", _tier(e, q),
                          ci_text(q) if q is not None else "—", usd(e.total_usd), _list(e.reasons, "—")],
                         "winner" if winner is not None and e.name == winner.name else ""))
        parts.append("<h4>Ranking</h4>" + table(
            ["rank", "strategy", "quality tier", f"quality ({escape(advice.metric or metric)})",
             f"{months}-month TCO", "reasons"], rows, num_cols={0, 3, 4}))
    if excluded:
        parts.append("<h4>Excluded</h4>" + _list(
            [f"<strong>{dash(e.name)}</strong>: {'; '.join(dash(r) for r in e.excluded) or '—'}" for e in excluded],
            "", escaped=True))
    if advice.notes:
        parts.append("<h4>Notes</h4>" + _list(advice.notes, ""))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ b. quality


def _quality(task: BenchResult, strategies: list[StrategyResult], advice: AdviceRecord | None, metric: str,
             uid: str, winner: str | None) -> str:
    if not strategies:
        return '<p class="note">No strategy was evaluated.</p>'
    rows = []
    for s in strategies:
        stat = s.metric(metric)
        value, low, high = (stat.value, stat.low, stat.high) if stat is not None else (None, None, None)
        rows.append(charts.Interval(s.name, value, low, high, highlight=s.name == winner))
    level = num(task.confidence)
    level_text = f"{level * 100:g}%" if level is not None else "the configured"
    description = _description(strategies, metric)
    caption = (f"<strong>{escape(metric)}</strong>{': ' + escape(description) if description else ''}. Dot: mean "
               f"over {dash(task.n_cases)} cases × {dash(task.repeats)} repeat(s); whiskers: "
               f"{level_text} percentile-bootstrap confidence interval over cases. ★ marks the recommendation.")
    parts = [_figure(charts.quality_chart(rows, uid=f"{uid}-quality-chart", metric=metric), caption)]
    tests = [(e.name, r) for e in _ranked(advice) for r in e.reasons if any(m in r for m in QUALITY_MARKERS)]
    if tests:
        parts.append("<h4>Paired tests on the same cases</h4>" + _list(
            [f"<strong>{dash(name)}</strong>: {dash(reason)}" for name, reason in tests], "", escaped=True))
    names = _metric_names(strategies, metric)
    table_rows = [["decoding"] + [escape(s.decoding) for s in strategies]]  # what constrained each output
    for name in names:
        desc = _description(strategies, name)
        label = f'<span title="{escape(desc)}">{escape(name)}</span>' if desc else escape(name)
        cells = [label + (" ★" if name == metric else "")]
        for s in strategies:
            st = s.metric(name)
            spread = num(st.repeat_spread) if st is not None else None
            notes = [f"n={dash(st.n)}"] if st is not None and st.n != task.n_cases else []
            notes += [f"repeat spread {spread:.3f}"] if spread is not None else []
            cells.append(ci_text(st) + (f'<div class="note">{", ".join(notes)}</div>' if notes else ""))
        table_rows.append(cells)
    heads = ["metric"] + [dash(s.name) for s in strategies]
    parts.append(f'<p class="note">Every metric: value [{level_text} CI] over {dash(task.n_cases)} cases '
                 "unless an n says otherwise; ★ = the metric the recommendation uses; hover a metric for its "
                 "definition.</p>"
                 + table(heads, table_rows, num_cols=set(range(1, len(heads)))))
    split = [s for s in strategies if s.by_origin]
    if split:  # drafted (`cases generate`) and hand-written cases disagreeing is a finding in itself
        origin_rows = [[dash(s.name)] + [f"{fmt(s.by_origin[o].metrics.get(metric))} "
                                         f'<span class="note">(n={s.by_origin[o].n})</span>'
                                         for o in ("synthetic", "hand-written")] for s in split]
        parts.append(f"<h4>{escape(metric)} on synthetic and on hand-written cases</h4>"
                     + table(["strategy", "synthetic", "hand-written"], origin_rows, num_cols={1, 2}))
    return "\n".join(parts)


def _description(strategies: list[StrategyResult], metric: str) -> str:
    """The metric's definition, from the first strategy that states it."""
    return next((st.description for s in strategies if (st := s.metric(metric)) is not None and st.description), "")


# ------------------------------------------------------------------------------------------------ c. latency


def _latency(strategies: list[StrategyResult], uid: str, winner: str | None) -> str:
    if not strategies:
        return '<p class="note">No strategy was evaluated.</p>'
    chart = charts.latency_chart([(s.name, s.timing.latency_ms_p50, s.timing.latency_ms_p95) for s in strategies],
                                 uid=f"{uid}-latency-chart", highlight=winner)
    caption = ("Wall time of one answer on this machine, measured around each call of the strategy over every case "
               "and repeat: median (p50) and 95th percentile. Cached strategies include cache lookups; hits "
               "are much faster than misses. First token: the time to the answer's first streamed piece of text, "
               "what a chat client streaming from `adaptlab serve` waits before text appears.")
    rows = []
    for s in strategies:
        t = s.timing
        prompt, completion = num(t.prompt_tokens_mean), num(t.completion_tokens_mean)
        total = prompt + completion if prompt is not None and completion is not None else None
        hit_text = f"{s.hits}/{len(s.cases)}" if s.cached and s.cases else "—"
        rows.append(([dash(s.name), fmt(t.seconds_per_case, 3), fmt(t.latency_ms_p50, 0),
                      fmt(t.latency_ms_p95, 0), fmt(t.first_token_ms_p50, 0), fmt(t.first_token_ms_p95, 0),
                      fmt(prompt, 1), fmt(completion, 1), fmt(total, 1), hit_text],
                     "winner" if s.name == winner else ""))
    listing = table(["strategy", "s / case", "p50 (ms)", "p95 (ms)", "first token p50 (ms)",
                     "first token p95 (ms)", "prompt tokens", "completion tokens", "tokens / answer",
                     "cache hits in eval"], rows, num_cols=set(range(1, 10)))
    return _figure(chart, caption) + listing


# ------------------------------------------------------------------------------------------------ d. cost


def _cost(advice: AdviceRecord | None, uid: str, winner: str | None) -> str:
    entries = _ranked(advice) + _excluded(advice)
    if advice is None or not entries:
        return '<p class="note">Not priced: this run has no cost analysis.</p>'
    months, qpd = _months(advice), num(advice.queries_per_day)
    bars, rows = [], []
    for e in entries:
        tco = e.tco
        per_answer = num(tco.usd_per_answer)
        per_1k = per_answer * 1000 if per_answer is not None else None
        hit = num(e.hit_rate) if e.cached else None
        text = usd(per_1k) + (f" · {hit:.0%} hits" if hit is not None else "")
        bars.append((e.name, per_1k, text))
        total = num(e.total_usd)
        queries = qpd * DAYS_PER_MONTH * months if qpd else None
        all_in = total / queries * 1000 if total is not None and queries else None
        tokens = f"{fmt(tco.prompt_tokens, 0)} + {fmt(tco.completion_tokens, 0)}"
        rows.append(([dash(e.name), usd(per_1k), tokens,
                      "measured" if e.tokens_measured else "declared (estimate)",
                      (f'{hit:.1%}<div class="note">{dash(e.hit_rate_source or None)}</div>'
                       if hit is not None else "—"),
                      usd(all_in), usd(total)], "winner" if e.name == winner else ""))
    caption = ("Cost of one <em>generated</em> answer × 1,000, from the tokens per answer and the serving price "
               "(see provenance below). A cache hit generates nothing, so a cached variant's cost per query is "
               "lower by its hit rate (shown after the bar); the table's all-in column spreads the whole "
               f"{months}-month TCO (hosting, training, cache, vector DB) over every query.")
    chart = charts.bar_chart(bars, uid=f"{uid}-cost-chart", kind="cost", title="USD per 1,000 generated answers",
                             axis="USD per 1,000 generated answers", fmt=lambda v: usd(v), highlight=winner)
    listing = table(["strategy", "$ / 1k generated answers", "tokens priced (in + out)", "token counts",
                     "cache hit rate", "all-in $ / 1k queries", f"{months}-month TCO"], rows, num_cols={1, 2, 4, 5, 6})
    return _figure(chart, caption) + listing


# ------------------------------------------------------------------------------------------------ e. tco


def _tco(advice: AdviceRecord | None, uid: str, winner: str | None) -> str:
    entries = _ranked(advice) + _excluded(advice)
    if advice is None or not entries:
        return '<p class="note">Not priced: this run has no cost analysis.</p>'
    months = _months(advice)
    tcos = [(e.name, e.tco) for e in entries]
    chart = charts.line_chart([(name, t.cumulative) for name, t in tcos], uid=f"{uid}-tco-chart",
                              kind="tco", title=f"Cumulative cost over {months} months", x_label="month",
                              y_label="cumulative USD", fmt=lambda v: "$" + charts.short(v), label_fmt=usd,
                              highlight=winner)
    caption = (f"Cumulative total cost of ownership by month at {_count(advice.queries_per_day)} queries/day: "
               "inference, one-off and repeated training, embedding, vector DB and cache hosting, as itemised "
               "below. Dashed lines are cached variants.")
    line_names: dict[str, None] = {}
    for _, t in tcos:
        line_names.update(dict.fromkeys(t.lines))
    rows: list[list[str] | tuple[list[str], str]] = []
    for line in line_names:
        cells = [escape(line.replace("_", " "))]
        for _, t in tcos:
            item = t.lines.get(line)
            if item is None:
                cells.append("—")
                continue
            note = f'<div class="note">{dash(item.note)}</div>' if item.note else ""
            cells.append(usd(item.total) + note)
        rows.append(cells)
    rows.append(([f"total over {months} months"] + [usd(t.total) for _, t in tcos], "total"))
    heads = ["cost line"] + [escape(name) for name, _ in tcos]
    parts = [_figure(chart, caption), table(heads, rows, num_cols=set(range(1, len(heads))))]
    notes = [f"<strong>{escape(name)}</strong>: {dash(t.prefix_cache_note)}" for name, t in tcos
             if t.prefix_cache_note]
    if notes:
        parts.append(_list(notes, "", escaped=True))
    if advice.break_even:
        parts.append("<h4>Break-even volumes</h4>" + table(
            ["between", "and", "break-even queries/day", "cheaper below it"],
            [[dash(b.a), dash(b.b), _count(b.queries_per_day), dash(b.cheaper_below)] for b in advice.break_even],
            num_cols={2}))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ f. frontier


def _frontier(task: BenchResult, advice: AdviceRecord | None, metric: str, uid: str, winner: str | None) -> str:
    entries = _ranked(advice) + _excluded(advice)
    if not entries:
        return '<p class="note">Not priced: this run has no cost analysis, so there is no frontier.</p>'
    points = []
    for e in entries:
        q = _quality_of(task, e.name, metric)
        value, low, high = (num(q.value), num(q.low), num(q.high)) if q is not None else (None, None, None)
        points.append(charts.Point(e.name, num(e.total_usd), value, low, high,
                                   estimate=isinstance(q, QualityRecord) and not q.measured,
                                   highlight=e.name == winner))
    months = _months(advice)
    chart = charts.frontier_chart(points, uid=f"{uid}-frontier-chart", metric=metric, months=months)
    best = charts.pareto(points)
    missing = [p.name for p in points if p.quality is None or p.cost is None]
    caption = (f"Each dot is a strategy: {escape(metric)} (with its CI) against its {months}-month TCO; the x axis "
               "is logarithmic when the costs span more than 20×. The dashed line joins the frontier: strategies "
               "no other strategy beats on both cost and quality. Hollow dots are declared estimates.")
    text = (f'<p>Frontier, cheapest first: {" → ".join(f"<strong>{escape(p.name)}</strong>" for p in best)}.</p>'
            if best else "")
    if missing:
        text += f'<p class="note">Not on the chart (quality or cost missing): {", ".join(map(escape, missing))}.</p>'
    return _figure(chart, caption) + text


# ------------------------------------------------------------------------------------------------ lookups


def _ranked(advice: AdviceRecord | None) -> list[RankedRecord]:
    entries = [e for e in advice.strategies if e.rank is not None] if advice is not None else []
    return sorted(entries, key=lambda e: e.rank or 0)


def _excluded(advice: AdviceRecord | None) -> list[RankedRecord]:
    return [e for e in advice.strategies if e.rank is None] if advice is not None else []


def _tier(entry: RankedRecord, quality: QualityRecord | None) -> str:
    """The advisor's quality tier in words; "quality not measured" whenever the entry has no quality (with no
    quality anywhere, the advisor puts every strategy in tier 1 and ranks by cost alone)."""
    if quality is None or num(quality.value) is None:
        return TIER_NAMES[3]
    return dash(TIER_NAMES.get(entry.tier, entry.tier))


def _winner(advice: AdviceRecord | None) -> RankedRecord | None:
    name = advice.recommendation if advice is not None else None
    return next((e for e in _ranked(advice) if name is not None and e.name == name), None)


def _months(advice: AdviceRecord | None) -> int:
    months = num(advice.months) if advice is not None else None
    return int(months) if months else 12


def _metric(task: BenchResult) -> str:
    """The quality metric: the run's choice, else the advisor's, else a usual one the strategies have."""
    chosen = task.quality_metric or (task.advice.metric if task.advice is not None else None)
    if chosen:
        return chosen
    names = _metric_names(task.strategies, None)
    return next((m for m in FALLBACK_METRICS if m in names), names[0] if names else "quality")


def _metric_names(strategies: list[StrategyResult], first: str | None) -> list[str]:
    names: dict[str, None] = dict.fromkeys([first] if first else [])
    for s in strategies:
        names.update(dict.fromkeys(s.metrics))
    return list(names)


def _quality_of(task: BenchResult, name: str, metric: str) -> MetricResult | QualityRecord | None:
    """A strategy's quality: measured by this bench when it has the metric, else what the advisor used (a
    `QualityRecord`, which says whether it was measured or declared)."""
    for s in task.strategies:
        stat = s.metric(metric)
        if s.name == name and stat is not None and num(stat.value) is not None:
            return stat
    entry = task.advice.ranked(name) if task.advice is not None else None
    quality = entry.quality if entry is not None else None
    return quality if quality is not None and num(quality.value) is not None else None


# ------------------------------------------------------------------------------------------------ html bits


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _list(items: Sequence[str], empty: str, *, escaped: bool = False) -> str:
    if not items:
        return f'<p class="note">{escape(empty)}</p>' if empty else ""
    return '<ul class="plain">' + "".join(f"<li>{i if escaped else dash(i)}</li>" for i in items) + "</ul>"


def _count(value: float | None) -> str:
    v = num(value)
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 10 else f"{v:.3g}"
