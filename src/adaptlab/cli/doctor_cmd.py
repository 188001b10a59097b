"""`adaptlab doctor`: check that this install can answer (llama.cpp build, generator, embedder)."""

from __future__ import annotations

import typer

from adaptlab.cli.common import load_project

_MARK = {"ok": "[green]ok[/]  ", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(ctx: typer.Context) -> None:
        """Check the install: the llama.cpp build is portable, the generator answers one token (in a child
        process, so a crashing build is reported with its cause), the embedder returns a vector."""
        from rich.markup import escape

        from adaptlab.cli.main import console
        from adaptlab.doctor import doctor as run_doctor

        project = load_project(ctx)
        report = run_doctor(project.config)
        for check in report.checks:
            console.print(f"{_MARK[check.status]} [bold]{check.name}[/]: {escape(check.detail)}", highlight=False,
                          soft_wrap=True)
            if check.fix and check.status in ("warn", "fail"):
                console.print(f"      fix: {escape(check.fix)}", highlight=False, soft_wrap=True)
        if not report.ok:
            raise typer.Exit(1)
