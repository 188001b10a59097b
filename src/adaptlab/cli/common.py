"""Helpers shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from adaptlab.config import AdaptlabConfig, load_config
from adaptlab.project import Project

if TYPE_CHECKING:
    from rich.progress import Progress

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
