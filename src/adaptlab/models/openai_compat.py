"""Generation through any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server, hosted)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from adaptlab.config import GeneratorConfig
from adaptlab.errors import BackendError
from adaptlab.models.base import ChatMessage
from adaptlab.openai_http import (
    Attempts,
    CallPolicy,
    bad_reply,
    call_with_retries,
    make_client,
    pacer_for,
    translated_errors,
)
from adaptlab.types import Generation, Usage


class OpenAIGenerator:
    # An endpoint serves requests in parallel (its own batching / slots): the caller's concurrency decides.
    max_parallel: int | None = None

    def __init__(self, config: GeneratorConfig) -> None:
        self._config = config
        # Retries are ours (call_with_retries), so that each answer can say how many it took.
        self._client = make_client(config.base_url, config.api_key_env, config.timeout_s, max_retries=0)
        self._policy = CallPolicy(max_retries=config.max_retries, requests_per_minute=config.requests_per_minute,
                                  tokens_per_minute=config.tokens_per_minute)
        self._pacer = pacer_for(config.base_url, self._policy)
        self.name = f"openai:{config.model or 'default'}@{config.base_url}"
        self.n_ctx = config.n_ctx

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict | None = None,
        seed: int | None = None,
    ) -> Generation:
        started = time.perf_counter()
        extra = {}
        if json_schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "output", "schema": json_schema}}
        limit = max_tokens or self._config.max_tokens
        if self._pacer is not None:
            self._pacer.acquire(self._estimate(messages) + limit)
        attempts = Attempts()
        with translated_errors("Model server", self._config.base_url, "generator", self._config.api_key_env,
                               "an OpenAI chat completion", attempts):
            response = call_with_retries(lambda: self._client.chat.completions.create(
                model=self._config.model or "default",
                messages=list(messages),
                max_tokens=limit,
                temperature=self._config.temperature if temperature is None else temperature,
                stop=list(stop) if stop else None,
                seed=self._config.seed if seed is None else seed,
                **extra,
            ), self._policy, attempts)
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            choice = response.choices[0]
            content = choice.message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:  # JSON, but not a chat completion
            raise self._bad_reply(exc) from exc
        usage = response.usage
        prompt_tokens = int(usage.prompt_tokens) if usage else self._estimate(messages)
        completion_tokens = int(usage.completion_tokens) if usage else self.count_tokens(content)
        return Generation(
            text=content.strip(),
            usage=Usage(prompt_tokens, completion_tokens),
            latency_ms=latency_ms,
            model=response.model or self.name,
            finish_reason=choice.finish_reason,
            retries=attempts.retries,
        )

    def _bad_reply(self, exc: Exception) -> BackendError:
        return bad_reply("Model server", self._config.base_url, "generator", "an OpenAI chat completion", exc)

    def _estimate(self, messages: Sequence[ChatMessage]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def count_tokens(self, text: str) -> int:
        # The remote tokenizer is unknown; ~4 characters a token is the usual estimate for English.
        return max(1, len(text) // 4)
