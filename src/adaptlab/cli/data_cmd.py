"""`adaptlab import-squad`: turn SQuAD-format QA data into article files + questions with gold sources."""

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
