"""The bench's fine-tuned adapter: trained once per (training data, [train] settings, base model), then reused.

The adapter lives in <home>/bench/adapters/<fingerprint>/; `adapter.json` is written last, so a folder without it
is an interrupted run and is trained again from scratch. Changing one training example, one [train] setting or
the base model gives a new fingerprint and a new adapter.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptlab.finetune.data import fingerprint as data_fingerprint
from adaptlab.project import Project
from adaptlab.textfiles import write_text_atomic

MARKER = "adapter.json"


@dataclass(frozen=True)
class AdapterBuild:
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
        return (f"{built} LoRA adapter {self.fingerprint[:12]}: {t.get('steps', '?')} steps on "
                f"{t.get('train_examples', '?')} examples in {t.get('seconds', 0):.0f} s, "
                f"{t.get('tokens_per_second', 0):.0f} tokens/s, peak RSS {t.get('peak_rss_mb', 0):.0f} MB{loss_text}")


def adapter_fingerprint(project: Project, train_path: Path) -> str:
    config = project.config
    settings = config.train.model_dump()
    settings.pop("threads", None)  # threads change speed, not the adapter
    parts = {"data": data_fingerprint(train_path), "train": settings,
             "base": config.train.base or config.generator.model_path or "bundled"}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def ensure_adapter(project: Project, train_path: Path, *,
                   progress: Callable[[int, int, float | None], None] | None = None,
                   on_stage: Callable[[str], None] | None = None) -> AdapterBuild:
    """The GGUF LoRA adapter for this training data and these settings: the stored one, else a new one."""
    from adaptlab.finetune.session import TrainRequest, run_training

    started = time.perf_counter()
    key = adapter_fingerprint(project, train_path)
    folder = project.home / "bench" / "adapters" / key[:16]
    marker = folder / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        gguf = folder / "adapter.gguf"
        if recorded.get("fingerprint") == key and gguf.is_file():
            return AdapterBuild(gguf, key, True, time.perf_counter() - started, recorded.get("training", {}))
    if folder.exists():  # an interrupted or stale build: start clean
        shutil.rmtree(folder)
    request = TrainRequest(method="sft", data=train_path, name=f"adaptlab-bench-{key[:8]}", run_dir=folder)
    report = run_training(project, request, progress=progress, on_stage=on_stage)
    if report.gguf_adapter is None:
        raise RuntimeError("training finished but no GGUF adapter was exported (is the base a GGUF model?)")
    training = report.to_dict()
    write_text_atomic(marker, json.dumps({"fingerprint": key, "train_data": str(train_path),
                                          "training": training}, indent=2, default=str) + "\n")
    return AdapterBuild(Path(report.gguf_adapter), key, False, time.perf_counter() - started, training)
