"""`adaptlab advise`: price every strategy over the horizon and recommend one, with its reasons."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("advise")
    def advise_command(
        ctx: typer.Context,
        workload: Path = typer.Option(..., "--workload", "-w", help="Workload TOML: queries/day, knowledge "
                                      "changes, citations, labelled examples, budget, deployment "
                                      "(see docs/guide/cost.md)."),
        from_run: str | None = typer.Option(
            None, "--from", help="A bench/eval run (results.json, its folder, or its id under <home>/eval/): "
            "price measured tokens and rank by measured quality. Without it every figure is an estimate."),
        out: Path | None = typer.Option(None, "--out", help="Folder for advice.json, advice.md and the charts "
                                           "(default <home>/advice/<workload file name>)."),
        charts: bool = typer.Option(True, "--charts/--no-charts", help="Draw the three SVG charts."),
        as_json: bool = typer.Option(False, "--json", help="Print advice.json to stdout instead of the tables."),
    ) -> None:
        """Rank prompt, RAG, fine-tuned and fine-tuned + RAG strategies (with and without the answer cache) by
        measured quality and 12-month cost of ownership, and say why."""

        from adaptlab.cli.main import console, err_console
        from adaptlab.config import load_config
        from adaptlab.cost.advise import advise
        from adaptlab.cost.catalog import load_catalog
        from adaptlab.cost.evidence import find_run, load_run
        from adaptlab.cost.inputs import build_scenario
        from adaptlab.cost.report import write_report
        from adaptlab.cost.workload import load_workload, resolve_relative

        options = ctx.obj or {}
        config = load_config(options.get("config"), home=options.get("home"))
        spec = load_workload(workload)
        catalog = load_catalog(config.prices)
        run = load_run(find_run(from_run, config.home_dir())) if from_run else None
        predicted = None
        if spec.cache.query_log and spec.cache.hit_rate is None:
            predicted = _predict_hit_rate(config, spec, resolve_relative(spec, spec.cache.query_log))
        scenario = build_scenario(spec, catalog, run, predicted_hit_rate=predicted)
        with err_console.status("Pricing strategies, break-even and sensitivity…"):
            advice = advise(scenario)
        out_dir = out or config.home_dir() / "advice" / workload.stem  # the file name: no spaces or colons
        variants = [c.variant for c in scenario.candidates]
        paths = write_report(advice, scenario.inputs, variants, out_dir, charts=charts)
        if as_json:
            print(advice.record().model_dump_json(indent=2))
            return
        _print(console, advice)
        console.print(f"\nWritten: {', '.join(str(p) for p in paths)}", highlight=False, soft_wrap=True)


def _predict_hit_rate(config, spec, log_path: Path) -> tuple[float, str]:
    """The answer cache's hit rate replayed over the team's query log, as `adaptlab cache analyze` does."""
    from adaptlab.cache.analyze import analyze_log, load_query_log
    from adaptlab.project import Project

    log = load_query_log(log_path)
    embedder = Project(config).embedder
    threshold = config.cache.semantic_threshold if spec.cache.semantic else 1.0  # 1.0: exact repeats only
    analysis = analyze_log(log, embedder, threshold=threshold, guard=config.cache.guard,
                           ttls=[spec.cache.ttl_days * 86_400])
    rate = analysis.ttl_results[0].hit_rate.value or 0.0
    return rate, f"predicted from {log_path.name}, {analysis.n_queries:,} queries"


def _print(console, advice) -> None:
    from rich.markup import escape
    from rich.table import Table

    from adaptlab.cost.report import quality_text
    from adaptlab.numbers import usd

    label = " — [yellow]estimates[/]" if advice.estimate else ""
    table = Table(title=f"{escape(advice.title)}: {advice.queries_per_day:,.0f} queries/day, "
                        f"{advice.months} months{label}")
    for column in ("rank", "strategy", f"quality ({advice.metric or '—'})", "TCO", "$/1k answers", "month 1"):
        table.add_column(column, overflow="fold")
    for entry in advice.ranked:
        rank = str(entry.rank) if entry.rank is not None else "[dim]excluded[/]"
        table.add_row(rank, escape(entry.name), quality_text(entry), usd(entry.tco.total),
                      usd(1000 * entry.tco.usd_per_answer), usd(entry.tco.monthly_totals[0]))
    console.print(table)
    for entry in advice.ranked:
        head = f"{entry.rank}." if entry.rank is not None else "excluded:"
        reasons = entry.reasons if entry.rank is not None else entry.excluded
        console.print(f"[bold]{head} {escape(entry.name)}[/]", highlight=False)
        for reason in reasons:
            console.print(f"   • {escape(reason)}", highlight=False)
    if advice.winner is not None:
        console.print(f"[bold green]Recommendation:[/] {escape(advice.winner.name)} "
                      f"({usd(advice.winner.tco.total)} over {advice.months} months)", highlight=False)
    else:
        console.print("[bold red]No strategy qualifies[/] under these constraints.")
    flips = [row for row in advice.sensitivity if row.changes_winner]
    if flips:
        console.print("Inputs that change the winner when moved ±50%: " + "; ".join(
            f"{row.label} (−50% → {row.low_winner}, +50% → {row.high_winner})" for row in flips), highlight=False)
    elif advice.sensitivity:
        console.print("No input moved ±50% changes the winner.")
    for note in advice.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
