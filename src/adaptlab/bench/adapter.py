"""The bench's fine-tuned adapters: trained once per (training data, [train] settings, base model, share of the
data, training seed), then reused.

Every adapter of a bench validates on the same split, carved once from the training file (train.eval_fraction,
seeded by train.seed; never the eval cases): its checkpoints are chosen by the task metric on it. The learning
curve's adapters train on nested shares of the rest (the 25% subset is inside the 50% one), in a fixed shuffled
order, so a point differs from the next only by the examples added. Each share trains for the same epochs as the
full set: with train.max_steps, its steps scale with the share.

An adapter lives in <home>/bench/adapters/<fingerprint>/ with the exact training and validation files it saw;
`adapter.json` is written last, so a folder without it is an interrupted run and is trained again from scratch.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptlab.config import AdaptlabConfig
from adaptlab.finetune.data import TrainingExample, load_training_file
from adaptlab.finetune.data import fingerprint as data_fingerprint
from adaptlab.project import Project
from adaptlab.textfiles import write_jsonl_atomic, write_text_atomic

MARKER = "adapter.json"
# [train] settings that change speed, not the adapter
SPEED_ONLY = ("threads", "processes")
# Workload quality metrics the validation scorer computes as they are; others map to the closest it has.
_SAME_METRIC = ("field_accuracy", "field_f1", "token_f1", "exact_match")


@dataclass(frozen=True)
class AdapterSpec:
    """Which of a bench's adapters: a share of the training examples and an offset to train.seed."""

    share: float = 1.0
    seed_offset: int = 0

    @property
    def label(self) -> str:
        if self.share < 1:
            return f"{self.share:.0%} of the data"
        return "all the data" + (f", seed +{self.seed_offset}" if self.seed_offset else "")


FULL = AdapterSpec()


@dataclass(frozen=True)
class AdapterBuild:
    spec: AdapterSpec
    gguf_path: Path
    fingerprint: str
    reused: bool
    seconds: float  # of this call (near 0 when reused)
    training: dict[str, Any]  # the training report as written when it was built (steps, loss, tokens/s, ...)

    @property
    def detail(self) -> str:
        t = self.training
        built = "reused" if self.reused else "trained"
        losses = t.get("train_loss") or []
        loss_text = f", final loss {losses[-1][1]:.3f}" if losses else ""
        best = t.get("best_step")
        chosen = (f", kept step {best} by validation {t.get('task_metric_name')}"
                  if best is not None and t.get("task_metric") else "")
        return (f"{built} LoRA adapter {self.fingerprint[:12]} ({self.spec.label}): {t.get('steps', '?')} steps on "
                f"{t.get('train_examples', '?')} examples in {t.get('seconds', 0):.0f} s, "
                f"{t.get('tokens_per_second', 0):.0f} tokens/s, peak RSS {t.get('peak_rss_mb', 0):.0f} MB"
                f"{loss_text}{chosen}")


def checkpoint_metric_for(quality_metric: str) -> str:
    """The validation scorer's metric closest to the workload's quality metric (label accuracy → exact match of
    the label; anything it cannot compute → 'auto')."""
    if quality_metric.startswith("field.") or quality_metric in _SAME_METRIC:
        return quality_metric
    return "exact_match" if quality_metric == "accuracy" else "auto"


@dataclass(frozen=True)
class BenchSplit:
    """The training file split once for every adapter of a bench."""

    pool: list[TrainingExample]  # in the fixed order nested shares take from
    validation: list[TrainingExample]

    def share(self, share: float) -> list[TrainingExample]:
        return self.pool[: max(1, math.ceil(share * len(self.pool)))]


def bench_split(config: AdaptlabConfig, train_path: Path) -> BenchSplit:
    from adaptlab.finetune.session import split_eval

    examples = load_training_file(train_path)
    pool, validation = split_eval(examples, config.train.eval_fraction, config.train.seed)
    pool = list(pool)
    random.Random(config.train.seed).shuffle(pool)
    return BenchSplit(pool, list(validation))


