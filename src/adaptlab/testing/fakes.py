"""Fakes shipped with the library for unit tests of pipelines (ours and users'): fast, deterministic, offline.

They are not models: the hash embedder maps words to random directions (texts sharing words are close),
the fake generator echoes its instructions. Never use them to measure quality.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from adaptlab.embed.hash import HashEmbedder
from adaptlab.models.base import ChatMessage
from adaptlab.types import Generation, TextDelta, Usage

__all__ = ["FakeGenerator", "HashEmbedder"]

class FakeGenerator:
    """Answers with a fixed text (or the first words of the last user message); counts words as tokens."""

    def __init__(self, reply: str | None = None, *, delay_s: float = 0.0, max_parallel: int | None = None) -> None:
        self.name = "fake-generator"
        self.max_parallel = max_parallel
        self.n_ctx = 4096
        self._reply = reply
        self._delay_s = delay_s
        self.calls: list[list[ChatMessage]] = []
        self.call_options: list[dict] = []  # json_schema / seed / max_tokens of each call, for assertions

    def chat(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None,
             temperature: float | None = None, top_p: float | None = None, stop: Sequence[str] | None = None,
             json_schema: dict | None = None, seed: int | None = None) -> Generation:
        started = time.perf_counter()
        self.calls.append(list(messages))
        self.call_options.append({"json_schema": json_schema, "seed": seed, "max_tokens": max_tokens,
                                  "temperature": temperature, "top_p": top_p, "stop": stop})
        if self._delay_s:
            time.sleep(self._delay_s)
        text = self._reply if self._reply is not None else " ".join(messages[-1]["content"].split()[:12])
        prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        return Generation(text, Usage(prompt_tokens, self.count_tokens(text)),
                          (time.perf_counter() - started) * 1000, self.name, "stop")

    def stream_chat(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None,
                    temperature: float | None = None, top_p: float | None = None,
                    stop: Sequence[str] | None = None, json_schema: dict | None = None,
                    seed: int | None = None) -> Iterator[TextDelta | Generation]:
        """The answer `chat` gives, one word at a time."""
        generation = self.chat(messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop,
                               json_schema=json_schema, seed=seed)
        words = generation.text.split(" ") if generation.text else []
        for number, word in enumerate(words):
            yield TextDelta(word if number == 0 else " " + word)
        yield generation

    def count_tokens(self, text: str) -> int:
        return len(text.split())
