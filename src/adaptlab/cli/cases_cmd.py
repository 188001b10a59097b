"""`adaptlab cases generate`: eval cases drafted from documents (checked, tagged synthetic) or collected from a
query log (for labelling)."""

from __future__ import annotations

from pathlib import Path

import typer

cases_app = typer.Typer(help="Eval cases a team does not write by hand.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cases_app, name="cases")


@cases_app.command("generate")
def generate_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write the cases to."),
    from_docs: list[Path] = typer.Option([], "--from", help="Documents (files or folders) to draft questions "
                                         "from, with reference answers and gold sources."),
    from_log: Path | None = typer.Option(None, "--from-log", help="A query log (JSONL or CSV): its most frequent "
                                         "distinct questions, written without answers for labelling."),
    n: int = typer.Option(50, "--n", min=1, help="Cases wanted."),
    generator: str = typer.Option("", "--generator", help="[generators.NAME] that drafts (default: [generator])."),
    judge: str | None = typer.Option(None, "--judge", help="[generators.NAME] that checks each draft is answerable "
                                     "from its passage (default: the drafting one)."),
    avoid: list[Path] = typer.Option([], "--avoid", help="Existing eval cases or training data (JSONL): drafts "
                                     "that nearly duplicate their questions are dropped."),
    seed: int = typer.Option(0, "--seed", help="Seed of the chunk sampling and the drafting."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Draft eval cases from your documents (each checked, tagged `synthetic`) or collect questions from your
    traffic (`--from-log`, for labelling)."""
    from rich.markup import escape

    from adaptlab.cli.common import load_project, stage_progress
    from adaptlab.cli.main import console, err_console
    from adaptlab.eval.generate import collect_from_log, generate_from_documents, write_cases

    if bool(from_docs) == (from_log is not None):
        raise typer.BadParameter("give --from DOCUMENTS or --from-log QUERIES (one of them)")
    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists — pass --force to overwrite it, or choose another --out")
    project = load_project(ctx)
    if from_log is not None:
        report = collect_from_log(from_log, n=n, threshold=project.config.eval.near_duplicate_jaccard)
        what = f"{report.kept} distinct questions from {from_log.name}, without answers: label them (answers, " \
               f"label or expected_json), then `adaptlab eval --cases {out}`"
    else:
        with stage_progress() as (_, on_progress):
            report = generate_from_documents(project, from_docs, n=n, generator=generator, judge=judge, seed=seed,
                                             avoid=avoid, progress=on_progress)
        what = (f"{report.kept} cases drafted from {report.documents} documents ({report.tried} drafts tried); "
                f"each tagged synthetic — `adaptlab eval --cases {out}`")
    write_cases(out, report.cases)
    console.print(f"[bold green]Wrote[/] {escape(str(out))}: {escape(what)}", highlight=False, soft_wrap=True)
    if report.dropped:
        dropped = out.with_name(out.stem + ".dropped.jsonl")
        write_cases(dropped, report.dropped)
        console.print(f"Dropped drafts, each with its reason (to review or rescue): {escape(str(dropped))}",
                      highlight=False, soft_wrap=True)
    for reason, count in report.rejected.most_common():
        console.print(f"   dropped {count}: {escape(reason)}", highlight=False)
    if report.kept < n:
        err_console.print(f"[yellow]warning:[/] {report.kept} of the {n} cases wanted — "
                          + ("the documents gave no more usable drafts; add documents or use a stronger "
                             "--generator" if from_log is None else "the log has no more distinct questions"),
                          highlight=False)
