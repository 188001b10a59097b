"""Generation through any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server, hosted)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from adaptlab.config import GeneratorConfig
from adaptlab.errors import BackendError
from adaptlab.models.base import ChatMessage, stripped_deltas
from adaptlab.openai_http import (
    Attempts,
    CallPolicy,
    bad_reply,
    call_with_retries,
    make_client,
    pacer_for,
    translated_errors,
)
from adaptlab.types import Generation, TextDelta, Usage

log = logging.getLogger(__name__)


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
        self._warned_no_usage = False

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
        attempts = Attempts()
        with translated_errors("Model server", self._config.base_url, "generator", self._config.api_key_env,
                               "an OpenAI chat completion", attempts):
            request = self._request(messages, max_tokens, temperature, top_p, stop, json_schema, seed)
            response = call_with_retries(lambda: self._client.chat.completions.create(**request), self._policy,
                                         attempts)
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
        """The server's own stream, asked to end with its usage (stream_options.include_usage; a server that
        ignores it gets our estimate). A refused or failed request is retried as `chat` is, until the first piece
        arrives; a stream that breaks after that is an error (its pieces were already passed on)."""
        started = time.perf_counter()
        attempts = Attempts()
        pieces: list[str] = []
        state: dict = {"usage": None, "finish_reason": None, "model": None}
        request = self._request(messages, max_tokens, temperature, top_p, stop, json_schema, seed)

        def raw_pieces() -> Iterator[str]:
            with translated_errors("Model server", self._config.base_url, "generator", self._config.api_key_env,
                                   "an OpenAI chat completion stream", attempts):
                stream = call_with_retries(lambda: self._client.chat.completions.create(
                    **request, stream=True, stream_options={"include_usage": True}), self._policy, attempts)
                for chunk in stream:
                    state["model"] = chunk.model or state["model"]
                    if chunk.usage is not None:
                        state["usage"] = chunk.usage
                    if not chunk.choices:
                        continue  # the usage chunk carries no choice
                    choice = chunk.choices[0]
                    state["finish_reason"] = choice.finish_reason or state["finish_reason"]
                    piece = choice.delta.content if choice.delta is not None else None
                    if piece:
                        pieces.append(piece)
                        yield piece
            if state["finish_reason"] is None:
                # The stream ended without saying why the model stopped: the server cut it short. llama.cpp's
                # Python server does so to every stream when another request arrives (its interrupt_requests).
                raise BackendError(
                    f"The model server at {self._config.base_url} ended a streamed answer before the model finished "
                    f"(no finish_reason; {len(pieces)} pieces received) — if it is llama-cpp-python's server, start "
                    f"it with --interrupt_requests false, or lower the number of concurrent requests to 1.")

        for text in stripped_deltas(raw_pieces()):
            yield TextDelta(text)
        content = "".join(pieces)
        usage = state["usage"]
        if usage is None and not self._warned_no_usage:
            self._warned_no_usage = True
            log.warning("The model server at %s sends no token usage in streamed answers (stream_options."
                        "include_usage is ignored): token counts of streamed answers are estimated at ~4 "
                        "characters a token.", self._config.base_url)
        yield Generation(
            text=content.strip(),
            usage=Usage(int(usage.prompt_tokens) if usage else self._estimate(messages),
                        int(usage.completion_tokens) if usage else self.count_tokens(content)),
            latency_ms=(time.perf_counter() - started) * 1000,
            model=state["model"] or self.name,
            finish_reason=state["finish_reason"],
            retries=attempts.retries,
        )

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int | None, temperature: float | None,
                 top_p: float | None, stop: Sequence[str] | None, json_schema: dict | None,
                 seed: int | None) -> dict:
        """chat.completions.create's arguments, one way for `chat` and `stream_chat`; paces the request."""
        extra: dict = {"top_p": top_p} if top_p is not None else {}
        if json_schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "output", "schema": json_schema}}
        limit = max_tokens or self._config.max_tokens
        if self._pacer is not None:
            self._pacer.acquire(self._estimate(messages) + limit)
        return {
            "model": self._config.model or "default",
            "messages": list(messages),
            "max_tokens": limit,
            "temperature": self._config.temperature if temperature is None else temperature,
            "stop": list(stop) if stop else None,
            "seed": self._config.seed if seed is None else seed,
            **extra,
        }

    def _bad_reply(self, exc: Exception) -> BackendError:
        return bad_reply("Model server", self._config.base_url, "generator", "an OpenAI chat completion", exc)

    def _estimate(self, messages: Sequence[ChatMessage]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def count_tokens(self, text: str) -> int:
        # The remote tokenizer is unknown; ~4 characters a token is the usual estimate for English.
        return max(1, len(text) // 4)
