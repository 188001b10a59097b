"""Data import commands: SQuAD-format QA → article files + questions (`import-squad`) or eval cases
(`import-squad-cases`), and a labelled CSV → classification eval cases (`import-csv`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("import-squad")
    def import_squad(
        source: str = typer.Argument(..., help="SQuAD-format JSON (e.g. COVID-QA's covid_qa_public.json)."),
        out_dir: str = typer.Argument(..., help="Folder to write articles/<id>.txt and questions.jsonl into."),
    ) -> None:
        """Write each article as a text file (to ingest) and the questions as JSONL with their gold article."""
        from adaptlab.cli.main import console
        from adaptlab.datasets.squad import write_articles

        articles, questions = write_articles(source, out_dir)
        console.print(f"{articles} articles → {out_dir}/articles/, {questions} questions → {out_dir}/questions.jsonl")

    @app.command("import-squad-cases")
    def import_squad_cases(
        source: str = typer.Argument(..., help="SQuAD-format JSON (e.g. COVID-QA's covid_qa_public.json)."),
        out: str = typer.Argument(..., help="Cases JSONL file to write."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Keep only the first N questions."),
    ) -> None:
        """Write eval cases (question, answers, gold article file) for `adaptlab eval`."""
        from adaptlab.cli.main import console
        from adaptlab.eval.cases import import_squad_cases as run_import

        count = run_import(source, out, limit=limit)
        console.print(f"{count} cases → {out}", highlight=False)

    @app.command("import-csv")
    def import_csv(
        source: str = typer.Argument(..., help="CSV file with a header row, one labelled text per row."),
        out: str = typer.Argument(..., help="Cases JSONL file to write."),
        text_column: str = typer.Option("text", "--text-column", help="Column holding the input text."),
        label_column: str = typer.Option("label", "--label-column", help="Column holding the expected label."),
        id_column: str | None = typer.Option(
            None, "--id-column", help="Column holding a unique case id (default: <file>:<line>)."
        ),
        delimiter: str | None = typer.Option(
            None, "--delimiter", help="Field separator (default: detect , ; or tab). Use '\\t' for tab."
        ),
    ) -> None:
        """Write classification eval cases (text → label) from a labelled CSV."""
        from adaptlab.cli.main import console
        from adaptlab.eval.cases import import_csv_cases

        if delimiter is not None:
            # A literal tab is awkward to type in a shell, so accept the escape too.
            delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
            if len(delimiter) != 1:
                raise typer.BadParameter("must be a single character", param_hint="--delimiter")
        count = import_csv_cases(source, out, text_column=text_column, label_column=label_column,
                                 id_column=id_column, delimiter=delimiter)
        console.print(f"{count} cases → {out}", highlight=False)
