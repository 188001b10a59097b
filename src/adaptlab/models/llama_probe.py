"""Answer one token with llama.cpp in a child process, so that a build that crashes is reported, not fatal.

A llama.cpp build that uses instructions the CPU refuses kills the process with SIGILL the first time a kernel
runs — no Python exception, nothing printed but "Illegal instruction". Run in a child, the same crash becomes an
exit status this module turns into a cause and a fix.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from adaptlab.models.llama_build import REBUILD_FIX

# The child: load the GGUF, evaluate a short prompt, sample one token.
_CHILD = r"""
import json, sys, time
started = time.perf_counter()
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=int(sys.argv[2]), n_threads_batch=int(sys.argv[2]),
            verbose=False)
loaded = time.perf_counter()
out = llm.create_completion("The capital of France is", max_tokens=1, temperature=0.0)
print(json.dumps({"load_s": loaded - started, "answer_s": time.perf_counter() - loaded,
                  "text": out["choices"][0]["text"]}))
"""


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # what happened, for a person
    fix: str = ""
    load_s: float = 0.0
    answer_s: float = 0.0


def describe_exit(returncode: int, stderr: str) -> tuple[str, str]:
    """Cause and fix for a child that did not exit cleanly."""
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGILL:
            return ("llama.cpp died with SIGILL (illegal instruction): the installed build uses CPU instructions "
                    "this machine cannot run — typically a native build with AVX-512/AMX kernels "
                    "(`python -m adaptlab.models.llama_build verify` names them)", REBUILD_FIX)
        if -returncode == signal.SIGKILL:
            return f"llama.cpp was killed ({name}), most likely out of memory", \
                "free memory or choose a smaller model (generator.model_path)"
        return f"llama.cpp crashed with {name}", REBUILD_FIX
    return f"llama.cpp failed (exit {returncode}){': ' + tail if tail else ''}", \
        "check generator.model_path points at a valid GGUF file; `adaptlab models` shows what is installed"


def probe_generation(model_path: Path, *, threads: int = 1, timeout_s: float = 120.0,
                     command: list[str] | None = None) -> ProbeResult:
    """Load `model_path` in a child process and answer one token. `command` replaces the child (tests use it to
    stand in for a crashing build)."""
    argv = command or [sys.executable, "-c", _CHILD, str(model_path), str(threads)]
    started = time.perf_counter()
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"no token after {timeout_s:.0f} s", "check the machine's load and memory; "
                           "a model this size should answer in seconds")
    if completed.returncode != 0:
        detail, fix = describe_exit(completed.returncode, completed.stderr)
        return ProbeResult(False, detail, fix)
    try:
        data = json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return ProbeResult(False, f"the probe printed no result ({completed.stdout[-200:]!r})", REBUILD_FIX)
    return ProbeResult(True, f"answered {data['text']!r} in {time.perf_counter() - started:.1f} s "
                       f"(load {data['load_s']:.2f} s)", load_s=float(data["load_s"]),
                       answer_s=float(data["answer_s"]))
