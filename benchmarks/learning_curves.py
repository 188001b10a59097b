"""Fine-tuning's learning curve on bundled intent data, measured by `adaptlab bench` (an experiment: it measures
quality, not speed, so it prints no speed ratio).

For each dataset it writes the files a team would bring (training examples, few-shot examples, eval cases, a JSON
schema of the labels, a workload) and an adaptlab.toml whose bench measures
- `prompt`: few-shot prompting with the most similar worked examples, decoding under the JSON-schema grammar;
- `finetuned`: a LoRA adapter on the same base, no examples, under the same grammar —
trained on nested shares of the training data (bench.learning_curve) with checkpoints kept by intent accuracy on
a validation split carved from the training data. It prints the curve, the fit and the advisor's verdict, and
leaves report.html and results.json in <out>/<dataset>/report/.

  clinc150: the bundled sample of CLINC150 (src/adaptlab/datasets/clinc150/data_small.json: 5 train, 2 validation,
            2 test utterances per intent), `--intents` intents drawn with a fixed seed: train + validation
            utterances minus one few-shot example per intent to train on, the test utterances to evaluate.
  snips:    the bundled SNIPS (7 intents), `--per-intent` training examples per intent, 6 eval cases per intent.

    .venv/bin/python benchmarks/learning_curves.py clinc150 --out /tmp/curves     # ~25 min on 2 cores
    .venv/bin/python benchmarks/learning_curves.py snips --per-intent 60 --out /tmp/curves
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, set_threads  # noqa: E402

set_threads(1)

CLINC = ROOT / "src" / "adaptlab" / "datasets" / "clinc150" / "data_small.json"
WORKLOAD = """name = "learning curve: {name}"
[workload]
queries_per_day = 10_000
quality_metric = "field.intent"
min_examples_for_finetune = 20
[serving]
mode = "self_hosted"
gpu_usd_per_hour = 0.067
use_measured_latency = true
[training]
gpu_usd_per_hour = 0.067
"""


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def prepare_clinc(folder: Path, intents: int, seed: int) -> tuple[str, int]:
    """CLINC150 sample → the JSON task {"intent": label}; returns (system prompt, training examples)."""
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    labels = sorted({label for _, label in data["train"]})
    chosen = sorted(random.Random(seed).sample(labels, intents))
    system = ("Classify the user's request. Reply with JSON {\"intent\": ...}, the intent one of: "
              + ", ".join(chosen) + ".")
    schema = {"type": "object", "required": ["intent"], "additionalProperties": False,
              "properties": {"intent": {"type": "string", "enum": chosen}}}
    pool = {label: [text for text, lab in data["train"] + data["val"] if lab == label] for label in chosen}
    fewshot = [{"question": pool[label][0], "answer": json.dumps({"intent": label})} for label in chosen]
    train = [{"messages": [{"role": "system", "content": system}, {"role": "user", "content": text},
                           {"role": "assistant", "content": json.dumps({"intent": label})}]}
             for label in chosen for text in pool[label][1:]]
    random.Random(seed).shuffle(train)
    cases = [{"id": f"clinc-{label}-{i}", "question": text, "expected_json": {"intent": label}}
             for label in chosen for i, text in enumerate(t for t, lab in data["test"] if lab == label)]
    _jsonl(folder / "data" / "train.jsonl", train)
    _jsonl(folder / "data" / "fewshot.jsonl", fewshot)
    _jsonl(folder / "data" / "eval.jsonl", cases)
    (folder / "data" / "schema.json").write_text(json.dumps(schema, indent=2), encoding="utf-8")
    return system, len(train)


def prepare_snips(folder: Path, per_intent: int, seed: int) -> tuple[str, int]:
    from adaptlab.datasets.snips import convert_snips
    from adaptlab.datasets.squad import BUNDLED_SNIPS

    split = convert_snips(BUNDLED_SNIPS, folder / "data", train_per_intent=per_intent, eval_per_intent=6,
                          fewshot_per_intent=2, seed=seed)
    return split.system_prompt_path.read_text(encoding="utf-8").strip(), split.train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["clinc150", "snips"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "curves")
    parser.add_argument("--intents", type=int, default=30, help="CLINC150 intents drawn (of 150)")
    parser.add_argument("--per-intent", type=int, default=30, help="SNIPS training examples per intent")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--shares", default="0.25,0.5,1.0")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from adaptlab.bench.run import run_bench
    from adaptlab.config import load_config

    folder = (args.out / args.dataset).resolve()
    system, n_train = (prepare_clinc(folder, args.intents, args.seed) if args.dataset == "clinc150"
                       else prepare_snips(folder, args.per_intent, args.seed))
    (folder / "workload.toml").write_text(WORKLOAD.format(name=args.dataset), encoding="utf-8")
    shares = [float(s) for s in args.shares.split(",")]
    (folder / "adaptlab.toml").write_text(f"""home = "home"
[runtime]
threads = 1
[generator]
max_tokens = {96 if args.dataset == "snips" else 24}
[train]
epochs = {args.epochs}
batch_size = 4
max_length = 256
learning_rate = 0.0005
eval_fraction = 0.1
seed = {args.seed}
[strategies.prompt]
kind = "prompt"
system_prompt = {json.dumps(system)}
few_shot_path = "data/fewshot.jsonl"
few_shot_k = 4
few_shot_selection = "similar"
json_schema_path = "data/schema.json"
[bench]
title = "learning curve: {args.dataset}"
cases = "data/eval.jsonl"
train = "data/train.jsonl"
workload = "workload.toml"
strategies = ["prompt", "finetuned"]
learning_curve = {shares}
""", encoding="utf-8")
    started = time.perf_counter()
    outcome = run_bench(load_config(folder / "adaptlab.toml"), out_dir=folder / "report",
                        on_stage=lambda text: print(f"==> {text}", flush=True))
    results = outcome.results
    study = results.finetuning
    print(f"\n{args.dataset}: {n_train} training examples, {results.n_cases} eval cases, "
          f"{time.perf_counter() - started:.0f} s")
    prompt = results.strategy("prompt")
    if prompt is not None:
        q = prompt.metric("field.intent")
        print(f"prompt (few-shot + grammar): field.intent {q.value:.3f} [{q.low:.3f}, {q.high:.3f}]" if q else "")
    if study is not None:
        print(f"{'examples':>8}  {'steps':>5}  {'kept':>4}  {'field.intent [95% CI]':<24} validation by step")
        for a in study.adapters:
            q = a.quality
            shown = f"{q.value:.3f} [{q.low:.3f}, {q.high:.3f}]" if q and q.value is not None else "—"
            curve = ", ".join(f"{v:.2f}@{s}" for s, v in a.task_metric)
            print(f"{a.examples:>8}  {a.steps:>5}  {a.best_step!s:>4}  {shown:<24} {curve}")
        for finding in study.findings():
            print(f"- {finding}")
    advice = results.advice
    if advice is not None:
        print(f"recommendation: {advice.recommendation}")
        for note in advice.notes:
            print(f"note: {note}")
    print(f"report: {outcome.report_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
