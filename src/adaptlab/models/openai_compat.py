"""Generation through any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server, hosted)."""

from __future__ import annotations

import os
import time
from typing import Sequence

from adaptlab.config import GeneratorConfig
from adaptlab.errors import BackendError
from adaptlab.models.base import ChatMessage
from adaptlab.types import Generation, Usage


class OpenAIGenerator:
    def __init__(self, config: GeneratorConfig) -> None:
        import openai

        self._config = config
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=os.environ.get(config.api_key_env) or "not-needed",
            timeout=config.timeout_s,
            max_retries=2,
        )
        self.name = f"openai:{config.model or 'default'}@{config.base_url}"
        self.n_ctx = config.n_ctx

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
    ) -> Generation:
        import openai

        started = time.perf_counter()
        try:
            response = self._client.chat.completions.create(
                model=self._config.model or "default",
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=max_tokens or self._config.max_tokens,
                temperature=self._config.temperature if temperature is None else temperature,
                stop=list(stop) if stop else None,
                seed=self._config.seed,
            )
        except openai.APIConnectionError as exc:
            raise BackendError(
                f"Cannot reach the model server at {self._config.base_url} ({exc}) — start it or fix "
                f"generator.base_url in adaptlab.toml."
            ) from exc
        except openai.APIStatusError as exc:
            raise BackendError(
                f"Model server at {self._config.base_url} answered {exc.status_code}: {exc.message} — check "
                f"generator.model and the API key in ${self._config.api_key_env}."
            ) from exc
        except ValueError as exc:  # a body that is not JSON (an HTML page, a proxy's error)
            raise self._bad_reply(exc) from exc
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
        )

    def _bad_reply(self, exc: Exception) -> BackendError:
        return BackendError(
            f"Model server at {self._config.base_url} did not answer with an OpenAI chat completion ({exc}) — "
            f"check generator.base_url (an OpenAI-compatible API usually ends in /v1)."
        )

    def _estimate(self, messages: Sequence[ChatMessage]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def count_tokens(self, text: str) -> int:
        # The remote tokenizer is unknown; ~4 characters a token is the usual estimate for English.
        return max(1, len(text) // 4)
