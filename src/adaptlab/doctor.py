"""`adaptlab doctor`: is this install able to answer? Each check says what it found, and the fix when it fails.

- the llama.cpp build: compiled CPU features and a disassembly scan against the portable set setup.sh builds;
- the generator: loads the model and answers one token — in a child process for llama.cpp, so a build that dies
  with SIGILL is reported with its cause instead of killing the command;
- the embedder: loads and embeds one sentence (a unit vector of the configured dimension).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from adaptlab.config import AdaptlabConfig
from adaptlab.errors import AdaptlabError

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)


def check_llama_build() -> Check:
    from adaptlab.models.llama_build import REBUILD_FIX, inspect_installed_build

    try:
        report = inspect_installed_build()
    except ImportError as exc:
        return Check("llama.cpp build", "fail", f"llama_cpp cannot be imported ({exc})",
                     "run `bash scripts/setup.sh`")
    scanned = (f"; {report.scan.amx_instructions} AMX / {report.scan.avx512_instructions} AVX-512 instructions "
               f"in {report.scan.library}") if report.scan else (f"; not disassembled: {report.scan_error}"
                                                                  if report.scan_error else "")
    problems = report.problems()
    if problems:
        # Not portable is a warning, not a failure, by itself: a native build can run on the machine that built
        # it. The generation check below says whether it does.
        return Check("llama.cpp build", "warn", "not the portable build: " + "; ".join(problems), REBUILD_FIX)
    return Check("llama.cpp build", "ok", f"llama-cpp-python {report.version}, portable "
                 f"({', '.join(sorted(report.compiled))}){scanned}")


def check_generator(config: AdaptlabConfig) -> Check:
    if config.generator.backend == "llama_cpp":
        from adaptlab.models.llama_probe import probe_generation
        from adaptlab.models.registry import resolve_gguf

        try:
            model_path = resolve_gguf(config.generator.model_path)
        except AdaptlabError as exc:
            return Check("generator", "fail", str(exc))
        result = probe_generation(model_path, threads=config.runtime.threads)
        if not result.ok:
            return Check("generator", "fail", f"{model_path.name}: {result.detail}", result.fix)
        return Check("generator", "ok", f"{model_path.name}: {result.detail}")
    from adaptlab.models.factory import create_generator

    started = time.perf_counter()
    try:
        generation = create_generator(config).chat([{"role": "user", "content": "Say OK."}], max_tokens=1)
    except AdaptlabError as exc:
        return Check("generator", "fail", f"{config.generator.base_url}: {exc}",
                     "check generator.base_url / generator.model and that the server is running")
    return Check("generator", "ok", f"{generation.model} at {config.generator.base_url} answered "
                 f"{generation.text!r} in {time.perf_counter() - started:.1f} s")


def check_embedder(config: AdaptlabConfig) -> Check:
    from adaptlab.embed.factory import create_embedder

    started = time.perf_counter()
    try:
        embedder = create_embedder(config)
        vectors = embedder.embed(["Is this install able to answer?"])
    except AdaptlabError as exc:
        return Check("embedder", "fail", str(exc))
    norm = float(np.linalg.norm(vectors[0])) if len(vectors) else 0.0
    if vectors.shape != (1, embedder.dimension) or abs(norm - 1.0) > 1e-3:
        return Check("embedder", "fail", f"{embedder.name} returned shape {vectors.shape}, norm {norm:.3f} "
                     f"(expected (1, {embedder.dimension}), norm 1)", "check embedder.model_path")
    return Check("embedder", "ok", f"{embedder.name}: {embedder.dimension}-d unit vector in "
                 f"{time.perf_counter() - started:.1f} s")


def doctor(config: AdaptlabConfig) -> DoctorReport:
    report = DoctorReport()
    if config.generator.backend == "llama_cpp":
        report.checks.append(check_llama_build())
    report.checks.append(check_generator(config))
    report.checks.append(check_embedder(config))
    return report
