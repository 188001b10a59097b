"""The later sections of a bench report task (cache sweep, data check, measurement, per-case answers) and the
small HTML helpers the page shares. They read the typed records of a `BenchResult`; every value is escaped;
missing, None and NaN values show as "—"."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Protocol

from adaptlab import charts
from adaptlab.bench.results import BenchResult, DataCheck, FinetuningStudy, Rate
from adaptlab.cost.records import AdviceRecord
from adaptlab.eval.results import StrategyResult
from adaptlab.numbers import num

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


class Valued(Protocol):
    """A value with its interval: `Estimate`, `MetricResult`, `TrafficHitRate`, `QualityRecord`, a cache `Rate`."""

    @property
    def value(self) -> float | None: ...

    @property
    def low(self) -> float | None: ...

    @property
    def high(self) -> float | None: ...


def ci_text(stat: Valued | None, digits: int | None = None) -> str:
    """"0.412 [0.350, 0.470]"; the interval left out when it is missing. Digits: 3 for values below 10, fewer
    for larger ones (latencies, token counts) unless given."""
    value = num(stat.value) if stat is not None else None
    if stat is None or value is None:
        return MISSING
    if digits is None:
        digits = 3 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    low, high = num(stat.low), num(stat.high)
    interval = f" [{low:,.{digits}f}, {high:,.{digits}f}]" if low is not None and high is not None else ""
    return f"{value:,.{digits}f}{interval}"


def rate_text(rate: Valued | None) -> str:
    """"12.5% [3.4%, 36.0%]" for a rate with its interval."""
    value = num(rate.value) if rate is not None else None
    if rate is None or value is None:
        return MISSING
    low, high = num(rate.low), num(rate.high)
    interval = f" [{low:.1%}, {high:.1%}]" if low is not None and high is not None else ""
    return f"{value:.1%}{interval}"


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


def items(values: Sequence[str | None]) -> str:
    shown = [v for v in values if v]
    return '<ul class="plain">' + "".join(f"<li>{dash(v)}</li>" for v in shown) + "</ul>" if shown else ""


def _rate_row(threshold: float, rate: Rate) -> tuple[float, float | None, float | None, float | None]:
    """(threshold, value, low, high) of one sweep row's rate."""
    return threshold, rate.value, rate.low, rate.high


# ------------------------------------------------------------------------------------------------ g. cache


