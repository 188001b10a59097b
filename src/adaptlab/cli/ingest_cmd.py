"""`adaptlab ingest PATH...`: load, chunk, embed and index documents incrementally."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        ctx: typer.Context,
        paths: list[str] = typer.Argument(..., help="Files and folders (recursive)."),
        tag: list[str] = typer.Option([], "--tag", "-t", help="Tag every ingested document (repeatable)."),
        strict: bool = typer.Option(False, "--strict", help="Exit non-zero when any file could not be ingested."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Index documents (text, Markdown, HTML, PDF, Word, PowerPoint, Excel, CSV, images, JSON/JSONL). Re-runs
        embed only new or changed documents and remove the chunks of changed and deleted ones."""
        from adaptlab.cli.common import load_project, stage_progress
        from adaptlab.cli.main import console, err_console

        project = load_project(ctx)
        with project.ingest_lock(), stage_progress(transient=as_json) as (_, on_progress):
            with err_console.status("Loading the embedder…"):
                project.store  # noqa: B018 — opened (and the embedder loaded) under the spinner
            # Rag strategies with other [chunk] settings (chunk_context) retrieve from their own index: built too.
            reports = project.ingest_indexes(paths, tags=tag, progress=on_progress)
        from adaptlab.cache.factory import invalidate_after_ingest

        main, *other_names = reports
        report = reports[main]
        other_indexes = {name: reports[name] for name in other_names}
        for other in other_indexes.values():
            report.retired_doc_hashes = sorted({*report.retired_doc_hashes, *other.retired_doc_hashes})
        cache_warning = invalidate_after_ingest(project, report)
        project.logger.record("ingest", latency_ms=report.seconds * 1000, **report.to_dict())
        if cache_warning:
            err_console.print(f"[yellow]warning:[/] {cache_warning}", highlight=False, soft_wrap=True)
        if as_json:
            print(json.dumps({**report.to_dict(), **({"other_indexes": {name: other.to_dict() for name, other in
                                                                          other_indexes.items()}}
                                                       if other_indexes else {})}, indent=2))
        else:
            console.print(
                f"[bold]{len(report.added)} added[/], {len(report.updated)} updated, {len(report.removed)} removed, "
                f"{len(report.unchanged)} unchanged — {report.chunks_written} chunks written, "
                f"{report.chunks_deleted} deleted, {report.total_chunks} in the index ({report.seconds:.1f} s)"
                + (f"; {report.cache_entries_invalidated} cached answer(s) built from changed documents "
                   "invalidated" if report.cache_entries_invalidated else ""),
                soft_wrap=True,
            )
            for name, other in other_indexes.items():
                console.print(f"index {name} (a rag strategy's chunk_context): {other.chunks_written} chunks "
                              f"written, {other.total_chunks} in the index ({other.seconds:.1f} s)", soft_wrap=True)
            if report.problems:
                console.print(f"[yellow]{len(report.problems)} file(s) skipped:[/]")
                for problem in report.problems:
                    console.print(f"  [yellow]•[/] {problem}", highlight=False, soft_wrap=True)
        if strict and report.problems:
            err_console.print(f"[red]--strict: {len(report.problems)} file(s) could not be ingested[/] "
                              "(everything else was indexed).")
            raise typer.Exit(1)
