"""`adaptlab cache ...`: manage the answer cache (stats, clear) and measure whether caching pays
(sweep, analyze, prompt-sim — registered from cache_analysis_cmd)."""

from __future__ import annotations

import json

import typer

cache_app = typer.Typer(
    help="The answer cache: stats, clear, and measurements (threshold sweep, query-log analysis, prompt caching).",
    no_args_is_help=True,
)


@cache_app.command("clear")
def clear(
    ctx: typer.Context,
    source: str | None = typer.Option(None, "--source", help="Delete the answers built from this document "
                                         "(or from any document under this folder)."),
    all_entries: bool = typer.Option(False, "--all", help="Delete every cached answer."),
) -> None:
    """Delete cached answers: those built from one source document, or all of them."""
    from pathlib import Path

    from adaptlab.cli.common import load_project
    from adaptlab.cli.main import console

    if bool(source) == all_entries:
        raise typer.BadParameter("give exactly one of --source PATH or --all")
    project = load_project(ctx)
    target = None
    if source:
        # Documents are recorded by their resolved path at ingest time.
        target = str(Path(source).expanduser().resolve())
    deleted = project.cache.clear(source=target)
    where = f"built from {target}" if target else "in total"
    console.print(f"{deleted} cached answer(s) deleted {where} ({project.cache.backend.location}).",
                  highlight=False)


@cache_app.command("stats")
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Entries in the cache, and hits, misses and tokens saved from the call log."""
    from adaptlab.cli.common import load_project
    from adaptlab.cli.main import console

    project = load_project(ctx)
    summary = cache_summary(project)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    console.print(f"[bold]{summary['backend']}[/] {summary['location']}: {summary['entries']} entries "
                  f"({summary['contexts']} context(s), {summary['with_sources']} built from documents)",
                  highlight=False)
    console.print(f"lookups {summary['lookups']}: {summary['hits']} hits ({summary['exact_hits']} exact, "
                  f"{summary['semantic_hits']} semantic), {summary['misses']} misses, "
                  f"{summary['guard_rejections']} semantic matches refused by the guard; hit rate "
                  f"{summary['hit_rate']:.1%}; tokens saved {summary['tokens_saved']:,}", highlight=False)


def cache_summary(project) -> dict:
    stats = project.cache.stats()
    events = project.logger.rows("cache")
    hits = [e for e in events if e["detail"].get("status") in ("exact", "semantic")]
    misses = [e for e in events if e["detail"].get("status") == "miss"]
    lookups = len(hits) + len(misses)
    return {
        "backend": stats.backend if stats else project.config.cache.backend,
        "location": stats.location if stats else "unavailable",
        "entries": stats.entries if stats else 0, "contexts": stats.contexts if stats else 0,
        "with_sources": stats.with_sources if stats else 0,
        "lookups": lookups, "hits": len(hits), "misses": len(misses),
        "exact_hits": sum(e["detail"].get("status") == "exact" for e in hits),
        "semantic_hits": sum(e["detail"].get("status") == "semantic" for e in hits),
        "guard_rejections": sum(bool(e["detail"].get("rejected")) for e in events),
        "hit_rate": len(hits) / lookups if lookups else 0.0,
        "tokens_saved": sum((e["prompt_tokens"] or 0) + (e["completion_tokens"] or 0) for e in hits),
    }


def register(app: typer.Typer) -> None:
    from adaptlab.cli import cache_analysis_cmd

    cache_analysis_cmd.register(cache_app)
    app.add_typer(cache_app, name="cache")