def cache_section(task: BenchResult, strategies: Sequence[StrategyResult], metric: str, uid: str) -> str:
    cache = task.cache
    if cache is None:
        return '<p class="note">Not run: no cache was warmed or swept in this bench.</p>'
    warm, log = cache.warm, task.inputs.query_log
    took = f" in {duration(warm.seconds)}" if num(warm.seconds) is not None else ""
    facts = [f"mode {dash(cache.mode)}", f"threshold {fmt(cache.threshold, 2)}",
             f"guard {'on' if cache.guard else 'off'}",
             f"warmed with {dash(warm.questions)} questions{took}"]
    parts = [f'<p class="meta">{" · ".join(facts)}</p>']
    analysis = cache.log
    repeated = analysis.top_repeated[:5]
    parts.append(f"<p>Query log: {dash(analysis.verdict or None)} Exact repeats "
                 f"{rate_text(analysis.exact_repeat_rate)}.</p>")
    if repeated:
        parts.append("<details><summary>Most repeated questions</summary>" + table(
            ["question", "times"], [[f'<span class="text">{dash(r.question)}</span>', dash(r.count)]
                                    for r in repeated], num_cols={1}) + "</details>")
    sweep = cache.sweep
    hits = [_rate_row(r.threshold, r.hit_rate) for r in sweep]
    pairs = cache.pairs_sweep
    guard = cache.guard
    pair_rows = pairs.rows if pairs is not None else []
    chosen = [r for r in pair_rows if r.guard == guard] or [r for r in pair_rows if not r.guard]
    false_hits = [_rate_row(r.threshold, r.false_hit_rate) for r in chosen]
    recommended = None
    if pairs is not None:
        recommended = pairs.recommended_threshold_guard if guard else pairs.recommended_threshold
    if sweep or false_hits:
        chart = charts.sweep_chart(hits, false_hits, uid=f"{uid}-cache-sweep-chart",
                                   threshold=num(cache.threshold), recommended=num(recommended))
        n_queries, path, distinct = (log.n_queries, log.path, log.distinct) if log is not None else (None, None, None)
        caption = (f"Hit rate: share of the {dash(n_queries)} queries of the query log (<code>{dash(path)}</code>, "
                   f"{dash(distinct)} distinct) that the warmed cache would answer at each similarity threshold, "
                   "with its Wilson confidence band.")
        if pairs is not None:
            caption += (f" False-hit rate: share of the {dash(pairs.n_non_duplicates)} labelled "
                        f"non-duplicate pairs ({dash(pairs.source)}) the cache would wrongly match"
                        f"{' with the guard on' if guard and chosen and chosen[0].guard else ''}.")
        parts.append(f"<figure>{chart}<figcaption>{caption}</figcaption></figure>")
    else:
        parts.append('<p class="note">No threshold sweep rows were recorded.</p>')
    configured = num(cache.threshold)
    at = next((r for r in sweep if num(r.threshold) is not None and configured is not None
               and abs(r.threshold - configured) < 1e-9), None)
    if at is not None:
        parts.append(f"<p>At the configured threshold {fmt(cache.threshold, 2)}: hit rate "
                     f"{rate_text(at.hit_rate)} ({dash(at.hits)} of {dash(at.n)} queries).</p>")
    recommendation = pairs.recommendation if pairs is not None else None
    if pairs is not None and recommendation is not None:
        target = num(pairs.target_false_hit_rate)
        parts.append("<p>Threshold from the labelled pairs (target false-hit rate "
                     f"{f'{target:.1%}' if target is not None else MISSING}):</p>"
                     + items([recommendation.no_guard, recommendation.guard]))
    cached = [s for s in strategies if s.cached]
    if cached:
        shown = [metric, *SPLIT_EXTRA]
        rows = []
        for s in cached:
            traffic = s.traffic_hit_rate
            cells = [dash(s.name), dash(s.wraps),
                     f'{rate_text(traffic)}<div class="note">{dash(traffic.source)}</div>' if traffic is not None
                     else MISSING]
            for name in shown:
                row, digits = s.cache_split.get(name), 0 if name == "latency_ms" else 3
                hit, hit_n, miss, miss_n = ((row.hit, row.hit_n, row.miss, row.miss_n) if row is not None
                                            else (None, None, None, None))
                cells += [f"{fmt(hit, digits)} <span class=note>(n={dash(hit_n)})</span>",
                          f"{fmt(miss, digits)} <span class=note>(n={dash(miss_n)})</span>"]
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


def data_check_section(check: DataCheck | None) -> str:
    if check is None:
        return '<p class="note">Not run: no training data was checked in this bench.</p>'
    badge = ('<span class="badge good">ready to train</span>' if check.ready
             else '<span class="badge bad">not ready to train</span>')
    dropped = check.dropped
    facts = [f"{dash(check.clean)} clean of {dash(check.examples)} valid examples",
             f"minimum {dash(check.min_examples)}", f"{dash(check.invalid_lines)} invalid lines",
             f"dropped {dash(dropped.duplicate)} duplicates and {dash(dropped.leak)} leaked into eval",
             f"eval set {'given' if check.has_eval else 'not given'}"]
    parts = [f"<p>{badge}</p>", f'<p class="meta">{" · ".join(facts)}</p>']
    if check.reasons:
        parts.append("<strong>Why not ready</strong>" + items(check.reasons))
    if check.sets:
        parts.append(table(["role", "file", "records", "version", "format", "invalid"],
                           [[dash(s.role), f"<code>{dash(s.path)}</code>", dash(s.records),
                             f"<code>{dash(s.version)}</code>", dash(s.kind), dash(s.invalid)]
                            for s in check.sets], num_cols={2, 5}))
    lengths = check.lengths
    if lengths is not None:
        parts.append(f'<p class="meta">Tokens per example after the chat template: min {dash(lengths.min)}, '
                     f"p50 {dash(lengths.p50)}, p95 {dash(lengths.p95)}, max {dash(lengths.max)}"
                     f"; {dash(lengths.over_limit)} over the limit of {dash(lengths.max_tokens)}.</p>")
    findings = check.findings
    if findings:
        rows = [[(f'<span class="badge {"bad" if f.severity == "error" else "estimate"}">'
                  f"{dash(f.severity)}</span>"), dash(f.check),
                 f"<code>{dash(f.where)}</code>" if f.where else MISSING,
                 f'<span class="text">{dash(f.message)}</span>', dash(f.fix or None)]
                for f in findings[:MAX_FINDINGS]]
        more = (f'<p class="note">First {MAX_FINDINGS} of {len(findings)} findings; results.json has all.</p>'
                if len(findings) > MAX_FINDINGS else "")
        parts.append(f"<h4>Findings ({len(findings)})</h4>" + more
                     + table(["severity", "check", "where", "message", "fix"], rows))
    else:
        parts.append('<p class="note">No findings.</p>')
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ fine-tuning


