"""`adaptlab eval`: score strategies on eval cases with one harness; print metrics with CIs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from adaptlab.eval.session import EvalReport


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        ctx: typer.Context,
        strategy: list[str] = typer.Option(
            ..., "--strategy", "-s", help="Strategy name from [strategies.NAME] (built in: prompt, rag). "
            "Give two to compare them on the same cases."),
        cases: Path = typer.Option(..., "--cases", help="Eval cases (JSONL): question, answers, label, "
                                   "expected_json, schema, gold_sources, tags."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N cases."),
        repeats: int = typer.Option(1, "--repeats", min=1, help="Answer each case N times (seed + r) to "
                                    "measure sampling variance."),
        seed: int | None = typer.Option(None, "--seed", help="Base seed (default: eval.seed)."),
        compare_run: str | None = typer.Option(
            None, "--compare", help="Baseline run id: print per-metric deltas, exit 1 on a significant "
            "regression."),
        train: list[Path] = typer.Option([], "--train", help="Training data (JSONL) a strategy learnt from: "
                                         "eval questions found in it are flagged."),
        strict: bool = typer.Option(False, "--strict", help="Refuse to run when eval questions were seen in "
                                    "few-shot examples or training data."),
        out: Path | None = typer.Option(None, "--out", help="Folder for results.json and report.html "
                                           "(default <home>/eval/<run id>)."),
        judge: bool | None = typer.Option(None, "--judge/--no-judge", help="LLM-as-judge on/off (default: "
                                             "eval.judge.enabled)."),
        as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of tables."),
        concurrency: int | None = typer.Option(
            None, "--concurrency", min=1, max=256, help="Answers in flight at once for endpoint-backed strategies "
            "(default: eval.concurrency; a local llama.cpp model answers one at a time). Scores do not depend on "
            "it."),
        resume: str | None = typer.Option(
            None, "--resume", help="Continue an interrupted eval (its id, printed when it stopped): only the cases "
            "it lacks are answered. Give the same strategies, cases and options."),
        max_cost: float | None = typer.Option(
            None, "--max-cost", min=0, help="Refuse to start when the run's estimated cost at catalog prices "
            "(generators' price_api_model / usd_per_hour) exceeds this many USD. The plan is printed either way."),
    ) -> None:
        """Answer every case with each strategy, score quality, latency and tokens with 95% CIs, and
        record the run (SQLite + MLflow)."""
        from adaptlab.cli.common import load_project, run_planner, stage_progress
        from adaptlab.cli.main import err_console
        from adaptlab.eval.session import EvalInterrupted, EvalRequest, evaluate

        project = load_project(ctx)
        request = EvalRequest(strategies=list(strategy), cases_path=cases, limit=limit, repeats=repeats, seed=seed,
                              compare_run=compare_run, strict=strict, train_paths=list(train), out_dir=out,
                              judge=judge, concurrency=concurrency, resume=resume,
                              before_run=run_planner(project.config, max_cost))
        try:
            with stage_progress(transient=as_json) as (_, on_progress):
                report = evaluate(project, request, progress=lambda name, done, total: on_progress(
                    f"Answering with {name}", done, total))
        except EvalInterrupted as stop:
            err_console.print(f"[yellow]interrupted[/] — every finished answer is kept in the project's eval log. "
                              f"Continue with the same command plus [bold]--resume {stop.eval_id}[/].",
                              highlight=False)
            raise typer.Exit(130) from None
        if as_json:
            print(report.record().model_dump_json(indent=2))
        else:
            print_report(report)
        if report.regressed:
            raise typer.Exit(1)


_COUNTS = ("latency_ms", "prompt_tokens", "completion_tokens")


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"


def _p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def print_report(report: EvalReport) -> None:
    from rich.panel import Panel
    from rich.table import Table

    from adaptlab.cli.main import console
    from adaptlab.eval.harness import display_name, ordered_metrics

    for warning in report.warnings:
        console.print(Panel(warning, title="warning", border_style="bold yellow"), highlight=False)
    level = f"{report.confidence:.0%} CI"
    table = Table(title=f"{report.n_cases} cases × {report.repeats} repeat(s), seed {report.seed} — "
                        f"{Path(report.cases_path).name} ({report.cases_sha256[:12]})")
    table.add_column("metric", no_wrap=True)
    table.add_column("n", justify="right")
    for run in report.runs:
        table.add_column(f"{run.name} [{level}]", justify="right", no_wrap=True)
    metrics = ordered_metrics({m for run in report.runs for m in run.metrics})
    for metric in metrics:
        digits = 0 if metric in _COUNTS else 3
        row = [display_name(metric), str(max(run.metrics[metric].n for run in report.runs if metric in run.metrics))]
        for run in report.runs:
            interval = run.metrics.get(metric)
            row.append("n/a" if interval is None or interval.n == 0 else
                       f"{_fmt(interval.value, digits)} [{_fmt(interval.low, digits)}, {_fmt(interval.high, digits)}]")
        table.add_row(*row)
    console.print(table)
    if report.comparison:
        a, b = report.runs[0].name, report.runs[1].name
        paired = Table(title=f"Paired: {b} − {a} on the same cases",
                       caption=f"bold: significant at p < {report.significance:g}")
        for column in ("metric", "n", f"difference [{level}]", "p", "test"):
            paired.add_column(column, justify="left" if column in ("metric", "test") else "right", no_wrap=True)
        for metric, comparison in report.comparison.items():
            r = comparison.result
            digits = 0 if metric in _COUNTS else 3
            style = "bold" if comparison.significant else None
            paired.add_row(display_name(metric), str(r.n),
                           f"{_fmt(r.diff, digits)} [{_fmt(r.low, digits)}, {_fmt(r.high, digits)}]", _p(r.p_value),
                           "McNemar" if r.test == "mcnemar" else "paired bootstrap", style=style)
        console.print(paired)
    for run in report.runs:
        timing = run.timing()
        spread = ""
        if run.repeat_spread:
            spread = "; spread across repeats: " + ", ".join(
                f"{display_name(m)} ±{v:.3f}" for m, v in run.repeat_spread.items()
                if m not in _COUNTS)
        console.print(f"[bold]{run.name}[/] run {run.run_id}: {timing['seconds_per_case']:.2f} s per case, "
                      f"latency p50 {timing['latency_ms_p50']:.0f} ms / p95 {timing['latency_ms_p95']:.0f} ms, "
                      f"first token p50 {_ms(timing['first_token_ms_p50'])} / p95 {_ms(timing['first_token_ms_p95'])}, "
                      f"{timing['prompt_tokens_mean']:.0f}+{timing['completion_tokens_mean']:.0f} tokens per answer"
                      f"{spread}", highlight=False)
        split = run.cache_split()
        if split:
            shown = [m for m in split if m not in _COUNTS and m != "latency_ms"][:6]
            hits = split["latency_ms"]["hit_n"]
            parts = [f"{display_name(m)} {_fmt(split[m]['hit'], 3)} vs {_fmt(split[m]['miss'], 3)}" for m in shown]
            latency = split["latency_ms"]
            parts.append(f"latency {_fmt(latency['hit'], 0)} ms vs {_fmt(latency['miss'], 0)} ms")
            console.print(f"  cache hits vs misses ({hits} hits): " + ", ".join(parts), highlight=False)
    if report.regression is not None:
        _print_regression(report)
    console.print(f"[dim]results: {report.out_dir}/results.json, {report.out_dir}/report.html"
                  + (f"; MLflow: {report.tracking_uri}" if report.tracking_uri else "") + "[/]", highlight=False)


def _print_regression(report: EvalReport) -> None:
    from rich.table import Table

    from adaptlab.cli.main import console
    from adaptlab.eval.harness import display_name

    table = Table(title=f"{report.regression_strategy} against baseline run {report.baseline_run_id}")
    for column in ("metric", "baseline", "now", "delta [CI]", "p", "verdict"):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for metric, comparison in (report.regression or {}).items():
        r = comparison.result
        verdict = ("[bold red]REGRESSION[/]" if comparison.regressed
                   else "[green]significant[/]" if comparison.significant else "–")
        table.add_row(display_name(metric), _fmt(r.a), _fmt(r.b), f"{_fmt(r.diff)} [{_fmt(r.low)}, {_fmt(r.high)}]",
                      _p(r.p_value), verdict)
    console.print(table)
    if report.regressed:
        console.print(f"[bold red]{len(report.regressed)} significant regression(s):[/] "
                      + ", ".join(display_name(m) for m in report.regressed), highlight=False)


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0f} ms"
