"""`adaptlab cache sweep|analyze|prompt-sim`: measure whether caching pays before building one.

- sweep: hit rate and false-hit rate of a semantic cache at every similarity threshold, on labelled pairs;
- analyze: repeats, near-duplicates and TTL-replayed hit rate of a query log, and what the hits save;
- prompt-sim: provider prompt (prefix) caching priced for a prompt layout and a traffic pattern.
"""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from adaptlab.cache.analyze import LogAnalysis
    from adaptlab.cache.prompt_caching import PromptCacheResult
    from adaptlab.cache.sweep import SweepResult

PROGRESS_ABOVE = 300  # texts: below this, embedding takes a few seconds and a progress bar is noise
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_TTL_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_ttl(value: str) -> float | None:
    """"300", "5m", "1h", "1d", "7d" → seconds; "none"/"inf"/"never" → None (entries never expire)."""
    if value.strip().casefold() in ("none", "inf", "never", "infinite"):
        return None
    match = _TTL.match(value)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{value!r} is not a TTL: write seconds or 5m, 1h, 1d, 7d, none",
                                 param_hint="--ttl")
    unit = match.group(2).casefold() if match.group(2) else None
    return float(match.group(1)) * _TTL_UNITS[unit]


def parse_grid(value: str) -> list[float]:
    """"0.50:0.99:0.01" → [0.50, 0.51, …, 0.99]."""
    try:
        start, stop, step = (float(part) for part in value.split(":"))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: write START:STOP:STEP, e.g. 0.50:0.99:0.01",
                                 param_hint="--grid") from None
    if not (0 < step and -1 <= start <= stop <= 1):
        raise typer.BadParameter(f"{value!r}: need -1 ≤ START ≤ STOP ≤ 1 and STEP > 0", param_hint="--grid")
    count = round((stop - start) / step) + 1
    return [round(start + i * step, 6) for i in range(count) if start + i * step <= stop + 1e-9]


