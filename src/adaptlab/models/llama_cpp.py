"""Local generation with llama-cpp-python on a GGUF file (default: bundled SmolLM2-135M-Instruct Q4_1)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from adaptlab.config import GeneratorConfig
from adaptlab.errors import BackendError, ContextLengthError, ModelNotFoundError
from adaptlab.models.base import ChatMessage, stripped_deltas
from adaptlab.models.llama_build import REBUILD_FIX, BuildReport, cpu_flags, inspect_installed_build
from adaptlab.models.llama_probe import probe_generation
from adaptlab.models.registry import resolve_gguf
from adaptlab.types import Generation, TextDelta, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_types import ChatCompletionRequestResponseFormat


def build_refusal(report: BuildReport, flags: frozenset[str]) -> str | None:
    """Why this llama.cpp build cannot run on a CPU with these flags (a certain SIGILL), or None."""
    unsupported = report.unsupported_by_cpu(flags)
    if unsupported:
        return (f"The installed llama.cpp was compiled for {', '.join(sorted(unsupported))}, which this CPU does "
                f"not have: every answer would die with 'Illegal instruction' — {REBUILD_FIX}.")
    return None


@functools.cache
def check_build_runs_here(model_path: str) -> None:
    """Refuse, with the cause and the fix, a llama.cpp build that would die with SIGILL on this CPU.

    Cheap (the compiled features against /proc/cpuinfo) for every build. A build with AMX kernels — which a CPU
    may advertise while its VM does not grant them, so the flags cannot tell — answers one token in a child
    process first, once per process."""
    report = inspect_installed_build(scan=False)
    refusal = build_refusal(report, cpu_flags())
    if refusal:
        raise BackendError(refusal)
    if "AMX_INT8" in report.compiled:
        result = probe_generation(Path(model_path))
        if not result.ok:
            raise BackendError(f"{result.detail} — {result.fix}.")


def load_llama(model_path: Path, config: GeneratorConfig, *, threads: int, lora_path: str | None = None) -> Llama:
    """The GGUF loaded by llama.cpp with the generator's context settings (and a LoRA applied at load)."""
    from llama_cpp import Llama

    check_build_runs_here(str(model_path))
    try:
        return Llama(
            model_path=str(model_path),
            n_ctx=config.n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            seed=config.seed,
            lora_path=lora_path,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise BackendError(f"llama.cpp could not load {model_path}: {exc} — is it a valid GGUF file?") from exc


class LlamaCppGenerator:
    max_parallel: int | None = 1  # one llama.cpp context answers one request at a time

    def __init__(self, config: GeneratorConfig, *, threads: int = 1, lora_path: str | None = None,
                 llama: Llama | None = None) -> None:
        """llama: answer on this already loaded base instead of loading one (a base shared by several adapters,
        which models/adapters.py sets per call)."""
        self._config = config
        self.model_path = resolve_gguf(config.model_path)
        if lora_path and not Path(lora_path).is_file():
            raise ModelNotFoundError(f"No LoRA adapter at {lora_path} — train or export one first.")
        self._llm = llama if llama is not None else load_llama(self.model_path, config, threads=threads,
                                                               lora_path=lora_path)
        self.name = f"llama_cpp:{self.model_path.name}" + (f"+{Path(lora_path).name}" if lora_path else "")
        self.n_ctx = config.n_ctx

    @property
    def llama(self):
        """The underlying llama_cpp.Llama (benchmarks compare against it directly)."""
        return self._llm

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict | None = None,
        seed: int | None = None,
    ) -> Generation:
        started = time.perf_counter()
        try:
            result = self._llm.create_chat_completion(**self._request(messages, max_tokens, temperature, top_p,
                                                                      stop, json_schema, seed))
        except ValueError as exc:  # llama.cpp raises ValueError when the prompt exceeds n_ctx
            raise _context_error(exc) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        assert isinstance(result, dict)  # not stream=True, so one response, not an iterator of chunks
        usage = result.get("usage") or {}
        choice = result["choices"][0]
        return Generation(
            text=(choice["message"].get("content") or "").strip(),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            latency_ms=latency_ms,
            model=self.name,
            finish_reason=choice.get("finish_reason"),
        )

    def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict | None = None,
        seed: int | None = None,
    ) -> Iterator[TextDelta | Generation]:
        """llama.cpp's own token stream. Its stream reports no usage, so a logits processor (called once per
        sampled token, after the prompt is evaluated) counts: the context length at its first call is the prompt's
        tokens, its calls the sampled tokens — the end-of-generation one is no completion token, as in `chat`."""
        import numpy as np
        from llama_cpp import LogitsProcessorList

        started = time.perf_counter()
        prompt_tokens: list[int] = []
        sampled = [0]

        def count(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
            if not prompt_tokens:
                prompt_tokens.append(self._llm.n_tokens)
            sampled[0] += 1
            return scores

        request = self._request(messages, max_tokens, temperature, top_p, stop, json_schema, seed)
        pieces: list[str] = []
        finish_reason: str | None = None

        def raw_pieces() -> Iterator[str]:
            nonlocal finish_reason
            try:
                chunks = self._llm.create_chat_completion(**request, stream=True,
                                                          logits_processor=LogitsProcessorList([count]))
                for chunk in chunks:
                    assert isinstance(chunk, dict)
                    choice = chunk["choices"][0]
                    finish_reason = choice.get("finish_reason") or finish_reason
                    piece = str(choice["delta"].get("content") or "")
                    if piece:
                        pieces.append(piece)
                        yield piece
            except ValueError as exc:  # raised at the first chunk when the prompt exceeds n_ctx
                raise _context_error(exc) from exc

        for text in stripped_deltas(raw_pieces()):
            yield TextDelta(text)
        # An end-of-generation token is sampled but is no completion token; a length cut or a stop string is not.
        completion_tokens = sampled[0] - (1 if finish_reason == "stop" and not stop else 0)
        yield Generation(
            text="".join(pieces).strip(),
            usage=Usage(prompt_tokens[0] if prompt_tokens else 0, max(0, completion_tokens)),
            latency_ms=(time.perf_counter() - started) * 1000,
            model=self.name,
            finish_reason=finish_reason,
        )

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int | None, temperature: float | None,
                 top_p: float | None, stop: Sequence[str] | None, json_schema: dict | None,
                 seed: int | None) -> dict:
        """create_chat_completion's arguments, one way for `chat` and `stream_chat` (so both answer alike)."""
        response_format: ChatCompletionRequestResponseFormat | None = (
            {"type": "json_object", "schema": json_schema} if json_schema is not None else None)
        return {
            # llama_cpp types each role's message apart (role: Literal[...]); ours carry the role as a str,
            # which llama.cpp's chat template reads the same way.
            "messages": list(messages),
            "max_tokens": max_tokens or self._config.max_tokens,
            "temperature": self._config.temperature if temperature is None else temperature,
            "stop": list(stop) if stop else None,
            "seed": self._config.seed if seed is None else seed,
            "repeat_penalty": self._config.repeat_penalty,
            "response_format": response_format,
            **({"top_p": top_p} if top_p is not None else {}),  # else llama.cpp's default, as evaluated
        }

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _context_error(exc: ValueError) -> BackendError:
    if "context window" in str(exc):
        return ContextLengthError(str(exc), "shorten the prompt or raise generator.n_ctx")
    return BackendError(f"{exc} — shorten the prompt or raise generator.n_ctx.")
