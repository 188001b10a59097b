"""`adaptlab prices`: the price catalog (shipped list prices merged with adaptlab.toml overrides), each price's age,
and a warning about the stale ones."""

from __future__ import annotations

import datetime
import json
from urllib.parse import urlparse

import typer

# Columns per section after key and provider: (header with units, entry attribute, format).
_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "api_models": [("input $/1M tok", "input_per_mtok", "{:,.3f}"), ("output $/1M tok", "output_per_mtok", "{:,.3f}"),
                   ("cache read $/1M tok", "cached_read_per_mtok", "{:,.3f}"),
                   ("cache write $/1M tok", "cache_write_per_mtok", "{:,.3f}"),
                   ("min cached tok", "min_cacheable_tokens", "{:,}")],
    "gpus": [("GPU", "gpu", "{}"), ("$/hour", "usd_per_hour", "{:,.3f}"),
             ("peak BF16 TFLOPS", "peak_tflops", "{:,.0f}"), ("memory GB", "memory_gb", "{:g}")],
    "embedding_apis": [("$/1M tok", "usd_per_mtok", "{:,.3f}"), ("dimension", "dimension", "{:,}")],
    "vector_db": [("$/month", "usd_per_month", "{:,.2f}"), ("$/GB-month", "usd_per_gb_month", "{:,.3f}"),
                  ("capacity GB", "capacity_gb", "{:,.10g}")],
}
_COLUMNS["redis_hosting"] = _COLUMNS["vector_db"]


def _short_source(source: str, width: int = 42) -> str:
    parsed = urlparse(source)
    text = (parsed.netloc.removeprefix("www.") + parsed.path.rstrip("/")) if parsed.netloc else source
    return text if len(text) <= width else text[: width - 1] + "…"


def _age(entry, today: datetime.date) -> int | None:
    return None if entry.as_of is None else (today - entry.as_of).days


def register(app: typer.Typer) -> None:
    @app.command("prices")
    def prices(
        ctx: typer.Context,
        section: str | None = typer.Option(
            None, "--section", "-s",
            help="Only this section: api_models, gpus, embedding_apis, vector_db or redis_hosting."),
        max_age_days: int = typer.Option(
            180, "--max-age-days", min=0, help="Warn about prices older than this many days (or undated)."),
        as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON, with age_days and stale."),
    ) -> None:
        """List the price catalog the cost model uses: list prices with their date and source, and your
        adaptlab.toml overrides. Warns (exit 0) about prices older than --max-age-days."""
        from dataclasses import asdict

        from rich.markup import escape
        from rich.table import Table

        from adaptlab.cli.main import console, err_console
        from adaptlab.config import load_config
        from adaptlab.cost.catalog import SECTIONS, load_catalog

        if section is not None and section not in SECTIONS:
            raise typer.BadParameter(f"unknown section {section!r}; use one of {', '.join(SECTIONS)}",
                                     param_hint="--section")
        options = ctx.obj or {}
        config = load_config(options.get("config"), home=options.get("home"))
        origin = config.source_path or "adaptlab.toml"
        catalog = load_catalog(config.prices, origin=origin)  # a PriceError is printed (escaped) by cli.main
        today = datetime.date.today()
        sections = [section] if section else list(SECTIONS)
        entries = [(sec, entry) for sec, entry in catalog.entries() if sec in sections]
        stale = [(sec, entry) for sec, entry in catalog.stale(today, max_age_days) if sec in sections]
        stale_ids = {(sec, entry.key) for sec, entry in stale}

        if as_json:
            rows = []
            for sec, entry in entries:
                row = {"section": sec, **asdict(entry)}
                row["as_of"] = entry.as_of.isoformat() if entry.as_of else None
                row.update(age_days=_age(entry, today), stale=(sec, entry.key) in stale_ids,
                           overridden=f"{sec}/{entry.key}" in catalog.overridden)
                rows.append(row)
            print(json.dumps({"today": today.isoformat(), "max_age_days": max_age_days, "entries": rows}, indent=2))
            _warn(err_console, stale, today, max_age_days)
            return

        for sec in sections:
            table = Table(title=sec, title_justify="left", caption_justify="left")
            table.add_column("key", no_wrap=True)
            table.add_column("provider")
            for header, _, _ in _COLUMNS[sec]:
                table.add_column(header, justify="right" if header != "GPU" else "left")
            table.add_column("as of")
            table.add_column("age (days)", justify="right")
            table.add_column("source", overflow="fold")
            overridden_here = False
            for entry in getattr(catalog, sec).values():
                overridden = f"{sec}/{entry.key}" in catalog.overridden
                overridden_here |= overridden
                age = _age(entry, today)
                is_stale = (sec, entry.key) in stale_ids
                table.add_row(
                    f"[bold]{escape(entry.key)}[/] *" if overridden else escape(entry.key),
                    escape(entry.provider),
                    *[escape(fmt.format(getattr(entry, attr))) for _, attr, fmt in _COLUMNS[sec]],
                    entry.as_of.isoformat() if entry.as_of else "[yellow]undated[/]",
                    ("[yellow]" + ("-" if age is None else str(age)) + "[/]") if is_stale else str(age),
                    escape(("adaptlab.toml: " if overridden and entry.source != "adaptlab.toml" else "")
                           + _short_source(entry.source)),
                )
            if overridden_here:
                table.caption = escape(f"* from adaptlab.toml ({origin})")
            console.print(table)
        _warn(console, stale, today, max_age_days)


def _warn(out, stale, today: datetime.date, max_age_days: int) -> None:
    """One yellow line for the prices older than max_age_days, one for the undated ones (exit code stays 0)."""
    old = [(sec, entry) for sec, entry in stale if entry.as_of is not None]
    undated = [(sec, entry) for sec, entry in stale if entry.as_of is None]
    if old:
        sec, oldest = old[0]
        out.print(f"{len(old)} price{'s are' if len(old) != 1 else ' is'} older than {max_age_days} days "
                  f"(oldest: {oldest.key}, as_of {oldest.as_of.isoformat()}) — check the sources and override "
                  f"them in adaptlab.toml [prices.{sec}.\"{oldest.key}\"] with the current price, as_of and source.",
                  style="yellow", markup=False, highlight=False, soft_wrap=True)
    if undated:
        names = ", ".join(f"{sec}/{entry.key}" for sec, entry in undated[:5]) + (", …" if len(undated) > 5 else "")
        many = len(undated) != 1
        out.print(f"{len(undated)} price{'s have' if many else ' has'} no as_of date ({names}) — add "
                  f"as_of = {today.isoformat()} (the day you checked the price) to {'their' if many else 'its'} "
                  f"adaptlab.toml [prices.SECTION.\"KEY\"] entr{'ies' if many else 'y'}.",
                  style="yellow", markup=False, highlight=False, soft_wrap=True)