def finetuning_section(study: FinetuningStudy | None, uid: str) -> str:
    """The learning curve with its fit and the bar to clear, the adapters and how their checkpoints were chosen,
    training seeds, the forgetting probe, and whether the verdict on fine-tuning is settled."""
    if study is None:
        return '<p class="note">Not run: no adapter was trained in this bench.</p>'
    metric = study.metric
    parts = []
    if study.provisional:
        parts.append('<p class="callout"><strong>Provisional:</strong> not converged — more data or steps are '
                     "likely to help, so the advisor does not treat fine-tuning as a settled loser: "
                     + "; ".join(escape(reason) for reason in study.provisional) + ".</p>")
    parts.append(items(study.findings()))
    full = study.full
    points = [charts.CurvePoint(a.examples, a.quality.value, a.quality.low, a.quality.high, a.label)
              for a in study.curve if a.quality is not None]
    seeds = [charts.CurvePoint(a.examples, a.quality.value, a.quality.low, a.quality.high, a.label)
             for a in study.adapters if a.seed != full.seed and a.quality is not None]
    fit = (study.fit.intercept, study.fit.gain_per_doubling) if study.fit is not None else None
    bar = study.baseline_quality
    baseline = (study.baseline, bar.value) if study.baseline and bar is not None and bar.value is not None else None
    caption = (f"Each dot: an adapter trained on a nested share of the training data, scored on the eval cases "
               f"({escape(metric)}, whiskers: confidence interval over cases)"
               + ("; open circles: all the data with other training seeds" if seeds else "")
               + f". The fitted line {escape(metric)} = a + b·log2(examples) runs one doubling past the "
               f"data; the flat line is the best strategy that is not fine-tuned, the bar to clear.")
    chart = charts.learning_curve_chart(points, uid=f"{uid}-curve-chart", metric=metric, fit=fit, baseline=baseline,
                                        seeds=seeds)
    parts.append(f"<figure>{chart}<figcaption>{caption}</figcaption></figure>")
    rows = []
    for a in study.adapters:
        final_loss = a.train_loss[-1][1] if a.train_loss else None
        validation = ", ".join(f"{v:.2f}@{s}" for s, v in a.task_metric) or MISSING
        rows.append([escape(a.label), dash(a.examples), dash(a.seed), dash(a.steps), duration(a.seconds),
                     fmt(a.tokens_per_second, 0), fmt(final_loss), validation, dash(a.best_step),
                     ci_text(a.quality), "reused" if a.reused else "trained"])
    parts.append("<h4>Adapters</h4>" + table(
        ["data", "examples", "seed", "steps", "training", "tokens/s", "final loss",
         f"validation {escape(full.task_metric_name or metric)} @ step", "kept step", f"{escape(metric)} [CI]",
         ""], rows, num_cols={1, 2, 3, 5, 6, 8}))
    evaluations = sorted({s for s, _ in full.eval_loss} | {s for s, _ in full.task_metric})
    if evaluations:
        losses = dict(full.train_loss)
        eval_loss, task = dict(full.eval_loss), dict(full.task_metric)
        parts.append(f"<h4>Training curves of the adapter the strategy answers with ({escape(full.label)})</h4>"
                     + table(["step", "training loss", "eval loss", f"validation {escape(full.task_metric_name)}"],
                             [[dash(step), fmt(losses.get(step)), fmt(eval_loss.get(step)), fmt(task.get(step))]
                              for step in evaluations], num_cols={0, 1, 2, 3}))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ i. measurement


