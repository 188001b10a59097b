"""LoRA SFT tokens/s with 2 data-parallel processes vs 1, the same global batch, on this machine.

Same base (SmolLM2-135M-Instruct from the bundled GGUF, fp32), LoRA settings, SNIPS chat examples, seed, learning
rate and optimizer steps; dropout 0 so that the loss curves can be compared too:

  anchor   = 1 process, batch 4, 2 torch threads: `adaptlab.finetune.train` in this process (both cores, one pool);
  measured = 2 processes, batch 2 each (global batch 4), 1 torch thread each: `train_in_processes`, DDP over gloo
             via torch.distributed.run (both cores, one process each);
  also     = 1 process, batch 4, 1 thread: what one core does alone, for the scaling across cores.

tokens/s = Trainer's count of non-padding input tokens (gathered over the processes) / wall time of trainer.train()
(rank 0's); process start and model loading are outside it and shown separately as the wall time of the call.
No goal: the point is the mechanism, and whether a 2-core machine gains from it. --order sets which comes first;
--repeats N runs all three N times, reversing the order each time, and keeps each one's fastest run (the machine
is shared: one busy minute halves a run).

    .venv/bin/python benchmarks/bench_train_processes.py             # 10 steps
    .venv/bin/python benchmarks/bench_train_processes.py --quick     # 4 steps
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, finish, print_table, set_threads  # noqa: E402

set_threads(1)  # BLAS pools; each run sets its torch threads itself


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--global-batch", type=int, default=4, help="examples per optimizer step (even)")
    parser.add_argument("--quick", action="store_true", help="4 steps")
    parser.add_argument("--snips", default=str(ROOT / "src" / "adaptlab" / "datasets" / "snips"))
    parser.add_argument("--order", choices=("one-first", "two-first"), default="one-first")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, alternating the order; best kept")
    args = parser.parse_args(argv)
    steps = 4 if args.quick else args.steps
    batch = args.global_batch

    from adaptlab.config import TrainConfig
    from adaptlab.datasets.snips import convert_snips
    from adaptlab.finetune.base_model import prepare_base
    from adaptlab.finetune.data import load_training_file
    from adaptlab.finetune.distributed import train_in_processes
    from adaptlab.finetune.train import train

    common = dict(max_steps=steps, max_length=256, learning_rate=2e-4, lora_dropout=0.0, eval_fraction=0, seed=0)
    runs = {
        "1 process x 2 threads": TrainConfig(**common, batch_size=batch, threads=2),
        "2 processes x 1 thread": TrainConfig(**common, batch_size=batch // 2, threads=1, processes=2),
        "1 process x 1 thread": TrainConfig(**common, batch_size=batch, threads=1),
    }
    order = list(runs) if args.order == "one-first" else [list(runs)[1], list(runs)[0], list(runs)[2]]
    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        convert_snips(args.snips, scratch_path / "snips", train_per_intent=20, eval_per_intent=1,
                      fewshot_per_intent=0)
        examples = load_training_file(scratch_path / "snips" / "train.jsonl")
        base = prepare_base("", ROOT / "benchmarks" / "out" / "models")
        for repeat in range(args.repeats):
            for label in order if repeat % 2 == 0 else order[::-1]:
                settings = runs[label]
                run_dir = scratch_path / f"{label.replace(' ', '-')}-{repeat}"
                started = time.perf_counter()
                if settings.processes > 1:
                    result = train_in_processes("sft", base.directory, examples, [], settings, run_dir)
                else:
                    result = train("sft", base.directory, examples, [], settings, run_dir)
                print(f"{label}: {result.tokens_per_second:.1f} tokens/s", file=sys.stderr, flush=True)
                if label not in results or result.tokens_per_second > results[label][0].tokens_per_second:
                    results[label] = (result, time.perf_counter() - started)

    print_table(["run", "global batch", "tokens", "train s", "tokens/s", "call wall s", "final loss", "peak RSS MB"],
                [[label, runs[label].batch_size * runs[label].processes, r.tokens_trained, r.seconds,
                  r.tokens_per_second, wall, r.train_loss[-1][1], r.peak_rss_mb]
                 for label, (r, wall) in results.items()])
    results = {label: results[label] for label in runs}
    anchor, measured, one_core = (results[label][0] for label in runs)
    ratio = measured.tokens_per_second / anchor.tokens_per_second
    per_core = measured.tokens_per_second / one_core.tokens_per_second
    loss_gap = max(abs(a[1] - b[1]) for a, b in zip(anchor.train_loss, measured.train_loss, strict=True))
    print(f"\nratio 2 processes / 1 process (both cores each): {ratio:.3f}x (no goal)")
    print(f"ratio 2 processes / 1 process on one core: {per_core:.3f}x")
    print(f"largest loss difference, 2 processes vs 1 process at the same global batch: {loss_gap:.2e}")
    finish("bench_train_processes", {
        "steps": steps, "global_batch": batch, "examples": len(examples), "repeats": args.repeats,
        "runs": {label: {"tokens": r.tokens_trained, "train_seconds": r.seconds,
                         "tokens_per_second": r.tokens_per_second, "call_wall_seconds": wall,
                         "peak_rss_mb": r.peak_rss_mb, "train_loss": r.train_loss}
                 for label, (r, wall) in results.items()},
        "ratio_two_processes_vs_one": ratio, "ratio_two_processes_vs_one_thread": per_core,
        "max_loss_difference": loss_gap,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
