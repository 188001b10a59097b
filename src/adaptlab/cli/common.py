"""Helpers shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from adaptlab.config import AdaptlabConfig, load_config
from adaptlab.project import Project

if TYPE_CHECKING:
    from rich.progress import Progress

    from adaptlab.eval.plan import RunEstimate
    from adaptlab.rag.index import ProgressCallback


def load_project(ctx: typer.Context) -> Project:
    options = ctx.obj or {}
    config: AdaptlabConfig = load_config(options.get("config"), home=options.get("home"))
    return Project(config)


STAGE_LABELS = {"load": "Loading files", "embed": "Chunking + embedding", "optimize": "Optimizing index",
                "retrieval": "Retrieval on questions"}


@contextmanager
def stage_progress(*, transient: bool = False) -> Iterator[tuple[Progress, ProgressCallback]]:
    """A rich progress display with one bar per pipeline stage, and the callback that drives it
    (the library's ProgressCallback: stage name, items done, items total)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from adaptlab.cli.main import err_console

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=transient) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_LABELS.get(stage, stage), total=total or 1)
            progress.update(tasks[stage], completed=done, total=total or 1)

        yield progress, on_progress


def run_planner(config: AdaptlabConfig, max_cost: float | None) -> Callable[[RunEstimate], None]:
    """Before a run asks anything: print its plan (calls, estimated tokens and cost, ETA) and refuse it when the
    cost exceeds --max-cost."""

    def before_run(estimate: RunEstimate) -> None:
        from rich.markup import escape
        from rich.table import Table

        from adaptlab.cli.main import err_console
        from adaptlab.cost.catalog import load_catalog
        from adaptlab.cost.plan import check_budget, price_run
        from adaptlab.numbers import usd

        priced = price_run(estimate, config, load_catalog(config.prices))
        table = Table(title="Plan (estimates: prompt tokens from the settings, completions at their maximum)",
                      title_justify="left")
        for column in ("strategy", "model", "calls", "prompt tokens", "completion ≤", "cost", "ETA"):
            table.add_column(column, overflow="fold")
        for item in priced.strategies:
            e = item.estimate
            eta = f"{e.eta_seconds / 60:.0f} min" if e.eta_seconds >= 60 else f"{e.eta_seconds:.0f} s"
            table.add_row(escape(e.name), escape(e.generator), f"{e.calls:,}", f"{e.prompt_tokens:,}",
                          f"{e.completion_tokens:,}", usd(item.usd) if item.usd is not None else "[dim]not priced[/]",
                          eta + ("" if e.measured else " [dim](assumed 2 s a call)[/]"))
        err_console.print(table)
        err_console.print(f"[dim]{estimate.calls:,} calls, about {usd(priced.usd)} at catalog prices; the ETA uses "
                          f"each model's median answer time in this project's eval log (2 s a call for a model "
                          f"not seen yet), divided by the answers in flight.[/]", highlight=False)
        err_console.print(f"Run id [bold]{estimate.eval_id}[/]: every answer is stored as it comes; if the run "
                          f"stops, the same command with [bold]--resume {estimate.eval_id}[/] goes on.",
                          highlight=False)
        check_budget(priced, max_cost)

    return before_run
