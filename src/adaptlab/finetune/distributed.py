"""Data-parallel training in several processes (`[train] processes`, `adaptlab train ... --processes N`).

This process keeps what happens once per run (data loading, the base model, GGUF export, MLflow); only the training
loop runs in N worker processes (`python -m adaptlab.finetune.worker REQUEST`), started by `torch.distributed.run`
(one machine, a free rendezvous port of its own) or, given an Accelerate config file (FSDP, DeepSpeed), by
`accelerate launch`. Inside each worker TRL's trainer runs on Accelerate, which reads the launcher's environment: DDP
over gloo between CPU processes, NCCL between GPUs. Every process takes `batch_size` examples per step, so one
optimizer step sees batch_size × processes × gradient_accumulation examples.

The files between this process and the workers live in <run>/worker/: request.json with the data split as
train.jsonl / eval.jsonl, progress.jsonl (rank 0 appends one line per optimizer step, which this process follows
for its progress bar), log.txt (the workers' stdout and stderr), failure-rank<R>.json (a worker's error). Rank 0
writes the adapter and train_result.json, which this process reads back.

`accelerate launch --cpu` does not start several processes unless it is given an MPI host file, so CPU runs use
torchrun directly (Accelerate's own multi-GPU launcher is torchrun too).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from adaptlab.config import TrainConfig
from adaptlab.errors import ConfigError, TrainingError
from adaptlab.finetune.data import TrainingExample
from adaptlab.finetune.train import TrainProgress, TrainResult, dpo_records, sft_records
from adaptlab.textfiles import write_jsonl_atomic

WORKER_MODULE = "adaptlab.finetune.worker"
LOG_TAIL_LINES = 25  # of the workers' log, in the error when they fail
_POLL_SECONDS = 0.5


@dataclass
class WorkerRequest:
    """What every worker process needs to run `train()`: written by this process, read by each worker."""

    method: Literal["sft", "dpo"]
    base_dir: str
    train_file: str
    eval_file: str | None
    settings: dict  # TrainConfig.model_dump(), threads already per process
    run_dir: str
    resume: bool
    max_new_tokens: int

    @property
    def folder(self) -> Path:
        return Path(self.run_dir) / "worker"

    @property
    def progress_file(self) -> Path:
        return self.folder / "progress.jsonl"

    def failure_file(self, rank: int) -> Path:
        return self.folder / f"failure-rank{rank}.json"

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> WorkerRequest:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def threads_per_process(configured: int | None, total: int, processes: int) -> int:
    """[train].threads when set (it is per process); otherwise the runtime's threads shared among the processes."""
    return configured or max(1, total // processes)


def launcher_command(processes: int, accelerate_config: Path | None) -> list[str]:
    """The command that starts `processes` workers on this machine (the worker module and request follow it)."""
    if accelerate_config is not None:
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
                "--num_processes", str(processes)]
    # --standalone: a rendezvous on localhost with a free port, so two runs on one machine do not collide.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]


