"""`adaptlab demo`: `adaptlab bench` end to end on bundled sample data (COVID-QA + SNIPS), one report."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        quick: bool = typer.Option(False, "--quick", help="Smaller samples and 6 training steps (about 9 minutes on "
                                   "2 cores) instead of the full demo (about 30 minutes)."),
        as_json: bool = typer.Option(False, "--json", help="Print the headline numbers as JSON."),
    ) -> None:
        """Bench prompt, RAG and fine-tuned strategies, each with and without the answer cache, on bundled
        sample data (COVID-QA articles, Apache-2.0; SNIPS voice requests, CC0), price them and recommend one per
        task — the whole of `adaptlab bench`, written to one HTML report."""

        from adaptlab.cli.bench_cmd import interrupted, print_results
        from adaptlab.cli.common import stage_progress
        from adaptlab.cli.main import console
        from adaptlab.config import load_config
        from adaptlab.demo import run_demo

        options = ctx.obj or {}
        config = load_config(options.get("config"), home=options.get("home"))
        try:
            with stage_progress() as (progress, on_progress):
                outcome = run_demo(config.home_dir(), quick=quick, threads=config.runtime.threads,
                                   progress=on_progress,
                                   on_stage=lambda text: progress.console.print(f"[bold]==>[/] {text}",
                                                                                highlight=False))
        except KeyboardInterrupt:
            interrupted()
        if as_json:
            print(outcome.summary().model_dump_json(indent=2))
            return
        for task in outcome.tasks:
            console.print()
            print_results(console, task.results)
        console.print(f"\n[bold]Report:[/] {outcome.report_path}\n"
                      f"demo finished in {outcome.seconds / 60:.1f} min, peak memory {outcome.peak_rss_mb:,.0f} MB",
                      highlight=False, soft_wrap=True)
