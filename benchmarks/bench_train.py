"""LoRA SFT training throughput: `adaptlab.finetune.train` (TRL SFTTrainer + PEFT) vs a bare PEFT loop.

Same base model (SmolLM2-135M-Instruct from the bundled GGUF, fp32), same LoRA settings (r 8, alpha 16,
q/k/v/o), same data (SNIPS utterance → JSON chat examples, the bundled copy or --snips), same batch
size, max length, learning rate and number of optimizer steps, one torch thread each.

  measured = tokens_trained / wall time of trainer.train() inside adaptlab's train(): Trainer's own count of
             non-padding input tokens; includes its per-step callbacks (loss recording, progress);
  anchor   = the same count / wall time of a plain loop: chat template → pad → forward with labels masked to
             the assistant reply → backward → AdamW step. Tokenisation happens before either timer starts.
Goal: measured / anchor ≥ 0.95. The order of the two runs alternates with --order.

    .venv/bin/python benchmarks/bench_train.py              # 20 steps of batch 4
    .venv/bin/python benchmarks/bench_train.py --quick      # 5 steps
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, finish, peak_rss_mb, print_table, set_threads, verdict  # noqa: E402

set_threads(1)

GOAL = 0.95


def bare_peft_loop(base_dir: Path, examples, *, steps: int, batch_size: int, max_length: int, lr: float,
                   seed: int) -> tuple[int, float]:
    """(non-padding tokens, seconds) of a minimal PEFT training loop."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, bias="none",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = []
    for example in examples:  # tokenise up front, like the Trainer does before train()
        messages = list(example.messages)
        prompt_ids = tokenizer.apply_chat_template(messages[:-1], tokenize=True, add_generation_prompt=True,
                                                   return_dict=True)["input_ids"]
        full_ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"][:max_length]
        labels = [-100] * min(len(prompt_ids), len(full_ids)) + full_ids[len(prompt_ids):]
        encoded.append((full_ids, labels))
    batches = []
    for step in range(steps):
        chunk = [encoded[(step * batch_size + i) % len(encoded)] for i in range(batch_size)]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((batch_size, width), pad)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for row, (ids, lab) in enumerate(chunk):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(ids)] = 1
        batches.append((input_ids, labels, mask))
    tokens = 0
    started = time.perf_counter()
    for input_ids, labels, mask in batches:
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
    return tokens, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="5 steps")
    parser.add_argument("--snips", default=str(ROOT / "src" / "adaptlab" / "datasets" / "snips"))
    parser.add_argument("--order", choices=("adaptlab-first", "bare-first"), default="bare-first")
    args = parser.parse_args(argv)
    steps = 5 if args.quick else args.steps

    from adaptlab.config import TrainConfig
    from adaptlab.datasets.snips import convert_snips
    from adaptlab.finetune.base_model import prepare_base
    from adaptlab.finetune.data import load_training_file
    from adaptlab.finetune.train import train

    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        convert_snips(args.snips, scratch_path / "snips", train_per_intent=20, eval_per_intent=1,
                      fewshot_per_intent=0)
        examples = load_training_file(scratch_path / "snips" / "train.jsonl")
        base = prepare_base("", ROOT / "benchmarks" / "out" / "models")
        settings = TrainConfig(max_steps=steps, batch_size=args.batch_size, max_length=256, learning_rate=2e-4,
                               threads=1, eval_fraction=0)
        runs = {}
        order = ["bare", "adaptlab"] if args.order == "bare-first" else ["adaptlab", "bare"]
        for side in order:
            if side == "bare":
                tokens, seconds = bare_peft_loop(base.directory, examples, steps=steps, batch_size=args.batch_size,
                                                 max_length=256, lr=2e-4, seed=0)
            else:
                result = train("sft", base.directory, examples, [], settings, scratch_path / "run")
                tokens, seconds = result.tokens_trained, result.seconds
            runs[side] = (tokens, seconds, tokens / seconds)
    ratio = runs["adaptlab"][2] / runs["bare"][2]
    print_table(["side", "tokens", "seconds", "tokens/s"],
                [[side, *runs[side]] for side in ("bare", "adaptlab")])
    print(f"\nratio adaptlab / bare PEFT loop: {ratio:.3f}x (goal ≥ {GOAL}) {verdict(ratio >= GOAL)}")
    finish("bench_train", {
        "steps": steps, "batch_size": args.batch_size, "examples": len(examples),
        "bare": {"tokens": runs["bare"][0], "seconds": runs["bare"][1], "tokens_per_second": runs["bare"][2]},
        "adaptlab": {"tokens": runs["adaptlab"][0], "seconds": runs["adaptlab"][1],
                     "tokens_per_second": runs["adaptlab"][2]},
        "ratio": ratio, "goal": GOAL, "verdict": verdict(ratio >= GOAL), "peak_rss_mb": peak_rss_mb(),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
