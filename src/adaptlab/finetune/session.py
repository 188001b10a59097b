"""`adaptlab train sft|dpo` as a library function: data → base model → LoRA training → GGUF export →
MLflow run + registered adapter version with its lineage (dataset version → run → adapter version).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adaptlab.config import TrainConfig
from adaptlab.finetune.base_model import BaseModel, prepare_base
from adaptlab.finetune.data import TrainingExample, fingerprint, load_training_file
from adaptlab.finetune.distributed import threads_per_process, train_in_processes
from adaptlab.finetune.train import TrainProgress, TrainResult, train
from adaptlab.project import Project

# (stage, detail) for what happens before and after the training loop (loading, exporting, recording)
StageCallback = Callable[[str], None]


@dataclass
class TrainRequest:
    method: Literal["sft", "dpo"]
    data: Path
    eval_data: Path | None = None
    name: str = ""  # registered model name; default adaptlab-<data file stem>
    export: bool = True
    resume: Path | None = None  # a run folder to continue from its last checkpoint
    max_steps: int | None = None
    epochs: float | None = None
    run_dir: Path | None = None  # None: <home>/runs/<time>-<method>-<name>
    processes: int | None = None  # override of [train] processes (data-parallel training processes)
    # An Accelerate config file (FSDP, DeepSpeed, multi-GPU): the processes are started by `accelerate launch` with it
    accelerate_config: Path | None = None
    # [train] settings changed for this run only (the bench's seed per adapter, its checkpoint metric); validated
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingReport:
    result: TrainResult
    base: BaseModel
    data_fingerprint: str
    eval_fingerprint: str | None
    gguf_adapter: Path | None
    run_id: str | None
    model_name: str
    model_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.result.to_dict(), "base": self.base.source, "base_sha256": self.base.sha256,
            "data_fingerprint": self.data_fingerprint, "eval_fingerprint": self.eval_fingerprint,
            "gguf_adapter": str(self.gguf_adapter) if self.gguf_adapter else None, "mlflow_run_id": self.run_id,
            "registered_model": self.model_name, "model_version": self.model_version,
        }


def split_eval(examples: list[TrainingExample], fraction: float, seed: int) -> tuple[list, list]:
    """Hold out `fraction` of the training file for eval loss (seeded, so a rerun holds out the same lines)."""
    if not fraction or len(examples) < 10:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, int(len(examples) * fraction))])
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])


def run_training(project: Project, request: TrainRequest, *, progress: TrainProgress | None = None,
                 on_stage: StageCallback | None = None) -> TrainingReport:
    config = project.config
    overrides = {k: v for k, v in (("max_steps", request.max_steps), ("epochs", request.epochs),
                                   ("processes", request.processes)) if v is not None}
    settings = TrainConfig.model_validate({**config.train.model_dump(), **request.settings, **overrides})
    # torch's pool, set deliberately: [train].threads per process, else the runtime's threads shared among them
    settings.threads = threads_per_process(config.train.threads, config.runtime.threads, settings.processes)
    stage = on_stage or (lambda _: None)
    stage(f"loading {request.data}")
    examples = load_training_file(request.data)
    data_fingerprint = fingerprint(examples)
    if request.eval_data:
        train_examples, eval_examples = examples, load_training_file(request.eval_data)
        eval_fingerprint: str | None = fingerprint(eval_examples)
    else:
        train_examples, eval_examples = split_eval(examples, settings.eval_fraction, settings.seed)
        eval_fingerprint = None
    stage("preparing the base model (the first time converts the GGUF to fp32: ~20 s)")
    base = prepare_base(settings.base or config.generator.model_path, project.home / "models")
    name = request.name or f"adaptlab-{request.data.stem}"
    run_dir = request.resume or request.run_dir or \
        project.home / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{request.method}-{name}"

    tracker = None
    run_id = None
    if config.tracking.enabled:
        from adaptlab.tracking import MlflowTracker

        tracker = MlflowTracker(config.tracking.uri, config.tracking.train_experiment, project.home)
        run_id = tracker.start(f"{request.method}-{name}", {
            "adaptlab.method": request.method, "adaptlab.data": str(request.data),
            "adaptlab.data_fingerprint": data_fingerprint, "adaptlab.base_sha256": base.sha256,
            "adaptlab.run_dir": str(run_dir)})
    stage(f"training {request.method} on {len(train_examples)} examples ({len(eval_examples)} for eval loss)")
    try:
        if settings.processes > 1 or request.accelerate_config is not None:  # (one process under DeepSpeed too)
            result = train_in_processes(request.method, base.directory, train_examples, eval_examples, settings,
                                        run_dir, progress=progress, resume=request.resume is not None,
                                        max_new_tokens=project.config.generator.max_tokens,
                                        accelerate_config=request.accelerate_config, on_stage=stage)
        else:
            result = train(request.method, base.directory, train_examples, eval_examples, settings, run_dir,
                           progress=progress, resume=request.resume is not None,
                           max_new_tokens=project.config.generator.max_tokens)
    except BaseException:
        if tracker and run_id:
            tracker.end(run_id, "FAILED")
        raise

    gguf_adapter = None
    if request.export and base.gguf_path is not None:
        from adaptlab.finetune.export import export_gguf_lora

        stage("exporting the adapter as a GGUF LoRA for llama.cpp")
        gguf_adapter = export_gguf_lora(result.adapter_dir, base.directory, run_dir / "adapter.gguf").path

    version = None
    if tracker and run_id:
        stage("recording the run and registering the adapter in MLflow")
        version = _record(tracker, run_id, request, settings, result, base, data_fingerprint, eval_fingerprint,
                          gguf_adapter, name)
    project.logger.record("train", model=base.source, prompt_tokens=result.tokens_trained,
                          latency_ms=result.seconds * 1000, method=request.method, steps=result.steps,
                          tokens_per_second=result.tokens_per_second, peak_rss_mb=result.peak_rss_mb,
                          data_fingerprint=data_fingerprint, run_dir=str(run_dir), mlflow_run_id=run_id,
                          hardware=result.hardware, processes=result.processes)
    return TrainingReport(result, base, data_fingerprint, eval_fingerprint, gguf_adapter, run_id, name, version)


def _record(tracker, run_id: str, request: TrainRequest, settings, result: TrainResult, base: BaseModel,
            data_fingerprint: str, eval_fingerprint: str | None, gguf_adapter: Path | None, name: str) -> str:
    params = {f"train.{k}": v for k, v in settings.model_dump().items()}
    params.update({"method": request.method, "base": base.source, "base_sha256": base.sha256,
                   "data": str(request.data), "data_fingerprint": data_fingerprint,
                   "eval_data": str(request.eval_data or ""), "eval_fingerprint": eval_fingerprint or "",
                   "train_examples": result.train_examples, "eval_examples": result.eval_examples,
                   "quantization_used": result.quantization, "processes": result.processes,
                   # examples per optimizer step, over all processes
                   "global_batch_size": settings.batch_size * result.processes * settings.gradient_accumulation})
    metrics = {"wall_seconds": result.seconds, "tokens_trained": result.tokens_trained,
               "tokens_per_second": result.tokens_per_second, "peak_rss_mb": result.peak_rss_mb,
               "steps": result.steps, "trainable_parameters": result.trainable_parameters}
    if result.peak_gpu_memory_mb is not None:
        metrics["peak_gpu_memory_mb"] = result.peak_gpu_memory_mb
    if result.train_loss:
        metrics["final_train_loss"] = result.train_loss[-1][1]
    if result.eval_loss:
        metrics["final_eval_loss"] = result.eval_loss[-1][1]
    tracker.log(run_id, params=params, extra_metrics=metrics)
    tracker.log_series(run_id, "train_loss", result.train_loss)
    tracker.log_series(run_id, "eval_loss", result.eval_loss)
    if result.task_metric:
        tracker.log_series(run_id, f"eval_{result.task_metric_name}", result.task_metric)
    tracker.set_tags(run_id, {f"hardware.{k}": str(v) for k, v in result.hardware.items()})
    source = tracker.log_directory(run_id, result.adapter_dir, "adapter")
    artifacts = [result.run_dir / "train_result.json"] + ([gguf_adapter] if gguf_adapter else [])
    tracker.log(run_id, artifacts=artifacts)
    version = tracker.register(name, source, run_id, {
        "data_fingerprint": data_fingerprint, "base_sha256": base.sha256, "method": request.method,
        "gguf_adapter": str(gguf_adapter or ""), "run_dir": str(result.run_dir)})
    tracker.end(run_id, "FINISHED")
    return version
