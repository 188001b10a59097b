"""`adaptlab` console command: a typer app; each command is a thin wrapper over one library function."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from adaptlab.errors import AdaptlabError
from adaptlab.runtime import quiet_third_party_output

quiet_third_party_output()  # before any command imports transformers, tqdm or huggingface_hub

app = typer.Typer(
    name="adaptlab",
    help="Measure prompting, RAG, fine-tuning and caching on your own data; price them; serve the winner.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: str | None = typer.Option(None, "--config", "-c", help="Config file (default: ./adaptlab.toml)."),
    home: str | None = typer.Option(
        None, "--home", envvar="ADAPTLAB_HOME", help="Project folder for index, logs and caches (default ./.adaptlab)."
    ),
) -> None:
    ctx.obj = {"config": config, "home": home}


def _register() -> None:
    # Imported here so `adaptlab --help` stays fast: commands import heavy libraries only when run.
    from adaptlab.cli import (
        advise_cmd,
        bench_cmd,
        cache_cmd,
        cases_cmd,
        config_cmd,
        data_cmd,
        demo_cmd,
        doctor_cmd,
        eval_cmd,
        ingest_cmd,
        models_cmd,
        prices_cmd,
        query_cmd,
        serve_cmd,
        train_cmd,
    )

    for module in (demo_cmd, bench_cmd, models_cmd, doctor_cmd, ingest_cmd, query_cmd, eval_cmd, cases_cmd, train_cmd,
                   data_cmd, cache_cmd, prices_cmd, advise_cmd, serve_cmd, config_cmd):
        module.register(app)


_register()


def main() -> None:
    try:
        app()
    except AdaptlabError as exc:
        # Escaped: messages quote TOML tables such as [prices.gpus."KEY"], which rich would read as markup.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/] — committed work is kept; run the command again to finish.")
        sys.exit(130)


if __name__ == "__main__":
    main()
