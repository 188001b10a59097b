"""The later sections of a bench report task (cache sweep, data check, measurement, per-case answers) and the
small HTML helpers the page shares. Every value is escaped; missing, None and NaN values show as "—"."""

from __future__ import annotations

from html import escape
from typing import Any

from adaptlab.bench import charts
from adaptlab.bench.charts import num

MISSING = "—"
MAX_CASES = 50  # per strategy in the per-case table
MAX_FINDINGS = 100
SPLIT_EXTRA = ("latency_ms",)  # shown in the cache split beside the quality metric


# ------------------------------------------------------------------------------------------------ helpers


def dash(value: Any) -> str:
    """User text, escaped; None (and NaN) as "—"."""
    if value is None or (isinstance(value, float) and num(value) is None):
        return MISSING
    return escape(str(value))


def fmt(value: Any, digits: int = 3) -> str:
    """A number with `digits` decimals (thousands separated); "—" when missing or not a number."""
    v = num(value)
    if v is None:
        return MISSING if value is None or isinstance(value, float) else escape(str(value))
    return f"{v:,.{digits}f}"


def ci_text(stat: dict[str, Any] | None, digits: int | None = None) -> str:
    """"0.412 [0.350, 0.470]"; the interval left out when it is missing. Digits: 3 for values below 10, fewer
    for larger ones (latencies, token counts) unless given."""
    if not isinstance(stat, dict) or num(stat.get("value")) is None:
        return MISSING
    value = float(stat["value"])
    if digits is None:
        digits = 3 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    low, high = num(stat.get("low")), num(stat.get("high"))
    interval = f" [{low:,.{digits}f}, {high:,.{digits}f}]" if low is not None and high is not None else ""
    return f"{value:,.{digits}f}{interval}"


def rate_text(rate: dict[str, Any] | None) -> str:
    """"12.5% [3.4%, 36.0%]" for a {value, low, high} rate."""
    if not isinstance(rate, dict) or num(rate.get("value")) is None:
        return MISSING
    low, high = num(rate.get("low")), num(rate.get("high"))
    interval = f" [{low:.1%}, {high:.1%}]" if low is not None and high is not None else ""
    return f"{rate['value']:.1%}{interval}"


