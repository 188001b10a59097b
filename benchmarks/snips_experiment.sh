#!/bin/bash
# Issue-4 experiment: SNIPS "utterance → {intent, slots}" JSON task; few-shot prompt vs LoRA-finetuned.
# Run from an empty folder: writes data/, adaptlab.toml, train.json and the eval outputs there.
#   mkdir /tmp/snips && cd /tmp/snips && bash /path/to/adaptlab/benchmarks/snips_experiment.sh
# About 50 minutes on 2 cores (training ~15 min, each eval ~14 min).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=${ADAPTLAB_BIN:-$ROOT/.venv/bin/adaptlab}
SNIPS=${SNIPS_DIR:-$ROOT/src/adaptlab/datasets/snips}
export ADAPTLAB_HOME=$PWD/home
$A data convert-snips "$SNIPS" data --train-per-intent 60 --eval-per-intent 30 --fewshot-per-intent 2
$A data check data/train.jsonl --eval data/eval.jsonl --fewshot data/fewshot.jsonl || true
SYSTEM=$(python3 -c 'import json;print(json.dumps(open("data/system_prompt.txt").read()))')
cat > adaptlab.toml <<TOML
[generator]
max_tokens = 96

[train]
epochs = 1
batch_size = 4
max_length = 256
learning_rate = 0.0005
eval_fraction = 0.05

[strategies.fewshot]
kind = "prompt"
system_prompt = $SYSTEM
few_shot_path = "data/fewshot.jsonl"
few_shot_k = 7
few_shot_selection = "similar"

[strategies.fewshot_schema]
kind = "prompt"
system_prompt = $SYSTEM
few_shot_path = "data/fewshot.jsonl"
few_shot_k = 7
few_shot_selection = "similar"
json_schema_path = "data/schema.json"
TOML
time $A --config adaptlab.toml train sft data/train.jsonl --name adaptlab-snips --json > train.json
ADAPTER=$(python3 -c 'import json;print(json.load(open("train.json"))["gguf_adapter"])')
cat >> adaptlab.toml <<TOML

[strategies.finetuned]
kind = "finetuned"
system_prompt = $SYSTEM
adapter = "$ADAPTER"
TOML
time $A --config adaptlab.toml eval -s fewshot -s finetuned --cases data/eval.jsonl --train data/train.jsonl --out out-fewshot-vs-ft
time $A --config adaptlab.toml eval -s fewshot_schema -s finetuned --cases data/eval.jsonl --out out-schema-vs-ft
