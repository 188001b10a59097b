#!/usr/bin/env bash
# QLoRA on a CUDA GPU, end to end: SFT of the bundled SmolLM2 base with a 4-bit (NF4) frozen base on the bundled
# SNIPS data, then answers from the adapter through adaptlab's fine-tuned strategy (the GGUF LoRA on llama.cpp,
# as `adaptlab serve` runs it). Prints training tokens/s, peak GPU memory and answer tokens/s.
#
#   bash benchmarks/gpu_check.sh [STEPS] [PROCESSES]     # default 40 steps, 1 process (PROCESSES ≤ GPUs: DDP/NCCL)
#
# Needs the README install (bash scripts/setup.sh) with a CUDA build of torch, and the qlora extra
# (.venv/bin/pip install -e '.[qlora]'); it installs nothing itself. Without a CUDA GPU it stops with a message
# (exit 3). Not run by its authors: no GPU was available where it was written; its CPU-side steps were checked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STEPS=${1:-40}
PROCESSES=${2:-1}
PY=$ROOT/.venv/bin/python
A=$ROOT/.venv/bin/adaptlab
export HF_HUB_OFFLINE=1

if [ ! -x "$PY" ] || [ ! -x "$A" ]; then
    echo "gpu_check: no .venv with adaptlab here: run the README install first (bash scripts/setup.sh)" >&2
    exit 2
fi

# The GPU, torch's CUDA build and bitsandbytes, each with the fix when missing.
"$PY" - <<'EOF'
import importlib.util
import shutil
import sys

import torch

if not torch.cuda.is_available():
    if torch.version.cuda is None:
        why = (f"torch {torch.__version__} is a CPU-only build; install a CUDA build of the same version into .venv "
               "(see pytorch.org for the index URL that matches the machine's CUDA driver)")
    elif shutil.which("nvidia-smi") is None:
        why = "no NVIDIA driver found (nvidia-smi is missing)"
    else:
        why = "torch sees no CUDA device (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
    print(f"gpu_check: no CUDA GPU — {why}. This check trains QLoRA on a GPU; nothing was run.", file=sys.stderr)
    sys.exit(3)
if importlib.util.find_spec("bitsandbytes") is None:
    print("gpu_check: QLoRA needs bitsandbytes: .venv/bin/pip install -e '.[qlora]'", file=sys.stderr)
    sys.exit(4)
print(f"GPU: {torch.cuda.get_device_name(0)} ×{torch.cuda.device_count()}, torch {torch.__version__} "
      f"(CUDA {torch.version.cuda})")
EOF

WORK=$(mktemp -d "${TMPDIR:-/tmp}/adaptlab-gpu-check.XXXXXX")
echo "==> working in $WORK"
cd "$WORK"
"$A" data convert-snips "$ROOT/src/adaptlab/datasets/snips" data --train-per-intent 60 --eval-per-intent 3 \
    --fewshot-per-intent 0 >/dev/null
SYSTEM=$("$PY" -c 'import json; print(json.dumps(open("data/system_prompt.txt").read()))')
cat > adaptlab.toml <<TOML
home = "$WORK/home"

[generator]
max_tokens = 96

[train]
quantization = "4bit"
max_steps = $STEPS
batch_size = 8
max_length = 256
learning_rate = 0.0005
eval_fraction = 0

[tracking]
enabled = false
TOML

echo "==> QLoRA SFT: $STEPS steps, batch 8 per process, $PROCESSES process(es)"
"$A" --config adaptlab.toml train sft data/train.jsonl --processes "$PROCESSES" --json > train.json
ADAPTER=$("$PY" -c 'import json; print(json.load(open("train.json"))["gguf_adapter"])')
cat >> adaptlab.toml <<TOML

[strategies.finetuned]
kind = "finetuned"
system_prompt = $SYSTEM
adapter = "$ADAPTER"
TOML

echo "==> answering the eval questions with the adapter (adaptlab's fine-tuned strategy)"
"$PY" - <<'EOF'
import json

import llama_cpp

from adaptlab.config import load_config
from adaptlab.project import Project
from adaptlab.strategies.factory import build_strategy

report = json.load(open("train.json"))
if report["quantization"] != "nf4":
    raise SystemExit(f"gpu_check: training ran with quantization {report['quantization']!r}, not QLoRA's nf4")
peak_gpu = report.get("peak_gpu_memory_mb")
gpu_memory = f"{peak_gpu:.0f} MB" if peak_gpu is not None else "not measured (no CUDA in the training process)"
print(f"training: {report['steps']} steps, {report['tokens_trained']} tokens in {report['seconds']:.1f} s = "
      f"{report['tokens_per_second']:.0f} tokens/s over {report['processes']} process(es); peak GPU memory "
      f"{gpu_memory} (torch.cuda.max_memory_allocated); final loss {report['train_loss'][-1][1]:.3f}")

strategy = build_strategy(Project(load_config("adaptlab.toml")), "finetuned")
questions = [json.loads(line)["question"] for line in open("data/eval.jsonl")]
tokens = seconds = valid = 0.0
for question in questions:
    answer = strategy.answer(question)
    tokens += answer.usage.completion_tokens
    seconds += answer.latency_ms / 1000
    try:
        valid += isinstance(json.loads(answer.text), dict)
    except ValueError:
        pass
offload = llama_cpp.llama_supports_gpu_offload()
print(f"answers: {len(questions)} questions, {tokens:.0f} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s, "
      f"{valid:.0f} of them JSON objects; llama.cpp {'can' if offload else 'cannot'} offload to a GPU in this build, "
      "and adaptlab's generator runs it on the CPU either way")
EOF
echo "==> done; the run's files are in $WORK"