def _progress(show: bool, transient: bool):
    from adaptlab.cli.common import stage_progress

    return stage_progress(transient=transient) if show else nullcontext((None, None))


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def register(cache_app: typer.Typer) -> None:
    @cache_app.command("sweep")
    def sweep_command(
        ctx: typer.Context,
        pairs: Path = typer.Option(..., "--pairs", help="Labelled question pairs: JSONL {question1, question2, "
                                   "duplicate} (or q1/q2, label/is_duplicate), or CSV with those columns."),
        target: float = typer.Option(0.01, "--target-false-hit-rate", min=0.0001, max=0.5,
                                     help="Recommend the lowest threshold whose false-hit rate's 95% upper "
                                     "bound is at most this."),
        grid: str = typer.Option("0.50:0.99:0.01", "--grid", help="Thresholds to try, START:STOP:STEP."),
        out: Path | None = typer.Option(None, "--out", help="Folder for sweep.json and sweep.html "
                                        "(default <home>/cache-sweep)."),
        as_json: bool = typer.Option(False, "--json", help="Print sweep.json to stdout instead of tables."),
    ) -> None:
        """Hit rate, false-hit rate and precision of a semantic cache at every threshold, without and with the
        match guard (negation, numbers, names), and the threshold to use."""
        from adaptlab.cache.sweep import load_pairs, sweep, write_sweep_html
        from adaptlab.cli.common import load_project

        thresholds = parse_grid(grid)
        labelled = load_pairs(pairs)  # bad lines fail before the model loads
        project = load_project(ctx)
        with _progress(2 * len(labelled) > PROGRESS_ABOVE, as_json) as (_, on_progress):
            result = sweep(labelled, project.embedder, thresholds=thresholds, target_false_hit_rate=target,
                           source=str(pairs), progress=on_progress)
        folder = out or project.home / "cache-sweep"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sweep.json").write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False),
                                           encoding="utf-8")
        write_sweep_html(result, folder / "sweep.html")
        if as_json:
            _print_json(result.to_dict())
            return
        print_sweep(result)
        from adaptlab.cli.main import console

        console.print(f"wrote {folder / 'sweep.json'} and {folder / 'sweep.html'}", highlight=False)

    @cache_app.command("analyze")
    def analyze_command(
        ctx: typer.Context,
        log: Path = typer.Option(..., "--log", help="Query log: JSONL {question|query|prompt, timestamp|ts|time} "
                                 "or CSV with a header; timestamps ISO-8601 or unix seconds, optional."),
        threshold: float = typer.Option(0.9, "--threshold", min=-1.0, max=1.0,
                                        help="Cosine at or above which an earlier query counts as the same "
                                        "(pick it with `adaptlab cache sweep`)."),
        ttl: list[str] = typer.Option(["5m", "1h", "1d", "7d", "none"], "--ttl",
                                      help="Cache entry lifetimes to replay (seconds or 5m, 1h, 1d, 7d, none); "
                                      "repeat the option for several."),
        guard: bool = typer.Option(False, "--guard/--no-guard", help="Refuse semantic matches that differ in "
                                   "negation, numbers, dates or names."),
        prompt_tokens: int | None = typer.Option(None, "--prompt-tokens", min=0,
                                                 help="Prompt tokens per query a hit saves (default: the mean "
                                                 "of this project's logged LLM calls)."),
        completion_tokens: int | None = typer.Option(None, "--completion-tokens", min=0,
                                                     help="Completion tokens per query a hit saves (default: "
                                                     "the mean of this project's logged LLM calls)."),
        price: float | None = typer.Option(None, "--price-per-1k-tokens", min=0.0,
                                           help="Price per 1,000 tokens (prompt and completion together) to "
                                           "turn saved tokens into money."),
        question_column: str | None = typer.Option(None, "--question-column",
                                                   help="Field/column holding the query text."),
        timestamp_column: str | None = typer.Option(None, "--timestamp-column",
                                                    help="Field/column holding the query time."),
        as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
    ) -> None:
        """How often queries repeat (exactly and semantically), the hit rate a cache would get under each TTL,
        and the tokens and money the hits save."""
        from adaptlab.cache.analyze import (
            analyze_log,
            load_query_log,
            measured_tokens_per_query,
        )
        from adaptlab.cli.common import load_project

        ttls = [parse_ttl(value) for value in ttl]
        query_log = load_query_log(log, question_column=question_column, timestamp_column=timestamp_column)
        project = load_project(ctx)
        token_source = "given"
        if prompt_tokens is None and completion_tokens is None:
            measured = measured_tokens_per_query(project.log_path)
            if measured is not None:
                prompt_tokens, completion_tokens, calls = measured
                token_source = f"mean of {calls} logged LLM calls"
        with _progress(len(query_log.queries) > PROGRESS_ABOVE, as_json) as (_, on_progress):
            analysis = analyze_log(query_log, project.embedder, threshold=threshold, guard=guard, ttls=ttls,
                                   prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                   price_per_1k_tokens=price, progress=on_progress)
        if as_json:
            _print_json({**analysis.to_dict(), "tokens_source": token_source})
            return
        print_analysis(analysis, token_source)

    @cache_app.command("prompt-sim")
    def prompt_sim_command(
        system_tokens: int = typer.Option(..., "--system-tokens", min=0, help="System prompt tokens (static)."),
        fewshot_tokens: int = typer.Option(0, "--fewshot-tokens", min=0, help="Few-shot example tokens (static)."),
        context_tokens: int = typer.Option(0, "--context-tokens", min=0,
                                           help="Retrieved-context tokens (change per query: not cached)."),
        static_context: bool = typer.Option(False, "--static-context",
                                            help="The context is the same text every time: cache it too."),
        question_tokens: int = typer.Option(0, "--question-tokens", min=0, help="Question tokens."),
        output_tokens: int = typer.Option(0, "--output-tokens", min=0, help="Output tokens."),
        requests_per_hour: float | None = typer.Option(None, "--requests-per-hour", min=0.0001,
                                                       help="Steady traffic, evenly spaced."),
        hours: float = typer.Option(24.0, "--hours", min=0.01, help="How long the steady traffic runs."),
        log: Path | None = typer.Option(None, "--log", help="Take request times from a query log "
                                        "(as `cache analyze --log`) instead of a steady rate."),
        input_price: float = typer.Option(..., "--input-price", min=0.0, help="Input price per 1M tokens."),
        output_price: float = typer.Option(..., "--output-price", min=0.0, help="Output price per 1M tokens."),
        ttl: int = typer.Option(300, "--ttl", min=1, help="Cache TTL in seconds (Anthropic: 300 or 3600)."),
        read_multiplier: float = typer.Option(0.1, "--read-multiplier", min=0.0,
                                              help="Cached-read price as a share of the input price."),
        write_multiplier: float | None = typer.Option(None, "--write-multiplier", min=0.0,
                                                      help="Cache-write price as a multiple of the input price "
                                                      "(default 1.25 for TTL ≤ 5 min, 2.0 above)."),
        min_cacheable: int = typer.Option(1024, "--min-cacheable-tokens", min=0,
                                          help="Shortest prefix the provider caches."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """What provider prompt caching saves for this prompt layout and traffic, at the chosen TTL and the
        other standard one."""
        from adaptlab.cache.analyze import SECONDS_PER_MONTH, load_query_log
        from adaptlab.cache.prompt_caching import (
            FIVE_MINUTES,
            ONE_HOUR,
            PromptLayout,
            ProviderPricing,
            simulate,
            steady_timestamps,
        )

        if (log is None) == (requests_per_hour is None):
            raise typer.BadParameter("give exactly one of --requests-per-hour or --log", param_hint="--log")
        layout = PromptLayout(system_tokens, fewshot_tokens, context_tokens, question_tokens, output_tokens,
                              static_context)
        multipliers = {} if write_multiplier is None else {"cache_write_multiplier_5m": write_multiplier,
                                                           "cache_write_multiplier_1h": write_multiplier}
        pricing = ProviderPricing(input_price, output_price, cached_read_multiplier=read_multiplier,
                                  min_cacheable_tokens=min_cacheable, **multipliers)
        if log is not None:
            query_log = load_query_log(log)
            if not query_log.has_timestamps:
                raise typer.BadParameter(f"{log} has no timestamps; use --requests-per-hour instead",
                                         param_hint="--log")
            timestamps = [q.timestamp for q in query_log.queries if q.timestamp is not None]
            span = max(timestamps) - min(timestamps)
            requests_per_month = len(timestamps) * SECONDS_PER_MONTH / span if span else None
            traffic = f"{len(timestamps)} requests from {log}"
        else:
            assert requests_per_hour is not None  # exactly one of --log and --requests-per-hour, checked above
            timestamps = steady_timestamps(requests_per_hour, hours=hours)
            requests_per_month = requests_per_hour * SECONDS_PER_MONTH / 3600
            traffic = f"{requests_per_hour:g} requests/hour for {hours:g} h ({len(timestamps)} requests)"
        results = [simulate(layout, pricing, timestamps, t) for t in dict.fromkeys([ttl, FIVE_MINUTES, ONE_HOUR])]
        if as_json:
            _print_json({"traffic": traffic, "layout": vars(layout) | {"prefix_tokens": layout.prefix_tokens},
                         "ttl_seconds": ttl, "requests_per_month": requests_per_month,
                         "results": [r.to_dict() | _monthly(r, requests_per_month) for r in results]})
            return
        print_prompt_sim(results, layout, traffic, requests_per_month)


def _monthly(result: PromptCacheResult, requests_per_month: float | None) -> dict[str, float | None]:
    if requests_per_month is None or not result.requests:
        return {"cost_without_cache_per_month": None, "cost_with_cache_per_month": None, "savings_per_month": None}
    scale = requests_per_month / result.requests
    return {"cost_without_cache_per_month": result.cost_without_cache * scale,
            "cost_with_cache_per_month": result.cost_with_cache * scale,
            "savings_per_month": result.savings * scale}


# ------------------------------------------------------------------------------------------------ printing


def print_sweep(result: SweepResult) -> None:
    from rich import box
    from rich.table import Table

    from adaptlab.cli.main import console

    recommended = {result.recommended_threshold, result.recommended_threshold_guard} - {None}
    shown = [t for t in result.thresholds if abs(round(t * 20) - t * 20) < 1e-6 or t in recommended]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                  title=f"Semantic-cache sweep — {result.n_pairs} pairs, duplicates: {result.n_duplicates}; "
                        "95% CIs")
    table.add_column("cos ≥", no_wrap=True)  # the threshold
    table.add_column("guard", no_wrap=True)
    for name in ("hit rate", "false-hit rate", "precision"):
        table.add_column(name, no_wrap=True)
    for threshold in shown:
        for guard in (False, True):
            row = result.row(threshold, guard)
            chosen = threshold == (result.recommended_threshold_guard if guard else result.recommended_threshold)
            table.add_row("" if guard else f"{threshold:.2f}", ("on" if guard else "off") + (" ◀" if chosen else ""),
                          row.hit_rate.show(), row.false_hit_rate.show(), row.precision.show(),
                          end_section=guard)
    console.print(table)
    console.print(f"Recommended (false-hit rate ≤ {result.target_false_hit_rate:.1%} at 95% confidence):",
                  highlight=False)
    for guard in (False, True):
        console.print(f"  {result.recommendation(guard)}", highlight=False)
    console.print(f"The guard refused {result.guard_rejected_non_duplicates} of {result.n_non_duplicates} "
                  f"non-duplicate pairs and {result.guard_rejected_duplicates} of {result.n_duplicates} duplicates.",
                  highlight=False)


def print_analysis(analysis: LogAnalysis, token_source: str) -> None:
    from rich import box
    from rich.table import Table

    from adaptlab.cache.analyze import format_ttl
    from adaptlab.cli.main import console
    from adaptlab.numbers import usd

    span = analysis.span_seconds
    console.print(f"{analysis.n_queries} queries, {analysis.n_distinct} distinct"
                  + (f", over {span / 86_400:.1f} days" if span else ""), highlight=False)
    console.print(f"  exact repeats:             {analysis.exact_repeat_rate.show()}", highlight=False)
    console.print(f"  + near-duplicates ≥ {analysis.threshold:.2f}: {analysis.near_duplicate_rate.show()}"
                  + (" (guard on)" if analysis.guard else ""), highlight=False)
    curve = ", ".join(f"≥{t:.2f}: {100 * (r.value or 0):.1f}%" for t, r in analysis.near_duplicate_curve.items())
    console.print(f"  at other thresholds (no guard): {curve}", highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                  title="Replayed through a cache (an entry expires TTL after the miss that stored it); "
                        "saved: over the log, and per month of such traffic")
    table.add_column("TTL", no_wrap=True)
    table.add_column("hit rate", no_wrap=True)
    for name in ("exact", "similar", "tokens saved", "saved", "per month"):
        table.add_column(name, justify="right")
    for row in analysis.ttl_results:
        table.add_row(format_ttl(row.ttl_seconds), row.hit_rate.show(), str(row.exact_hits),
                      str(row.semantic_hits), "–" if row.tokens_saved is None else f"{row.tokens_saved:,}",
                      usd(row.money_saved, missing="–"), usd(row.money_saved_per_month, missing="–"))
    console.print(table)
    if analysis.prompt_tokens is not None or analysis.completion_tokens is not None:
        console.print(f"Tokens per query: {analysis.prompt_tokens or 0} prompt + {analysis.completion_tokens or 0} "
                      f"completion ({token_source}).", highlight=False)
    if analysis.top_repeated:
        console.print("Most repeated: " + "; ".join(f"{q!r} ×{c}" for q, c in analysis.top_repeated[:5]),
                      highlight=False)
    for note in analysis.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"[bold]Verdict:[/] {analysis.verdict}", highlight=False)


