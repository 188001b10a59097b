"""`adaptlab serve`: the OpenAI-compatible server; `adaptlab api-key`: a new API key and its digest."""

from __future__ import annotations

import gc
import ipaddress
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        config_file: Path | None = typer.Option(
            None, "--config", "-c", help="adaptlab.toml with the strategies to serve (default: the global --config, "
            "else ./adaptlab.toml)."),
        host: str | None = typer.Option(None, "--host", help="Interface to listen on (default: serve.host, "
                                        "127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", help="TCP port (default: serve.port, 8000)."),
        access_log: bool = typer.Option(False, "--access-log", help="Log every request (costs throughput)."),
    ) -> None:
        """Serve the configured strategies behind an OpenAI-compatible API (chat completions, streaming,
        models, embeddings), each exactly as `adaptlab eval` and `adaptlab bench` measured it."""
        import uvicorn

        from adaptlab.cli.main import console, err_console
        from adaptlab.config import load_config
        from adaptlab.serve.app import create_app
        from adaptlab.serve.guard import server_config

        options = ctx.obj or {}
        config = load_config(config_file or options.get("config"), home=options.get("home"))
        updates = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
        if updates:
            config = config.model_copy(update={"serve": config.serve.model_copy(update=updates)})
        settings = config.serve
        err_console.print("Loading the strategies …", highlight=False)
        app = create_app(config)
        state = app.state.adaptlab
        for model in state.catalog.models.values():
            console.print(f"  serving [bold]{model.id}[/] ({model.kind}, {model.fingerprint})", highlight=False)
        console.print(f"  serving [bold]{state.catalog.embedding_model}[/] (embeddings: "
                      f"{state.project.embedder.name})", highlight=False)
        for skipped in state.catalog.skipped:
            err_console.print(f"  [yellow]not served[/] {skipped.name}: {skipped.reason}", highlight=False,
                              markup=True, soft_wrap=True)
        if not state.gate.keys.enabled and not _loopback(settings.host):
            err_console.print(f"[yellow]warning:[/] listening on {settings.host} without API keys — anyone who can "
                              f"reach it can use it. Set serve.api_key_hashes or ${settings.api_keys_env}.")
        console.print(f"OpenAI-compatible API on http://{settings.host}:{settings.port}/v1 (metrics: /metrics, "
                      f"health: /healthz). Ctrl-C stops.", highlight=False, soft_wrap=True)
        # The models leave millions of long-lived objects; a full garbage collection walking them stalled every
        # request for ~0.4 s (p99 under load). Freezing them keeps collections to what requests allocate.
        gc.collect()
        gc.freeze()
        try:
            uvicorn.Server(server_config(app, settings, access_log=access_log)).run()
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on; the shutdown was clean
            pass

    @app.command("api-key")
    def api_key() -> None:
        """Make a new random API key: give the key to the client, put only its digest in
        serve.api_key_hashes."""
        from adaptlab.cli.main import console
        from adaptlab.serve.security import new_key

        key, digest = new_key()
        console.print(f"key (give to the client, shown once): {key}", highlight=False, soft_wrap=True)
        console.print(f"digest (adaptlab.toml):  [serve] api_key_hashes = [\"{digest}\"]", highlight=False,
                      markup=False, soft_wrap=True)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
