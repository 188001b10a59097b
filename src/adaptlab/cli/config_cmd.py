"""`adaptlab config`: every setting with its default and description, and the effective values."""

from __future__ import annotations

import json

import typer
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command("config")
    def config(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the effective config."),
               show: bool = typer.Option(False, "--show", help="List every setting (what plain `config` does)."),
               ) -> None:
        """List every setting of adaptlab.toml (name, default, description) or print the effective config."""
        from adaptlab.cli.common import load_project
        from adaptlab.cli.main import console
        from adaptlab.config import describe_settings
        from adaptlab.errors import ConfigError

        if as_json:
            project = load_project(ctx)
            data = project.config.model_dump()
            data["home"] = str(project.config.home_dir())
            print(json.dumps(data, indent=2))
            return
        # The list needs no valid config: a bad adaptlab.toml's error message sends the user here.
        problem: ConfigError | None = None
        try:
            source = load_project(ctx).config.source_path or "defaults: no adaptlab.toml found"
        except ConfigError as exc:
            source, problem = "defaults", exc
        table = Table(title=f"settings ({source})")
        table.add_column("setting")
        table.add_column("default")
        table.add_column("description", overflow="fold")
        for name, default, description in describe_settings():
            table.add_row(name, default, description)
        console.print(table)
        if problem is not None:
            raise problem
