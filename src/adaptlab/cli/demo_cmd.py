"""`adaptlab demo`: ingest the bundled COVID-QA sample, score retrieval, answer with citations."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        quick: bool = typer.Option(False, "--quick", help="12 articles instead of 60 (about a minute)."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """Run the RAG pipeline end to end on bundled sample data (COVID-QA, Apache-2.0) and print what it
        measured."""
        from adaptlab.cli.common import load_project, stage_progress
        from adaptlab.cli.main import console
        from adaptlab.demo import demo_result_json, run_demo

        project = load_project(ctx)
        with stage_progress() as (progress, on_progress):
            with project.ingest_lock():
                result = run_demo(project, quick=quick, progress=on_progress,
                                  on_stage=lambda stage: progress.console.print(f"[bold]==>[/] {stage}"))
        if as_json:
            print(demo_result_json(result))
            return
        report = result.ingest
        console.print(f"\n[bold]Index[/]: {result.articles} articles, {report.total_chunks} chunks "
                      f"({len(report.added)} added, {len(report.unchanged)} unchanged) in {report.seconds:.1f} s",
                      highlight=False)
        console.print(f"[bold]Retrieval[/]: gold article in the top 5 for {result.recall_at_5:.1%} of "
                      f"{result.questions} questions; p50 {result.retrieval_p50_ms:.0f} ms, "
                      f"p95 {result.retrieval_p95_ms:.0f} ms", highlight=False)
        for question, answer in result.answers:
            console.print(f"\n[bold]Q:[/] {question}", highlight=False)
            console.print(f"[bold]A:[/] {answer.text}", highlight=False)
            for citation in answer.citations:
                console.print(f"   [{citation.number}] {citation.title[:90]} — {citation.path} "
                              f"({citation.cited_by})", highlight=False, soft_wrap=True)
            console.print(f"   [dim]{answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens, "
                          f"{answer.latency_ms:.0f} ms{', refused' if answer.refused else ''}[/]", highlight=False)
        console.print(f"\n[dim]demo finished in {result.seconds:.0f} s; project folder {project.home}[/]",
                      highlight=False)
