"""`adaptlab models`: what is installed and where."""

from __future__ import annotations

import json

import typer

from adaptlab.cli.common import load_project


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Show the configured generator and embedder, whether they are installed, and where."""
        from dataclasses import asdict

        from adaptlab.cli.main import console
        from adaptlab.models.registry import locate_models

        project = load_project(ctx)
        rows = locate_models(project.config.generator, project.config.embedder)
        if as_json:
            print(json.dumps([asdict(row) for row in rows], indent=2))
        else:
            for row in rows:
                state = "[green]installed[/]" if row.installed else "[red]missing[/]"
                console.print(f"[bold]{row.role}[/]: {row.name} — {state}", highlight=False)
                if row.installed:
                    size = f" ({row.size_mb:.0f} MB)" if row.size_mb else ""
                    console.print(f"  where:   {row.path}{size}", highlight=False, soft_wrap=True)
                    console.print(f"  source:  {row.source}", highlight=False)
                    if row.licence:
                        console.print(f"  licence: {row.licence}", highlight=False)
                else:
                    console.print(f"  [red]{row.source}[/]", highlight=False, soft_wrap=True)
        if not all(row.installed for row in rows):
            raise typer.Exit(1)