def print_prompt_sim(results: list[PromptCacheResult], layout: Any, traffic: str,
                     requests_per_month: float | None) -> None:
    from rich import box
    from rich.table import Table

    from adaptlab.cache.analyze import format_ttl
    from adaptlab.cli.main import console
    from adaptlab.numbers import usd

    console.print(f"Prompt: {layout.input_tokens} input tokens ({layout.prefix_tokens} static prefix) + "
                  f"{layout.output_tokens} output; traffic: {traffic}", highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Provider prompt caching", title_justify="left")
    table.add_column("TTL", no_wrap=True)
    for name in ("writes", "reads", "cost", "cached cost", "savings", "cost/mo", "cached/mo"):
        table.add_column(name, justify="right")
    for result in results:
        monthly = _monthly(result, requests_per_month)
        pct = "–" if result.savings_pct is None else f"{result.savings_pct:.1f}%"
        table.add_row(format_ttl(result.ttl_seconds), str(result.writes), str(result.reads),
                      usd(result.cost_without_cache, missing="–"), usd(result.cost_with_cache, missing="–"),
                      usd(result.savings, missing="–") + f" ({pct})",
                      usd(monthly["cost_without_cache_per_month"], missing="–"),
                      usd(monthly["cost_with_cache_per_month"], missing="–"))
    console.print(table)
    for note in dict.fromkeys(r.note for r in results if r.note):
        console.print(f"[yellow]note:[/] {note}", highlight=False)
