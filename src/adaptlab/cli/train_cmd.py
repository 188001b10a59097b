"""`adaptlab train sft|dpo`, `adaptlab runs`, `adaptlab export`: LoRA fine-tuning and its records."""

from __future__ import annotations

from pathlib import Path

import typer

train_app = typer.Typer(help="Fine-tune a LoRA adapter (TRL + PEFT) on the base model; settings in \\[train].",
                        no_args_is_help=True)


def _train(ctx: typer.Context, method: str, data: Path, eval_data: Path | None, name: str, export: bool,
           resume: Path | None, max_steps: int | None, epochs: float | None, processes: int | None,
           accelerate_config: Path | None, as_json: bool) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from adaptlab.cli.common import load_project
    from adaptlab.cli.main import console, err_console
    from adaptlab.finetune.session import TrainRequest, run_training

    project = load_project(ctx)  # click hands the global options (ctx.obj) down to subcommands
    request = TrainRequest(method=method, data=data, eval_data=eval_data, name=name, export=export,  # type: ignore[arg-type]
                           resume=resume, max_steps=max_steps, epochs=epochs, processes=processes,
                           accelerate_config=accelerate_config)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                  transient=as_json) as progress:
        task = progress.add_task(f"Training ({method})", total=None, loss="–")

        def on_step(step: int, total: int, loss: float | None) -> None:
            progress.update(task, completed=step, total=total or None,
                            loss=f"{loss:.4f}" if loss is not None else "–")

        report = run_training(project, request, progress=on_step,
                              on_stage=lambda text: progress.console.print(f"[bold]==>[/] {text}", highlight=False))
    if as_json:
        import json

        print(json.dumps(report.to_dict(), indent=2, default=str))
        return
    r = report.result
    console.print(f"[bold]{method}[/] {r.steps} steps, {r.epochs:.2f} epochs, {r.train_examples} examples in "
                  f"{r.seconds:.0f} s — {r.tokens_trained:,} tokens, {r.tokens_per_second:.0f} tokens/s, peak RSS "
                  f"{r.peak_rss_mb:,.0f} MB"
                  + (f", peak GPU memory {r.peak_gpu_memory_mb:,.0f} MB" if r.peak_gpu_memory_mb is not None else "")
                  + (" (QLoRA: NF4 4-bit base)" if r.quantization == "nf4" else "")
                  + (f" — {r.processes} processes" if r.processes > 1 else ""),
                  highlight=False)
    if r.train_loss:
        console.print(f"loss {r.train_loss[0][1]:.4f} → {r.train_loss[-1][1]:.4f}"
                      + (f"; eval loss {r.eval_loss[-1][1]:.4f}" if r.eval_loss else "")
                      + (" (stopped early)" if r.stopped_early else ""), highlight=False)
    console.print(f"adapter: {r.adapter_dir}" + (f"\nGGUF LoRA for llama.cpp: {report.gguf_adapter}"
                                                 if report.gguf_adapter else ""), highlight=False)
    if report.model_version:
        console.print(f"MLflow: run {report.run_id}, registered {report.model_name} version {report.model_version}"
                      f" (data {report.data_fingerprint[:12]}, base {report.base.short_hash})", highlight=False)
    if report.gguf_adapter:
        from rich.markup import escape

        console.print("evaluate it with a strategy in adaptlab.toml:\n"
                      + escape(f'[strategies.finetuned]\nkind = "finetuned"\nadapter = "{report.gguf_adapter}"'),
                      highlight=False)


def _options():
    return dict(
        eval_data=typer.Option(None, "--eval-data", help="Held-out JSONL for eval loss (default: train.eval_fraction "
                               "of DATA)."),
        name=typer.Option("", "--name", help="Registered model name (default adaptlab-<DATA stem>)."),
        export=typer.Option(True, "--export/--no-export", help="Write the adapter as a GGUF LoRA for llama.cpp."),
        resume=typer.Option(None, "--resume", help="A run folder: continue from its last checkpoint."),
        max_steps=typer.Option(None, "--max-steps", min=1, help="Override train.max_steps."),
        epochs=typer.Option(None, "--epochs", min=0.01, help="Override train.epochs."),
        processes=typer.Option(None, "--processes", min=1, help="Override train.processes: data-parallel training "
                               "processes (gloo on CPU, one GPU each with NCCL); each takes train.batch_size "
                               "examples per step."),
        accelerate_config=typer.Option(None, "--accelerate-config", help="Start the processes with `accelerate "
                                       "launch --config_file` (FSDP, DeepSpeed; see examples/accelerate/) instead "
                                       "of torch.distributed.run."),
        as_json=typer.Option(False, "--json", help="Print the run report as JSON."),
    )


_OPTS = _options()


