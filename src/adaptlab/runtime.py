"""Thread counts, set deliberately and in one place.

On a 2-core machine numpy's OpenBLAS, torch and llama.cpp each start their own thread pools and fight:
a dense query took 24 ms instead of 13 ms until OPENBLAS_NUM_THREADS=1. BLAS pools are sized when numpy
is first imported, so `limit_threads_early` runs from `adaptlab/__init__` before anything imports numpy.
"""

from __future__ import annotations

import os

# OMP_THREAD_LIMIT caps tesseract (OCR at ingest), an OpenMP program that otherwise takes every core.
_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_THREAD_LIMIT")
THREADS_ENV = "ADAPTLAB_THREADS"


def configured_threads(default: int = 1) -> int:
    raw = os.environ.get(THREADS_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def limit_threads_early() -> None:
    """Cap BLAS threads (unless the user set them) and keep every code path offline."""
    threads = str(configured_threads())
    for var in _BLAS_VARS:
        os.environ.setdefault(var, threads)
    # No code path may download weights or data: transformers/sentence-transformers stay offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def apply_threads(threads: int) -> None:
    """Apply the configured thread count to torch (if loaded) once the config is known."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(threads)
        except RuntimeError:
            pass  # torch refuses once its pool has started work; the early env cap still holds


# Third-party modules whose warnings are about their own internals (deprecations between their versions, hints
# for their developers), not something an adaptlab user can act on.
_QUIET_WARNING_MODULES = r"(torch|transformers|peft|trl|accelerate|datasets|bitsandbytes|mlflow|lancedb|pyarrow|gguf)"
SHOW_WARNINGS_ENV = "ADAPTLAB_SHOW_WARNINGS"


def quiet_third_party_output() -> None:
    """Keep other libraries' progress bars and warnings out of a CLI user's terminal: adaptlab shows its own
    progress (rich) for long work. Called by the CLI before any command imports those libraries, since tqdm and
    huggingface_hub read these variables once, at import. ADAPTLAB_SHOW_WARNINGS=1 shows the warnings again."""
    import warnings

    # transformers' own bars ("Loading weights", "Writing model shards") follow huggingface_hub's switch; its GGUF
    # conversion ("Converting and de-quantizing GGUF tensors") uses plain tqdm, which obeys TQDM_DISABLE.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if os.environ.get(SHOW_WARNINGS_ENV, "") not in ("", "0"):
        return
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=_QUIET_WARNING_MODULES + r"(\.|$)")