def duration(seconds: Any) -> str:
    """4.2 s, 3 min 05 s, 1 h 02 min."""
    s = num(seconds)
    if s is None:
        return MISSING
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def table(heads: list[str], rows: list[Any], *, num_cols: set[int] | frozenset[int] = frozenset()) -> str:
    """A table; heads and cells are HTML already. A row is a list of cells or (cells, row class)."""
    head = "".join(f'<th{" class=num" if i in num_cols else ""}>{h}</th>' for i, h in enumerate(heads))
    body = []
    for row in rows:
        cells, cls = row if isinstance(row, tuple) else (row, "")
        tds = "".join(f'<td{" class=num" if i in num_cols else ""}>{c}</td>' for i, c in enumerate(cells))
        body.append(f'<tr{f" class={cls}" if cls else ""}>{tds}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def items(values: Any) -> str:
    values = [v for v in values if v] if isinstance(values, list) else []
    return '<ul class="plain">' + "".join(f"<li>{dash(v)}</li>" for v in values) + "</ul>" if values else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rate_row(row: dict[str, Any], key: str) -> tuple[Any, Any, Any, Any]:
    """(threshold, value, low, high) of one sweep row's rate."""
    rate = _dict(row.get(key))
    return row.get("threshold"), rate.get("value"), rate.get("low"), rate.get("high")


# ------------------------------------------------------------------------------------------------ g. cache


def cache_section(task: dict[str, Any], strategies: list[dict[str, Any]], metric: str, uid: str) -> str:
    cache = task.get("cache")
    if not isinstance(cache, dict):
        return '<p class="note">Not run: no cache was warmed or swept in this bench.</p>'
    warm = _dict(cache.get("warm"))
    log = _dict(_dict(task.get("inputs")).get("query_log"))
    took = f" in {duration(warm['seconds'])}" if num(warm.get("seconds")) is not None else ""
    facts = [f"mode {dash(cache.get('mode'))}", f"threshold {fmt(cache.get('threshold'), 2)}",
             f"guard {'on' if cache.get('guard') else 'off'}",
             f"warmed with {dash(warm.get('questions'))} questions{took}"]
    parts = [f'<p class="meta">{" · ".join(facts)}</p>']
    analysis = _dict(cache.get("log"))
    if analysis:
        repeated = [r for r in (analysis.get("top_repeated") or []) if isinstance(r, dict)][:5]
        parts.append(f"<p>Query log: {dash(analysis.get('verdict') or None)} Exact repeats "
                     f"{rate_text(_dict(analysis.get('exact_repeat_rate')))}.</p>")
        if repeated:
            parts.append("<details><summary>Most repeated questions</summary>" + table(
                ["question", "times"], [[f'<span class="text">{dash(r.get("question"))}</span>', dash(r.get("count"))]
                                        for r in repeated], num_cols={1}) + "</details>")
    sweep = [r for r in (cache.get("sweep") or []) if isinstance(r, dict)]
    hits = [_rate_row(r, "hit_rate") for r in sweep]
    pairs = _dict(cache.get("pairs_sweep"))
    guard = bool(cache.get("guard"))
    pair_rows = [r for r in (pairs.get("rows") or []) if isinstance(r, dict)]
    chosen = [r for r in pair_rows if bool(r.get("guard")) == guard] or [r for r in pair_rows if not r.get("guard")]
    false_hits = [_rate_row(r, "false_hit_rate") for r in chosen]
    recommended = pairs.get("recommended_threshold_guard" if guard else "recommended_threshold") if pairs else None
    if sweep or false_hits:
        chart = charts.sweep_chart(hits, false_hits, uid=f"{uid}-cache-sweep-chart",
                                   threshold=num(cache.get("threshold")), recommended=num(recommended))
        caption = (f"Hit rate: share of the {dash(log.get('n_queries'))} queries of the query log "
                   f"(<code>{dash(log.get('path'))}</code>, {dash(log.get('distinct'))} distinct) that the warmed "
                   "cache would answer at each similarity threshold, with its Wilson confidence band.")
        if pairs:
            caption += (f" False-hit rate: share of the {dash(pairs.get('n_non_duplicates'))} labelled "
                        f"non-duplicate pairs ({dash(pairs.get('source'))}) the cache would wrongly match"
                        f"{' with the guard on' if guard and chosen and chosen[0].get('guard') else ''}.")
        parts.append(f"<figure>{chart}<figcaption>{caption}</figcaption></figure>")
    else:
        parts.append('<p class="note">No threshold sweep rows were recorded.</p>')
    at = next((r for r in sweep if num(r.get("threshold")) is not None and num(cache.get("threshold")) is not None
               and abs(r["threshold"] - cache["threshold"]) < 1e-9), None)
    if at:
        parts.append(f"<p>At the configured threshold {fmt(cache.get('threshold'), 2)}: hit rate "
                     f"{rate_text(at.get('hit_rate'))} ({dash(at.get('hits'))} of {dash(at.get('n'))} queries).</p>")
    recommendation = _dict(pairs.get("recommendation"))
    if recommendation:
        target = num(pairs.get("target_false_hit_rate"))
        parts.append("<p>Threshold from the labelled pairs (target false-hit rate "
                     f"{f'{target:.1%}' if target is not None else MISSING}):</p>"
                     + items([recommendation.get("no_guard"), recommendation.get("guard")]))
    cached = [s for s in strategies if s.get("cached") or _dict(s.get("params")).get("kind") == "cached"]
    if cached:
        shown = [metric, *SPLIT_EXTRA]
        rows = []
        for s in cached:
            split, traffic = _dict(s.get("cache_split")), _dict(s.get("traffic_hit_rate"))
            cells = [dash(s.get("name")), dash(s.get("wraps")),
                     f'{rate_text(traffic)}<div class="note">{dash(traffic.get("source"))}</div>' if traffic
                     else MISSING]
            for name in shown:
                row, digits = _dict(split.get(name)), 0 if name == "latency_ms" else 3
                cells += [f"{fmt(row.get('hit'), digits)} <span class=note>(n={dash(row.get('hit_n'))})</span>",
                          f"{fmt(row.get('miss'), digits)} <span class=note>(n={dash(row.get('miss_n'))})</span>"]
            rows.append(cells)
        heads = ["strategy", "wraps", "hit rate on traffic"]
        heads += [f"{escape(name)} on {side}" for name in shown for side in ("hits", "misses")]
        parts.append("<h4>Cached strategies: quality on hits and misses</h4>"
                     + table(heads, rows, num_cols=set(range(3, len(heads))))
                     + '<p class="note">A hit returns the stored answer of a similar earlier question; quality on '
                       "hits below that on misses means the threshold lets in wrong matches. results.json has the "
                       "split for every metric.</p>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ h. data check


def data_check_section(check: Any) -> str:
    if not isinstance(check, dict):
        return '<p class="note">Not run: no training data was checked in this bench.</p>'
    ready = bool(check.get("ready"))
    badge = ('<span class="badge good">ready to train</span>' if ready
             else '<span class="badge bad">not ready to train</span>')
    dropped = _dict(check.get("dropped"))
    facts = [f"{dash(check.get('clean'))} clean of {dash(check.get('examples'))} valid examples",
             f"minimum {dash(check.get('min_examples'))}", f"{dash(check.get('invalid_lines'))} invalid lines",
             f"dropped {dash(dropped.get('duplicate'))} duplicates and {dash(dropped.get('leak'))} leaked into eval",
             f"eval set {'given' if check.get('has_eval') else 'not given'}"]
    parts = [f"<p>{badge}</p>", f'<p class="meta">{" · ".join(facts)}</p>']
    if check.get("reasons"):
        parts.append("<strong>Why not ready</strong>" + items(check.get("reasons")))
    sets = [s for s in (check.get("sets") or []) if isinstance(s, dict)]
    if sets:
        parts.append(table(["role", "file", "records", "version", "format", "invalid"],
                           [[dash(s.get("role")), f"<code>{dash(s.get('path'))}</code>", dash(s.get("records")),
                             f"<code>{dash(s.get('version'))}</code>", dash(s.get("kind")), dash(s.get("invalid"))]
                            for s in sets], num_cols={2, 5}))
    lengths = _dict(check.get("lengths"))
    if lengths:
        parts.append(f'<p class="meta">Tokens per example after the chat template: min {dash(lengths.get("min"))}, '
                     f'p50 {dash(lengths.get("p50"))}, p95 {dash(lengths.get("p95"))}, max {dash(lengths.get("max"))}'
                     f'; {dash(lengths.get("over_limit"))} over the limit of {dash(lengths.get("max_tokens"))}.</p>')
    findings = [f for f in (check.get("findings") or []) if isinstance(f, dict)]
    if findings:
        rows = [[(f'<span class="badge {"bad" if f.get("severity") == "error" else "estimate"}">'
                  f'{dash(f.get("severity"))}</span>'), dash(f.get("check")),
                 f"<code>{dash(f.get('where'))}</code>" if f.get("where") else MISSING,
                 f'<span class="text">{dash(f.get("message"))}</span>', dash(f.get("fix") or None)]
                for f in findings[:MAX_FINDINGS]]
        more = (f'<p class="note">First {MAX_FINDINGS} of {len(findings)} findings; results.json has all.</p>'
                if len(findings) > MAX_FINDINGS else "")
        parts.append(f"<h4>Findings ({len(findings)})</h4>" + more
                     + table(["severity", "check", "where", "message", "fix"], rows))
    else:
        parts.append('<p class="note">No findings.</p>')
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ i. measurement


def measurement_section(task: dict[str, Any], advice: dict[str, Any]) -> str:
    parts = []
    measurement = [m for m in (task.get("measurement") or []) if isinstance(m, dict)]
    if measurement:
        parts.append('<dl class="how">' + "".join(f"<dt>{dash(m.get('what'))}</dt><dd>{dash(m.get('how'))}</dd>"
                                                  for m in measurement) + "</dl>")
    inputs = _dict(task.get("inputs"))
    rows = []
    docs, cases, train = _dict(inputs.get("documents")), _dict(inputs.get("cases")), _dict(inputs.get("train"))
    log, workload = _dict(inputs.get("query_log")), _dict(inputs.get("workload"))
    if docs:
        rows.append(["documents", ", ".join(f"<code>{dash(p)}</code>" for p in docs.get("paths") or []) or MISSING,
                     f"{dash(docs.get('documents'))} documents, {dash(docs.get('chunks'))} chunks"])
    for label, item in (("eval cases", cases), ("training data", train)):
        if item:
            sha = str(item.get("sha256") or "")
            digest = f", sha256 <code>{escape(sha[:12])}</code>" if sha else ""
            rows.append([label, f"<code>{dash(item.get('path'))}</code>", f"{dash(item.get('n'))} records{digest}"])
    if log:
        rows.append(["query log", f"<code>{dash(log.get('path'))}</code>",
                     f"{dash(log.get('n_queries'))} queries, {dash(log.get('distinct'))} distinct"])
    if workload:
        rows.append(["workload", f"<code>{dash(workload.get('path'))}</code>", ""])
    if rows:
        parts.append("<h4>Inputs</h4>" + table(["input", "file", "size"], rows))
    stages = [s for s in (task.get("stages") or []) if isinstance(s, dict)]
    if stages:
        parts.append("<h4>Stages</h4>" + table(
            ["stage", "status", "seconds", "detail"],
            [[dash(s.get("name")), dash(s.get("status")), fmt(s.get("seconds"), 1),
              f'<span class="text">{dash(s.get("detail"))}</span>'] for s in stages], num_cols={2}))
    skipped = [s for s in (task.get("skipped_strategies") or []) if isinstance(s, dict)]
    if skipped:
        parts.append("<h4>Strategies not run</h4>" + '<ul class="plain">' + "".join(
            f"<li><strong>{dash(s.get('name'))}</strong>: {dash(s.get('reason'))}</li>" for s in skipped) + "</ul>")
    warnings = [w for w in (task.get("warnings") or []) if w]
    if warnings:
        parts.append(f'<div class="callout"><strong>Warnings</strong>{items(warnings)}</div>')
    if advice.get("provenance"):
        parts.append("<h4>Where the prices and volumes come from</h4>" + items(advice.get("provenance")))
    params = [s for s in (task.get("strategies") or []) if isinstance(s, dict) and isinstance(s.get("params"), dict)]
    if params:
        parts.append("<h4>Strategy settings</h4>" + table(
            ["strategy", "family", "tracking run", "params"],
            [[dash(s.get("name")), dash(s.get("family")), f"<code>{dash(s.get('run_id'))}</code>",
              '<code class="text">' + ", ".join(f"{escape(str(k))}={dash(v)}" for k, v in s["params"].items())
              + "</code>"] for s in params]))
    parts.append(f'<p class="meta">config <code>{dash(task.get("config_path"))}</code> · seed {dash(task.get("seed"))}'
                 f' · significance {dash(task.get("significance"))} · retrieval k {dash(task.get("k"))}</p>')
    parts.append(f'<p>Reproduce this task:</p><pre class="cmd"><code>{dash(task.get("reproduce"))}</code></pre>')
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ j. cases


def cases_section(strategies: list[dict[str, Any]], metric: str) -> str:
    if not strategies:
        return ""
    blocks = []
    for s in strategies:
        cases = [c for c in (s.get("cases") or []) if isinstance(c, dict)]
        note = (f'<p class="note">First {MAX_CASES} of {len(cases)} case results; results.json has all.</p>'
                if len(cases) > MAX_CASES else "")
        rows = []
        for c in cases[:MAX_CASES]:
            scores = _dict(c.get("scores"))
            ordered = [metric] + [k for k in scores if k != metric] if metric in scores else list(scores)
            score_text = "<br>".join(f"{escape(str(k))}: {fmt(scores[k])}" for k in ordered)
            flags = [t for t, on in (("refused", c.get("refused")), ("cache hit", c.get("cache_status") == "hit"))
                     if on]
            error = f'<div class="note">error: {dash(c.get("error"))}</div>' if c.get("error") else ""
            rows.append([f"<code>{dash(c.get('case_id'))}</code>", dash(c.get("repeat")),
                         f'<span class="text">{dash(c.get("question"))}</span>',
                         f'<span class="text">{dash(c.get("expected"))}</span>',
                         f'<span class="text">{dash(c.get("answer"))}</span>'
                         + (f' <span class="note">({", ".join(flags)})</span>' if flags else "") + error,
                         score_text or MISSING, fmt(c.get("latency_ms"), 0)])
        body = table(["case", "repeat", "question", "expected", "answer", "scores", "latency (ms)"], rows,
                     num_cols={1, 5, 6}) if rows else '<p class="note">No per-case results.</p>'
        blocks.append(f"<h4>{dash(s.get('name'))} ({len(cases)} case results)</h4>{note}{body}")
    return ('<details class="cases"><summary>Per-case answers of each strategy (first '
            f"{MAX_CASES} per strategy)</summary>{''.join(blocks)}</details>")