@train_app.command("sft")
def train_sft(ctx: typer.Context, data: Path = typer.Argument(..., help="Chat or prompt/completion JSONL."),
              eval_data: Path | None = _OPTS["eval_data"], name: str = _OPTS["name"],
              export: bool = _OPTS["export"], resume: Path | None = _OPTS["resume"],
              max_steps: int | None = _OPTS["max_steps"], epochs: float | None = _OPTS["epochs"],
              processes: int | None = _OPTS["processes"], accelerate_config: Path | None = _OPTS["accelerate_config"],
              as_json: bool = _OPTS["as_json"]) -> None:
    """Supervised fine-tuning (loss on the assistant reply only)."""
    _train(ctx, "sft", data, eval_data, name, export, resume, max_steps, epochs, processes, accelerate_config,
           as_json)


@train_app.command("dpo")
def train_dpo(ctx: typer.Context, data: Path = typer.Argument(..., help="Preference JSONL: prompt, chosen, "
                                                              "rejected."),
              eval_data: Path | None = _OPTS["eval_data"], name: str = _OPTS["name"],
              export: bool = _OPTS["export"], resume: Path | None = _OPTS["resume"],
              max_steps: int | None = _OPTS["max_steps"], epochs: float | None = _OPTS["epochs"],
              processes: int | None = _OPTS["processes"], accelerate_config: Path | None = _OPTS["accelerate_config"],
              as_json: bool = _OPTS["as_json"]) -> None:
    """Direct preference optimisation on (prompt, chosen, rejected) pairs."""
    _train(ctx, "dpo", data, eval_data, name, export, resume, max_steps, epochs, processes, accelerate_config,
           as_json)


@train_app.command("export")
def export(ctx: typer.Context, run_dir: Path = typer.Argument(..., help="A training run folder (holds adapter/)."),
           merged: Path | None = typer.Option(None, "--merged", help="Also write base + adapter merged as "
                                              "safetensors into this folder (for vLLM and other HF servers)."),
           gguf: bool = typer.Option(True, "--gguf/--no-gguf", help="(Re)write <run>/adapter.gguf for llama.cpp.")
           ) -> None:
    """Export a trained adapter: GGUF LoRA for llama.cpp and/or a merged safetensors model."""
    from adaptlab.cli.common import load_project
    from adaptlab.cli.main import console
    from adaptlab.errors import ModelNotFoundError
    from adaptlab.finetune.base_model import prepare_base
    from adaptlab.finetune.export import export_gguf_lora, export_merged

    project = load_project(ctx)
    adapter = run_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise ModelNotFoundError(f"No adapter in {run_dir} — pass a folder written by `adaptlab train`.")
    config = project.config
    base = prepare_base(config.train.base or config.generator.model_path, project.home / "models")
    if gguf:
        if base.gguf_path is None:
            raise ModelNotFoundError("The training base is a Hugging Face directory, not a GGUF: llama.cpp has no "
                                     "base to load the adapter onto — use --no-gguf --merged OUT.")
        written = export_gguf_lora(adapter, base.directory, run_dir / "adapter.gguf")
        console.print(f"GGUF LoRA: {written.path} ({written.tensors} tensors, rank {written.rank})", highlight=False)
    if merged:
        console.print(f"merged model: {export_merged(adapter, base.directory, merged)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

    @app.command("runs")
    def runs(ctx: typer.Context, limit: int = typer.Option(20, "--limit", help="Most recent runs shown.")) -> None:
        """Training runs and registered adapter versions (MLflow), newest first."""
        from rich.table import Table

        from adaptlab.cli.common import load_project
        from adaptlab.cli.main import console
        from adaptlab.tracking import MlflowTracker

        project = load_project(ctx)
        tracking = project.config.tracking
        tracker = MlflowTracker(tracking.uri, tracking.train_experiment, project.home)
        table = Table(title="training runs")
        for column in ("run", "name", "status", "steps", "tokens/s", "final loss", "data", "started"):
            table.add_column(column, overflow="fold")  # ids and names stay whole on narrow terminals
        for run in tracker.runs(limit):
            m, t = run.data.metrics, run.data.tags
            started = time_text(run.info.start_time)
            table.add_row(run.info.run_id[:12], run.info.run_name or "", run.info.status,
                          f"{m.get('steps', 0):.0f}", f"{m.get('tokens_per_second', 0):.0f}",
                          f"{m['final_train_loss']:.4f}" if "final_train_loss" in m else "",
                          t.get("adaptlab.data_fingerprint", "")[:12], started)
        console.print(table)
        versions = Table(title="registered adapters")
        for column in ("model", "version", "run", "data", "base", "GGUF LoRA"):
            versions.add_column(column, overflow="fold")
        for version in tracker.model_versions("adaptlab-"):
            tags = version.tags or {}
            versions.add_row(version.name, str(version.version), (version.run_id or "")[:12],
                             tags.get("data_fingerprint", "")[:12], tags.get("base_sha256", "")[:12],
                             tags.get("gguf_adapter", ""))
        console.print(versions)


def time_text(milliseconds: int | None) -> str:
    import datetime

    if not milliseconds:
        return ""
    return datetime.datetime.fromtimestamp(milliseconds / 1000).strftime("%Y-%m-%d %H:%M")
