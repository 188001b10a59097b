"""Data-parallel training in 2 CPU processes (torch.distributed.run, DDP over gloo) on the tiny Llama.

Data parallelism must not change what is learned: 2 processes × batch 2 take the same 4 examples per optimizer step
as 1 process × batch 4 (same seed, so the same data order and LoRA initialisation), so the loss curves and the
adapters must agree up to float32 rounding. A failing worker must come back as a clear error, not a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import ADAPTLAB_BIN, make_project, write_config
from safetensors.torch import load_file

from adaptlab.config import TrainConfig
from adaptlab.finetune.data import TrainingExample, load_training_file
from adaptlab.finetune.distributed import threads_per_process, train_in_processes
from adaptlab.finetune.session import TrainRequest, run_training
from adaptlab.finetune.train import train

# Loss is ~10.8 (a random 49k-vocabulary model). The two runs differ only in float32 summation order: DDP sums two
# half-batch gradients over gloo where one process sums one batch, and each half-batch is padded to its own longest
# example. That moves the loss in the 6th-7th significant digit (measured: at most 2e-6 over 4 steps); 1e-4 is 50×
# that and still far below what a different data order or initialisation gives (~1e-2 per step here).
LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-5  # LoRA weights after 4 steps (magnitude ~0.2; measured difference 3e-7)


def write_chat_data(path: Path, first: int, count: int) -> Path:
    """Utterances of different lengths, so that batches need padding."""
    rows = [{"messages": [{"role": "system", "content": "Reply with JSON."},
                          {"role": "user", "content": f"play song number {i}" + " please" * (i % 5)},
                          {"role": "assistant", "content": json.dumps({"intent": "PlayMusic", "track": str(i)})}]}
            for i in range(first, first + count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_two_processes_follow_the_single_process_loss_curve(tiny_llama: Path, tmp_path: Path) -> None:
    data = write_chat_data(tmp_path / "train.jsonl", 0, 16)
    held_out = write_chat_data(tmp_path / "eval.jsonl", 16, 4)
    common = {"base": str(tiny_llama), "max_length": 64, "learning_rate": 1e-2, "lora_dropout": 0.0, "seed": 3}

    single = train("sft", tiny_llama, load_training_file(data), load_training_file(held_out),
                   TrainConfig(**common, max_steps=4, batch_size=4, threads=1), tmp_path / "single")

    project = make_project(tmp_path / "home", train={**common, "batch_size": 2})
    steps: list[tuple[int, int, float | None]] = []
    stages: list[str] = []
    started = time.perf_counter()
    report = run_training(project, TrainRequest("sft", data, eval_data=held_out, max_steps=4, processes=2),
                          progress=lambda *step: steps.append(step), on_stage=stages.append)
    parallel = report.result
    print(f"2 processes: {time.perf_counter() - started:.1f} s wall; loss 1 process {single.train_loss}, "
          f"2 processes {parallel.train_loss}")

    assert single.processes == 1 and parallel.processes == 2 and parallel.steps == 4
    assert [step for step, _ in parallel.train_loss] == [step for step, _ in single.train_loss] == [1, 2, 3, 4]
    for (_, one), (_, two) in zip(single.train_loss + single.eval_loss, parallel.train_loss + parallel.eval_loss,
                                  strict=True):
        assert abs(one - two) < LOSS_TOLERANCE, (single.train_loss, parallel.train_loss)
    # Trainer gathers every process's tokens: the job trained exactly the single process's (non-padding) tokens.
    assert parallel.tokens_trained == single.tokens_trained > 0 and parallel.tokens_per_second > 0
    one_adapter = load_file(str(single.adapter_dir / "adapter_model.safetensors"))
    two_adapter = load_file(str(parallel.adapter_dir / "adapter_model.safetensors"))
    assert one_adapter.keys() == two_adapter.keys()
    assert all(torch.allclose(one_adapter[k], two_adapter[k], atol=WEIGHT_TOLERANCE) for k in one_adapter)
    assert parallel.base_weights_unchanged and (parallel.run_dir / "train_result.json").is_file()
    # rank 0's progress reaches this process's callback; the stage line says how the job was split
    assert [s[0] for s in steps] == [1, 2, 3, 4] and steps[-1][1] == 4
    assert any("training in 2 processes (torch.distributed.run, gloo; 1 torch threads each; global batch 2 × 2 × 1)"
               in s for s in stages), stages

    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=f"sqlite:///{project.home / 'mlflow.db'}").get_run(report.run_id)
    assert run.data.params["train.processes"] == "2" and run.data.params["processes"] == "2"
    assert run.data.params["global_batch_size"] == "4"


def test_dpo_in_two_processes_follows_the_single_process_loss_curve(tiny_llama: Path, tmp_path: Path) -> None:
    """DPO's loss is a mean over preference pairs, so 2 × 2 pairs average to the 4-pair loss as well."""
    pairs = [TrainingExample(example_id=str(i), kind="preference", chosen=str(i + 1), rejected=str(i + 2),
                             prompt=f"What is {i} plus one?" + " really" * (i % 4)) for i in range(12)]
    common = {"max_steps": 3, "learning_rate": 1e-2, "max_length": 64, "lora_dropout": 0.0, "threads": 1}
    single = train("dpo", tiny_llama, pairs, [], TrainConfig(**common, batch_size=4), tmp_path / "single")
    parallel = train_in_processes("dpo", tiny_llama, pairs, [], TrainConfig(**common, batch_size=2, processes=2),
                                  tmp_path / "parallel")
    assert parallel.processes == 2 and parallel.tokens_trained == single.tokens_trained
    for (_, one), (_, two) in zip(single.train_loss, parallel.train_loss, strict=True):
        assert abs(one - two) < LOSS_TOLERANCE, (single.train_loss, parallel.train_loss)


def test_a_failing_worker_is_a_clear_error_not_a_hang(tiny_llama: Path, tmp_path: Path) -> None:
    """A setting only the workers can judge (a LoRA target the model lacks): the command fails within seconds,
    naming the exit code, the worker's error and its log."""
    data = write_chat_data(tmp_path / "train.jsonl", 0, 8)
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home",
                          f'[train]\nbase = "{tiny_llama}"\nmax_length = 64\ntarget_modules = ["no_such_proj"]\n'
                          '[tracking]\nenabled = false\n')
    started = time.perf_counter()
    failed = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "train", "sft", str(data), "--max-steps", "2",
                             "--processes", "2"], capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "COLUMNS": "200"})
    assert failed.returncode == 1, failed.stderr
    assert time.perf_counter() - started < 240
    message = " ".join(failed.stderr.split())  # rich wraps long lines
    assert "Training in 2 processes (torch.distributed.run) failed with exit code 1" in message, failed.stderr
    assert "no_such_proj" in message and "rank 0: NoMatchingPeftModuleError" in message
    assert "worker/log.txt" in message and "--processes 1" in message


@pytest.mark.parametrize(("configured", "total", "processes", "expected"), [
    (None, 4, 2, 2), (None, 1, 2, 1), (None, 5, 2, 2), (3, 4, 2, 3), (None, 4, 1, 4)])
def test_each_process_gets_its_share_of_the_threads_unless_train_threads_is_set(
        configured: int | None, total: int, processes: int, expected: int) -> None:
    assert threads_per_process(configured, total, processes) == expected