def train_in_processes(method: Literal["sft", "dpo"], base_dir: Path, train_examples: Sequence[TrainingExample],
                       eval_examples: Sequence[TrainingExample], settings: TrainConfig, run_dir: Path, *,
                       progress: TrainProgress | None = None, resume: bool = False, max_new_tokens: int = 64,
                       accelerate_config: Path | None = None,
                       on_stage: Callable[[str], None] | None = None) -> TrainResult:
    """`train()` in settings.processes data-parallel processes; returns rank 0's result (tokens of all of them).

    One process is allowed with an Accelerate config (DeepSpeed offload on one GPU, say)."""
    processes = settings.processes
    if processes < 2 and accelerate_config is None:
        raise ValueError("train_in_processes needs settings.processes >= 2 (or an Accelerate config); call train()")
    if accelerate_config is not None and not accelerate_config.is_file():
        raise ConfigError(f"--accelerate-config {accelerate_config}: no such file. Fix: pass an Accelerate config "
                          "file, e.g. examples/accelerate/fsdp.yaml")
    backend = _check_devices(processes, accelerate_config)
    # Refuse wrong example kinds here, naming the user's file and line, not the workers' copy of the data.
    to_records = sft_records if method == "sft" else dpo_records
    to_records(train_examples)
    to_records(eval_examples)
    folder = run_dir / "worker"
    folder.mkdir(parents=True, exist_ok=True)
    request = WorkerRequest(
        method=method, base_dir=str(base_dir), train_file=str(_write_examples(folder / "train.jsonl", train_examples)),
        eval_file=str(_write_examples(folder / "eval.jsonl", eval_examples)) if eval_examples else None,
        settings=settings.model_dump(), run_dir=str(run_dir), resume=resume, max_new_tokens=max_new_tokens)
    for stale in [request.progress_file, run_dir / "train_result.json", *folder.glob("failure-rank*.json")]:
        stale.unlink(missing_ok=True)  # a resumed run must not read the last attempt's files
    request_file = folder / "request.json"
    request.write(request_file)
    command = launcher_command(processes, accelerate_config) + ["-m", WORKER_MODULE, str(request_file)]
    log_file = folder / "log.txt"
    launcher = "accelerate launch" if accelerate_config else "torch.distributed.run"
    threads = str(settings.threads or 1)
    if on_stage:
        on_stage(f"training in {processes} process{'es' if processes > 1 else ''} ({launcher}, {backend}; {threads} "
                 f"torch threads each; global batch {settings.batch_size} × {processes} × "
                 f"{settings.gradient_accumulation}); log: {log_file}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ADAPTLAB_THREADS": threads, "OMP_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    with log_file.open("wb") as log:
        # The command first: what to adapt to launch the workers yourself (another launcher, several machines).
        log.write(("$ " + shlex.join(command) + "\n").encode())
        log.flush()
        # A session of its own: an interrupted run stops the launcher and every worker it started, not only us.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            returncode = _follow(process, request.progress_file, progress)
        except BaseException:
            _stop(process)
            raise
    result_file = run_dir / "train_result.json"
    if returncode != 0 or not result_file.is_file():
        raise TrainingError(_failure_message(request, processes, launcher, returncode, log_file))
    return TrainResult.from_dict(json.loads(result_file.read_text(encoding="utf-8")))


def _check_devices(processes: int, accelerate_config: Path | None) -> str:
    """The collective backend the workers will use; refuses more GPU processes than GPUs (NCCL needs one each)."""
    import torch

    if not torch.cuda.is_available():
        return "gloo"
    gpus = torch.cuda.device_count()
    if accelerate_config is None and processes > gpus:
        raise ConfigError(f"[train] processes = {processes} but this machine has {gpus} CUDA GPU(s): NCCL needs one "
                          f"GPU per process. Fix: set processes <= {gpus}.")
    return "nccl"


def _write_examples(path: Path, examples: Sequence[TrainingExample]) -> Path:
    write_jsonl_atomic(path, [e.to_record() for e in examples])
    return path


def _follow(process: subprocess.Popen, progress_file: Path, progress: TrainProgress | None) -> int:
    """Wait for the launcher, reporting each progress line rank 0 appends; its exit code."""
    offset = 0
    while True:
        finished = process.poll() is not None
        if progress is not None:
            offset = _report_progress(progress_file, offset, progress)
        if finished:
            return int(process.returncode)
        time.sleep(_POLL_SECONDS)


def _report_progress(progress_file: Path, offset: int, progress: TrainProgress) -> int:
    """Report the complete lines after `offset`; the offset after them (a half-written line waits)."""
    try:
        with progress_file.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
    except FileNotFoundError:
        return offset
    complete = chunk[: chunk.rfind(b"\n") + 1]
    for line in complete.decode("utf-8").splitlines():
        step = json.loads(line)
        progress(step["step"], step["total"], step["loss"])
    return offset + len(complete)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the launcher's session (it passes it on to the workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure_message(request: WorkerRequest, processes: int, launcher: str, returncode: int, log_file: Path) -> str:
    """What failed, the failing worker's traceback (or else the log's last lines), and the fix."""
    error = _worker_error(request, processes)
    head = f"Training in {processes} processes ({launcher}) failed with exit code {returncode}"
    if error is not None:
        lines = error["traceback"].rstrip().splitlines()[-LOG_TAIL_LINES:]
        fix = "the worker's error above names it" if error["adaptlab"] else \
            "see the error above; `--processes 1` runs the same training in this process"
        silent = [str(rank) for rank in range(processes) if not request.failure_file(rank).is_file()]
        # A rank killed outright (out of memory, a signal) records nothing; the others then fail in a collective.
        cause = f"\nRank {', '.join(silent)} stopped without an error of its own (killed: out of memory, a signal?); " \
            "the error above may follow from that." if silent else ""
        return (f"{head} — rank {error['rank']}: {error['type']}: {error['message']}\n"
                f"Its traceback (last lines):\n{_indented(lines)}{cause}\n"
                f"The workers' and launcher's full log: {log_file}\nFix: {fix}")
    what = "the workers exited without writing train_result.json" if returncode == 0 else \
        "no worker recorded an error: one was killed (out of memory?) or the launcher itself failed"
    lines = log_file.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()[-LOG_TAIL_LINES:]
    return (f"{head} — {what}.\nLast lines of the log {log_file}:\n{_indented(lines)}\n"
            "Fix: see the log; `--processes 1` runs the same training in this process")


def _indented(lines: list[str]) -> str:
    return "\n".join(f"  | {line}" for line in lines)


def _worker_error(request: WorkerRequest, processes: int) -> dict | None:
    """The first error a worker recorded, rank 0's first (all ranks usually fail alike)."""
    for rank in range(processes):
        path = request.failure_file(rank)
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return None