def training_settings(config: AdaptlabConfig, spec: AdapterSpec, train_examples: int, quality_metric: str,
                      has_validation: bool) -> dict[str, Any]:
    """The [train] settings changed for one bench adapter: its seed, its steps (scaled with its share), and the
    checkpoint chosen by the task metric with evaluations through the run."""
    train = config.train
    settings: dict[str, Any] = {"seed": train.seed + spec.seed_offset}
    steps = train.max_steps
    if steps:
        steps = max(1, round(steps * spec.share))
        settings["max_steps"] = steps
    else:
        per_epoch = math.ceil(train_examples / (train.batch_size * train.gradient_accumulation))
        steps = max(1, math.ceil(per_epoch * train.epochs))
    if has_validation and not train.checkpoint_metric and config.bench.checkpoint_by_task_metric:
        settings["checkpoint_metric"] = checkpoint_metric_for(quality_metric)
    if has_validation and not train.eval_steps and (settings.get("checkpoint_metric") or train.checkpoint_metric):
        settings["eval_steps"] = max(1, steps // 4)  # four evaluations: enough to see whether it still improves
    return settings


def adapter_fingerprint(project: Project, train_path: Path, spec: AdapterSpec = FULL,
                        settings: dict[str, Any] | None = None) -> str:
    config = project.config
    train = {k: v for k, v in config.train.model_dump().items() if k not in SPEED_ONLY}
    parts = {"data": data_fingerprint(train_path), "train": train, "bench_settings": settings or {},
             "share": spec.share, "seed_offset": spec.seed_offset,
             "base": config.train.base or config.generator.model_path or "bundled"}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def ensure_adapter(project: Project, train_path: Path, spec: AdapterSpec = FULL, *, quality_metric: str = "",
                   split: BenchSplit | None = None,
                   progress: Callable[[int, int, float | None], None] | None = None,
                   on_stage: Callable[[str], None] | None = None) -> AdapterBuild:
    """The GGUF LoRA adapter for this training data, settings and spec: the stored one, else a new one."""
    from adaptlab.finetune.session import TrainRequest, run_training

    started = time.perf_counter()
    split = split or bench_split(project.config, train_path)
    examples = split.share(spec.share)
    settings = training_settings(project.config, spec, len(examples), quality_metric, bool(split.validation))
    key = adapter_fingerprint(project, train_path, spec, settings)
    folder = project.home / "bench" / "adapters" / key[:16]
    marker = folder / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        gguf = folder / "adapter.gguf"
        if recorded.get("fingerprint") == key and gguf.is_file():
            return AdapterBuild(spec, gguf, key, True, time.perf_counter() - started, recorded.get("training", {}))
    if folder.exists():  # an interrupted or stale build: start clean
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    # The exact examples this adapter saw, kept beside it (and what the training run reads).
    data, validation = folder / "train.jsonl", folder / "validation.jsonl"
    write_jsonl_atomic(data, [e.to_record() for e in examples])
    write_jsonl_atomic(validation, [e.to_record() for e in split.validation])
    request = TrainRequest(method="sft", data=data, eval_data=validation if split.validation else None,
                           name=f"adaptlab-bench-{key[:8]}", run_dir=folder, settings=settings)
    report = run_training(project, request, progress=progress, on_stage=on_stage)
    if report.gguf_adapter is None:
        raise RuntimeError("training finished but no GGUF adapter was exported (is the base a GGUF model?)")
    training = report.to_dict()
    write_text_atomic(marker, json.dumps({"fingerprint": key, "train_data": str(train_path), "share": spec.share,
                                          "seed_offset": spec.seed_offset, "training": training},
                                         indent=2, default=str) + "\n")
    return AdapterBuild(spec, Path(report.gguf_adapter), key, False, time.perf_counter() - started, training)
