"""`adaptlab bench`: build every strategy, measure, price, recommend; write report.html + results.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from adaptlab.bench.results import BenchResult


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        ctx: typer.Context,
        config_file: Path | None = typer.Option(
            None, "--config", "-c", help="adaptlab.toml whose bench section names documents, eval cases, "
            "training examples, query log and workload (default: the global --config, else ./adaptlab.toml)."),
        out: Path | None = typer.Option(None, "--out", help="Folder for report.html and results.json "
                                        "(default: bench.out, else <home>/bench/<run id>)."),
        as_json: bool = typer.Option(False, "--json", help="Print results.json's summary as JSON."),
        concurrency: int | None = typer.Option(
            None, "--concurrency", min=1, max=256, help="Answers in flight at once for endpoint-backed strategies "
            "(default: eval.concurrency)."),
        resume: str | None = typer.Option(
            None, "--resume", help="Continue an interrupted bench (the run id it printed): finished answers are "
            "kept, the rest is measured."),
        max_cost: float | None = typer.Option(
            None, "--max-cost", min=0, help="Refuse to start measuring when the estimated cost of the calls at "
            "catalog prices exceeds this many USD (the plan is printed either way)."),
        train_seeds: int | None = typer.Option(
            None, "--train-seeds", min=1, help="Train N adapters on all the data with seeds train.seed … + N-1: "
            "the fine-tuned score is their mean and its interval includes the spread across seeds (default: "
            "bench.train_seeds)."),
    ) -> None:
        """Measure prompt, RAG, fine-tuned and fine-tuned+RAG strategies (each with and without the answer cache)
        on your data with one harness, price them over 12 months and recommend one, with its reasons."""
        from adaptlab.bench.run import BenchInterrupted, run_bench
        from adaptlab.cli.common import run_planner, stage_progress
        from adaptlab.cli.main import console
        from adaptlab.config import load_config

        options = ctx.obj or {}
        config = load_config(config_file or options.get("config"), home=options.get("home"))
        if train_seeds is not None:
            config.bench.train_seeds = train_seeds
        try:
            with stage_progress() as (progress, on_progress):
                outcome = run_bench(config, progress=on_progress, out_dir=out, resume=resume, concurrency=concurrency,
                                    before_run=run_planner(config, max_cost),
                                    on_stage=lambda text: progress.console.print(f"[bold]==>[/] {text}",
                                                                                 highlight=False))
        except BenchInterrupted as stop:
            interrupted(stop.run_id)
        if as_json:
            print(outcome.results.summary().model_dump_json(indent=2))
            return
        print_results(console, outcome.results)
        console.print(f"\nReport: {outcome.report_path}\nResults: {outcome.results_path}", highlight=False,
                      soft_wrap=True)


def interrupted(run_id: str | None = None) -> None:
    """Ctrl-C: say what was kept (typer would otherwise exit 130 without a word)."""
    from adaptlab.cli.main import err_console

    resume = (f" Continue with the same command plus [bold]--resume {run_id}[/]: every finished answer is kept;"
              if run_id else " Run the command again to start over;")
    err_console.print("[yellow]interrupted[/] — no report was written (its partial folder is removed); the answers "
                      f"that finished are kept in the project's eval log.{resume} the index and a finished adapter "
                      "are reused.", highlight=False)
    raise typer.Exit(130)


def print_results(console: Console, results: BenchResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from adaptlab.numbers import usd

    head = results.summary()
    metric = head.metric or "quality"
    table = Table(title=f"{escape(head.title)}: {results.n_cases} cases, "
                        f"{head.queries_per_day or 0:,.0f} queries/day, {head.months} months")
    for column in ("rank", "strategy", f"{metric} [95% CI]", "p50 ms", "$/1k answers", "hit rate", "TCO"):
        table.add_column(column, overflow="fold")
    for row in sorted(head.strategies, key=lambda r: (r.rank is None, r.rank or 0)):
        quality = "—" if row.quality is None else (
            f"{row.quality:.3f}" + (f" [{row.quality_low:.3f}, {row.quality_high:.3f}]"
                                    if row.quality_low is not None and row.quality_high is not None else ""))
        table.add_row(str(row.rank) if row.rank is not None else "[dim]excl.[/]", escape(row.name),
                      quality, f"{row.latency_ms_p50:.0f}" if row.latency_ms_p50 is not None else "—",
                      usd(row.usd_per_1k_answers), f"{row.hit_rate:.0%}" if row.hit_rate is not None else "—",
                      usd(row.tco_usd))
    console.print(table)
    advice = results.advice
    winner = advice.winner if advice else None
    if advice is None or winner is None:
        console.print("[bold red]No strategy qualifies[/] under the workload's constraints.")
    else:
        console.print(f"[bold green]Recommendation:[/] {escape(winner.name)} "
                      f"({usd(winner.total_usd)} over {advice.months} months)", highlight=False)
        for reason in winner.reasons:
            console.print(f"   • {escape(reason)}", highlight=False)
    if advice is not None:
        for note in advice.notes:
            if "provisional" in note:
                console.print(f"[yellow]provisional:[/] {escape(note)}", highlight=False)
    study = results.finetuning
    if study is not None:
        console.print(f"[bold]Fine-tuning[/] ({escape(study.strategy)}, {len(study.adapters)} adapters):",
                      highlight=False)
        for finding in study.findings():
            console.print(f"   • {escape(finding)}", highlight=False)
    for skipped in results.skipped_strategies:
        console.print(f"[yellow]not built:[/] {escape(skipped.name)} — {escape(skipped.reason)}", highlight=False)
    for warning in results.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
