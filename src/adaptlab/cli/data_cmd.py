"""Data commands, grouped under `adaptlab data`: import eval data (SQuAD, CSV), convert training data (SNIPS,
CLINC150-style intents, CSV), and `data check` — is the training data ready to fine-tune on?

The import commands stay registered at the top level as well (hidden), where the README and older scripts
call them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from adaptlab.finetune.checks import CheckReport

data_app = typer.Typer(
    help="Training and eval data: import, convert, and check before fine-tuning (`adaptlab data check`).",
    no_args_is_help=True,
)


# ------------------------------------------------------------------------------------------- importers


def import_squad(
    source: str = typer.Argument(..., help="SQuAD-format JSON (e.g. COVID-QA's covid_qa_public.json)."),
    out_dir: str = typer.Argument(..., help="Folder to write articles/<id>.txt and questions.jsonl into."),
) -> None:
    """Write each article as a text file (to ingest) and the questions as JSONL with their gold article."""
    from adaptlab.cli.main import console
    from adaptlab.datasets.squad import write_articles

    articles, questions = write_articles(source, out_dir)
    console.print(f"{articles} articles → {out_dir}/articles/, {questions} questions → {out_dir}/questions.jsonl")


def import_squad_cases(
    source: str = typer.Argument(..., help="SQuAD-format JSON (e.g. COVID-QA's covid_qa_public.json)."),
    out: str = typer.Argument(..., help="Cases JSONL file to write."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Keep only the first N questions."),
) -> None:
    """Write eval cases (question, answers, gold article file) for `adaptlab eval`."""
    from adaptlab.cli.main import console
    from adaptlab.eval.cases import import_squad_cases as run_import

    count = run_import(source, out, limit=limit)
    console.print(f"{count} cases → {out}", highlight=False)


def import_csv(
    source: str = typer.Argument(..., help="CSV file with a header row, one labelled text per row."),
    out: str = typer.Argument(..., help="Cases JSONL file to write."),
    text_column: str = typer.Option("text", "--text-column", help="Column holding the input text."),
    label_column: str = typer.Option("label", "--label-column", help="Column holding the expected label."),
    id_column: str | None = typer.Option(
        None, "--id-column", help="Column holding a unique case id (default: <file>:<line>)."
    ),
    delimiter: str | None = typer.Option(
        None, "--delimiter", help="Field separator (default: detect , ; or tab). Use '\\t' for tab."
    ),
) -> None:
    """Write classification eval cases (text → label) from a labelled CSV."""
    from adaptlab.cli.main import console
    from adaptlab.eval.cases import import_csv_cases

    count = import_csv_cases(source, out, text_column=text_column, label_column=label_column,
                             id_column=id_column, delimiter=_delimiter(delimiter))
    console.print(f"{count} cases → {out}", highlight=False)


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    # A literal tab is awkward to type in a shell, so accept the escape too.
    value = {"\\t": "\t", "tab": "\t"}.get(value, value)
    if len(value) != 1:
        raise typer.BadParameter("must be a single character", param_hint="--delimiter")
    return value


# ------------------------------------------------------------------------------------------ converters


@data_app.command("convert-snips")
def convert_snips(
    snips_dir: str = typer.Argument(..., help="Folder of SNIPS 2017 train_<Intent>_full.json / "
                                    "validate_<Intent>.json."),
    out_dir: str = typer.Argument(..., help="Folder to write train.jsonl, fewshot.jsonl, eval.jsonl, schema.json, "
                                  "system_prompt.txt into."),
    train_per_intent: int = typer.Option(60, "--train-per-intent", min=0, help="Training examples per intent."),
    eval_per_intent: int = typer.Option(30, "--eval-per-intent", min=0,
                                        help="Eval cases per intent (from the validate files only)."),
    fewshot_per_intent: int = typer.Option(2, "--fewshot-per-intent", min=0, help="Few-shot examples per intent."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
) -> None:
    """SNIPS → a text-to-JSON {intent, slots} task: chat training data, few-shot examples and eval cases."""
    from rich.table import Table

    from adaptlab.cli.main import console
    from adaptlab.datasets.snips import convert_snips as run_convert

    split = run_convert(snips_dir, out_dir, train_per_intent=train_per_intent, eval_per_intent=eval_per_intent,
                        fewshot_per_intent=fewshot_per_intent, seed=seed)
    table = Table("intent", "train", "few-shot", "eval", title=f"SNIPS → {out_dir}")
    for intent, counts in split.per_intent.items():
        table.add_row(intent, str(counts["train"]), str(counts["fewshot"]), str(counts["eval"]))
    table.add_row("[bold]total", str(split.train), str(split.fewshot), str(split.eval))
    console.print(table)
    console.print(f"skipped {split.dropped_overlap} training utterance(s) that are also eval ones and "
                  f"{split.dropped_duplicates} repeat(s); wrote {split.train_path}, {split.fewshot_path}, "
                  f"{split.eval_path}, {split.schema_path}, {split.system_prompt_path}", highlight=False)


@data_app.command("convert-csv")
def convert_csv(
    source: str = typer.Argument(..., help="CSV file with a header row, one example per row."),
    out: str = typer.Argument(..., help="Training JSONL (chat format) to write."),
    prompt_column: str = typer.Option("prompt", "--prompt-column", help="Column holding the user's text."),
    completion_column: str = typer.Option("completion", "--completion-column",
                                          help="Column holding the reply to learn."),
    label_column: str | None = typer.Option(None, "--label-column", help="Column holding a class label (optional)."),
    system_prompt: str | None = typer.Option(None, "--system-prompt",
                                             help="System turn to put first in every example."),
    delimiter: str | None = typer.Option(
        None, "--delimiter", help="Field separator (default: detect , ; or tab). Use '\\t' for tab."
    ),
) -> None:
    """CSV rows → chat training examples (every bad row is reported at once; nothing written until all are good)."""
    from adaptlab.cli.main import console
    from adaptlab.datasets.intents import convert_csv as run_convert

    count = run_convert(source, out, prompt_column=prompt_column, completion_column=completion_column,
                        label_column=label_column, system_prompt=system_prompt, delimiter=_delimiter(delimiter))
    console.print(f"{count} examples → {out}", highlight=False)


@data_app.command("convert-intents")
def convert_intents(
    source: str = typer.Argument(..., help="Intent data in CLINC150 form: {\"train\": [[text, intent], ...], ...}."),
    out: str = typer.Argument(..., help="Training JSONL (chat format) to write."),
    split: str = typer.Option("train", "--split", help="Which split to convert (train, val, test, oos_train, ...)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Keep N examples (a seeded random sample)."),
    seed: int = typer.Option(0, "--seed", help="Shuffling seed."),
) -> None:
    """Labelled intents → chat training examples (system prompt lists the labels; the reply is the label)."""
    from adaptlab.cli.main import console
    from adaptlab.datasets.intents import convert_intents as run_convert

    count = run_convert(source, out, split=split, limit=limit, seed=seed)
    console.print(f"{count} examples → {out}", highlight=False)


# ------------------------------------------------------------------------------------------------ check


@data_app.command("check")
def check(
    ctx: typer.Context,
    # Annotated: a list default built by a call is what ruff's B008 flags.
    files: Annotated[list[str], typer.Argument(help="Training JSONL file(s): chat, prompt/completion or preference.")],
    eval_path: str | None = typer.Option(None, "--eval", help="Held-out eval cases (JSONL) to check leakage against."),
    fewshot_path: str | None = typer.Option(None, "--fewshot", help="Few-shot examples ({question, answer} JSONL)."),
    cache_seed_path: str | None = typer.Option(
        None, "--cache-seed", help="Questions seeded into a semantic cache (JSONL with question or query)."
    ),
    fix: str | None = typer.Option(
        None, "--fix", help="Write a copy of the training data without duplicates and leaked examples here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (for scripts) instead of tables."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Context limit per example after the chat template (default: "
        "generator.n_ctx, 2048 unless configured)."
    ),
    no_tokens: bool = typer.Option(False, "--no-tokens", help="Skip token counts (no tokenizer is loaded)."),
    min_examples: int = typer.Option(200, "--min-examples", min=1, help="Clean examples needed to be READY."),
    jaccard: float = typer.Option(0.8, "--jaccard", min=0.01, max=1.0,
                                  help="Word-set Jaccard similarity from which two inputs are near duplicates."),
) -> None:
    """Check training data before fine-tuning: duplicates, leakage into the eval set, format, labels, lengths.

    Verdict READY needs ≥ --min-examples clean examples (after dropping duplicates and leaked ones), an eval
    set, no leakage and no format problems. Exit code: 0 READY, 1 NOT READY (also 1 when a file cannot be read).
    """
    from adaptlab.cli.main import console, err_console
    from adaptlab.finetune.checks import check_datasets, write_fixed

    counter = None
    limit = max_tokens
    truncation = None
    if not no_tokens:
        from adaptlab.cli.common import load_project
        from adaptlab.finetune.tokens import ChatTokenCounter

        project = load_project(ctx)
        config = project.config
        limit = max_tokens or config.generator.n_ctx
        train_settings = getattr(config, "train", None)
        base = getattr(train_settings, "base", "") or config.generator.model_path
        truncation = getattr(train_settings, "max_length", None)
        counter = ChatTokenCounter(base, cache_dir=project.home / "models")
    report = check_datasets(
        [*files], eval_path=eval_path, fewshot_path=fewshot_path, cache_seed_path=cache_seed_path,
        near_duplicate_jaccard=jaccard, token_counter=counter, max_tokens=limit, min_examples=min_examples,
        truncation_length=truncation,
    )
    fixed = write_fixed(report, fix) if fix else None
    if as_json:
        data = report.to_dict()
        if fixed is not None:
            data["fix"] = {"out": str(fixed.out), "kept": fixed.kept, "dropped_duplicates": fixed.dropped_duplicates,
                           "dropped_leaked": fixed.dropped_leaked}
        if counter is not None:
            data["tokenizer"] = {"loaded_from": counter.loaded_from, "load_seconds": counter.load_seconds}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_report(report, console)
        if fixed is not None:
            console.print(f"\nwrote {fixed.kept} examples to {fixed.out} (dropped {fixed.dropped_duplicates} "
                          f"duplicate(s), {fixed.dropped_leaked} leaked) — check it: adaptlab data check {fixed.out}"
                          + (f" --eval {eval_path}" if eval_path else ""), highlight=False)
        if counter is not None and counter.loaded_from == "gguf":
            err_console.print(f"[dim]tokenizer rebuilt from the GGUF in {counter.load_seconds:.1f} s and cached "
                              "for next time[/]", highlight=False)
    raise typer.Exit(0 if report.ready else 1)


MAX_FINDINGS_SHOWN = 40


def _print_report(report: CheckReport, console: Console) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    sets = Table("set", "file", "records", "format", "version", title="Data sets", title_justify="left")
    for summary in report.sets:
        records = str(summary.records) + (f" ({summary.invalid} invalid)" if summary.invalid else "")
        sets.add_row(summary.role, summary.path, records, summary.kind or "", summary.version)
    console.print(sets)
    console.print(f"{report.examples} valid training examples, {report.clean} clean (after dropping "
                  f"{report.examples - report.clean} duplicate/leaked)", highlight=False)

    if report.findings:
        ordered = sorted(report.findings, key=lambda f: f.severity != "error")  # stable: errors first
        problems = Table("", "where", "problem", "other side", "fix", title="Problems", title_justify="left")
        for finding in ordered[:MAX_FINDINGS_SHOWN]:
            mark = "[red]error[/]" if finding.severity == "error" else "[yellow]warn[/]"
            problems.add_row(mark, finding.where or "", finding.message, finding.other or "", finding.fix)
        console.print(problems)
        if len(ordered) > MAX_FINDINGS_SHOWN:
            console.print(f"… and {len(ordered) - MAX_FINDINGS_SHOWN} more (--json lists all)", highlight=False)
    else:
        console.print("No problems found.")

    if report.label_counts:
        total = sum(report.label_counts.values())
        balance = Table("label", "examples", "share", title="Class balance", title_justify="left")
        for label, count in report.label_counts.items():
            balance.add_row(label, str(count), f"{count / total:.1%}")
        console.print(balance)
        if report.balance_ratio is not None:
            console.print(f"most / least frequent: {report.balance_ratio:.1f}", highlight=False)

    if report.lengths is not None:
        stats = report.lengths
        console.print(f"\nTokens per example (after the chat template): min {stats.minimum}, p50 {stats.p50}, "
                      f"p95 {stats.p95}, max {stats.maximum}"
                      + (f"; {stats.over_limit} over the limit of {stats.max_tokens}" if stats.max_tokens else ""),
                      highlight=False)
        widest = max(n for _, _, n in stats.histogram) or 1
        for low, high, count in stats.histogram:
            console.print(f"  {low:>6}–{high:<6} {'█' * round(30 * count / widest):<30} {count}", highlight=False)

    verdict = Text("READY" if report.ready else "NOT READY", style="bold green" if report.ready else "bold red")
    body = Text.assemble(verdict, *(("\n• " + reason) for reason in report.reasons))
    console.print(Panel(body, title="verdict", border_style="green" if report.ready else "red", expand=False))


def register(app: typer.Typer) -> None:
    # Top level too, hidden: the README and existing scripts call these by their top-level names.
    for name, command in (("import-squad", import_squad), ("import-squad-cases", import_squad_cases),
                          ("import-csv", import_csv)):
        app.command(name, hidden=True)(command)
        data_app.command(name)(command)
    app.add_typer(data_app, name="data", help="Training and eval data: import, convert, and check before "
                  "fine-tuning (`adaptlab data check`).")
