"""The generator protocol. A backend turns chat messages into a `Generation` with token usage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypedDict

from adaptlab.types import Generation, Sampling, TextDelta


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class Generator(Protocol):
    name: str  # e.g. "llama_cpp:SmolLM2-135M-Instruct.Q4_1.gguf" — recorded with every call
    max_parallel: int | None  # calls it can serve at once: 1 in-process (llama.cpp), None for an endpoint

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
        """One chat completion. Usage must be the backend's real token counts.

        json_schema: constrain the output to JSON satisfying this schema (llama.cpp compiles it to a grammar;
        OpenAI-compatible servers get `response_format`). seed: overrides the configured sampling seed.
        max_tokens, temperature, top_p, stop: None keeps the configured setting."""

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
        """The completion `chat` would return, its text yielded in pieces as the model produces them; the last
        item is the whole Generation (text as `chat` returns it, the pieces joined; usage; finish reason)."""

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's vocabulary (for context budgeting)."""


def stripped_deltas(pieces: Iterable[str]) -> Iterator[str]:
    """The model's raw pieces re-cut so that they join to exactly `"".join(pieces).strip()` (what `chat`
    returns): leading whitespace is dropped, trailing whitespace held back until more text follows it."""
    started = False
    pending = ""
    for piece in pieces:
        if not started:
            piece = piece.lstrip()
            if not piece:
                continue
            started = True
        text = pending + piece
        body = text.rstrip()
        pending = text[len(body):]
        if body:
            yield body


def generation_kwargs(sampling: Sampling, *, max_tokens: int, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """Generator.chat's keyword arguments for a strategy's answer: its own max_tokens and JSON schema unless the
    caller's sampling sets them (a strategy's own schema always wins), the caller's temperature, top_p, stop."""
    return {"max_tokens": sampling.max_tokens or max_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p, "stop": sampling.stop,
            "json_schema": json_schema if json_schema is not None else sampling.json_schema}
