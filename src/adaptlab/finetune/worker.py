"""One data-parallel training process: `python -m adaptlab.finetune.worker <run>/worker/request.json`.

Started N times by a launcher (torch.distributed.run, accelerate launch), which sets RANK, WORLD_SIZE and the
rendezvous address; TRL's trainer picks them up through Accelerate. Rank 0 reports progress, saves the adapter and
train_result.json (see finetune/distributed.py for the files). A worker that fails records its error for the
parent process before the traceback goes to the log.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from adaptlab.config import TrainConfig
from adaptlab.errors import AdaptlabError
from adaptlab.finetune.data import load_training_file
from adaptlab.finetune.distributed import WorkerRequest
from adaptlab.finetune.train import TrainProgress, train


def run(request: WorkerRequest, rank: int) -> None:
    progress = _progress_writer(request.progress_file) if rank == 0 else None
    train_examples = load_training_file(request.train_file)
    eval_examples = load_training_file(request.eval_file) if request.eval_file else []
    try:
        train(request.method, Path(request.base_dir), train_examples, eval_examples,
              TrainConfig.model_validate(request.settings), Path(request.run_dir), progress=progress,
              resume=request.resume, max_new_tokens=request.max_new_tokens)
    finally:
        import torch.distributed

        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # a clean exit, without torch's warning about a leaked group


def _progress_writer(path: Path) -> TrainProgress:
    def write(step: int, total: int, loss: float | None) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "total": total, "loss": loss}) + "\n")

    return write


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m adaptlab.finetune.worker <run>/worker/request.json (written by adaptlab train "
              "--processes N)", file=sys.stderr)
        return 2
    request = WorkerRequest.read(Path(args[0]))
    rank = int(os.environ.get("RANK", "0"))
    try:
        run(request, rank)
    except BaseException as error:
        request.failure_file(rank).write_text(json.dumps({
            "rank": rank, "type": type(error).__name__, "message": str(error),
            "adaptlab": isinstance(error, AdaptlabError), "traceback": traceback.format_exc(),
        }), encoding="utf-8")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