def measurement_section(task: BenchResult, advice: AdviceRecord | None) -> str:
    parts = []
    if task.measurement:
        parts.append('<dl class="how">' + "".join(f"<dt>{dash(m.what)}</dt><dd>{dash(m.how)}</dd>"
                                                  for m in task.measurement) + "</dl>")
    inputs = task.inputs
    rows = []
    docs, log, workload = inputs.documents, inputs.query_log, inputs.workload
    if docs is not None:
        rows.append(["documents", ", ".join(f"<code>{dash(p)}</code>" for p in docs.paths) or MISSING,
                     f"{dash(docs.documents)} documents, {dash(docs.chunks)} chunks"])
    for label, item in (("eval cases", inputs.cases), ("training data", inputs.train)):
        if item is not None:
            digest = f", sha256 <code>{escape(item.sha256[:12])}</code>" if item.sha256 else ""
            rows.append([label, f"<code>{dash(item.path)}</code>", f"{dash(item.n)} records{digest}"])
    if log is not None:
        rows.append(["query log", f"<code>{dash(log.path)}</code>",
                     f"{dash(log.n_queries)} queries, {dash(log.distinct)} distinct"])
    rows.append(["workload", f"<code>{dash(workload.path)}</code>", ""])
    parts.append("<h4>Inputs</h4>" + table(["input", "file", "size"], rows))
    if task.stages:
        parts.append("<h4>Stages</h4>" + table(
            ["stage", "status", "seconds", "detail"],
            [[dash(s.name), dash(s.status), fmt(s.seconds, 1), f'<span class="text">{dash(s.detail)}</span>']
             for s in task.stages], num_cols={2}))
    if task.skipped_strategies:
        parts.append("<h4>Strategies not run</h4>" + '<ul class="plain">' + "".join(
            f"<li><strong>{dash(s.name)}</strong>: {dash(s.reason)}</li>" for s in task.skipped_strategies)
            + "</ul>")
    warnings = [w for w in task.warnings if w]
    if warnings:
        parts.append(f'<div class="callout"><strong>Warnings</strong>{items(warnings)}</div>')
    if advice is not None and advice.provenance:
        parts.append("<h4>Where the prices and volumes come from</h4>" + items(advice.provenance))
    if task.strategies:
        parts.append("<h4>Strategy settings</h4>" + table(
            ["strategy", "family", "tracking run", "params"],
            [[dash(s.name), dash(s.family), f"<code>{dash(s.run_id)}</code>",
              '<code class="text">' + ", ".join(f"{escape(str(k))}={dash(v)}" for k, v in s.params.items())
              + "</code>"] for s in task.strategies]))
    parts.append(f'<p class="meta">config <code>{dash(task.config_path)}</code> · seed {dash(task.seed)}'
                 f" · significance {dash(task.significance)} · retrieval k {dash(task.k)}</p>")
    parts.append(f'<p>Reproduce this task:</p><pre class="cmd"><code>{dash(task.reproduce)}</code></pre>')
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ j. cases


def cases_section(strategies: Sequence[StrategyResult], metric: str) -> str:
    if not strategies:
        return ""
    blocks = []
    for s in strategies:
        cases = s.cases
        note = (f'<p class="note">First {MAX_CASES} of {len(cases)} case results; results.json has all.</p>'
                if len(cases) > MAX_CASES else "")
        rows = []
        for c in cases[:MAX_CASES]:
            scores = c.scores
            ordered = [metric] + [k for k in scores if k != metric] if metric in scores else list(scores)
            score_text = "<br>".join(f"{escape(str(k))}: {fmt(scores[k])}" for k in ordered)
            flags = [t for t, on in (("refused", c.refused), ("cache hit", c.cache_status == "hit")) if on]
            error = f'<div class="note">error: {dash(c.error)}</div>' if c.error else ""
            rows.append([f"<code>{dash(c.case_id)}</code>", dash(c.repeat),
                         f'<span class="text">{dash(c.question)}</span>',
                         f'<span class="text">{dash(c.expected)}</span>',
                         f'<span class="text">{dash(c.answer)}</span>'
                         + (f' <span class="note">({", ".join(flags)})</span>' if flags else "") + error,
                         score_text or MISSING, fmt(c.latency_ms, 0)])
        body = table(["case", "repeat", "question", "expected", "answer", "scores", "latency (ms)"], rows,
                     num_cols={1, 5, 6}) if rows else '<p class="note">No per-case results.</p>'
        blocks.append(f"<h4>{dash(s.name)} ({len(cases)} case results)</h4>{note}{body}")
    return ('<details class="cases"><summary>Per-case answers of each strategy (first '
            f"{MAX_CASES} per strategy)</summary>{''.join(blocks)}</details>")
