"""Embeddings from any OpenAI-compatible /v1/embeddings endpoint (vLLM, Ollama, llama.cpp server, hosted APIs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptlab.config import EmbedderConfig
from adaptlab.embed.base import normalise_rows
from adaptlab.errors import BackendError
from adaptlab.openai_http import bad_reply, make_client, translated_errors


class OpenAIEmbedder:
    """Token counts are approximated (4 characters ≈ 1 token) because the remote tokenizer is not available;
    `max_tokens` is a conservative 512 unless the server's model is known to read more."""

    def __init__(self, config: EmbedderConfig, *, max_tokens: int = 512) -> None:
        self._config = config
        self._client = make_client(config.base_url, config.api_key_env, config.timeout_s)
        # The name is what a collection remembers: the model, not the URL, so moving the server is fine.
        self.name = f"openai:{config.model or 'default'}"
        self.max_tokens = max_tokens
        self.usage_tokens = 0  # prompt tokens the server reported, summed over calls
        self.dimension = config.dimensions or int(self._request(["dimension probe"]).shape[1])

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        with translated_errors("Embedding server", self._config.base_url, "embedder", self._config.api_key_env,
                               "OpenAI embeddings"):
            response = self._client.embeddings.create(model=self._config.model or "default", input=list(texts))
        try:
            ordered = sorted(response.data, key=lambda item: item.index)
            matrix = np.asarray([item.embedding for item in ordered], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as exc:  # JSON, but not an embeddings list
            raise self._bad_reply(exc) from exc
        if matrix.ndim != 2 or len(matrix) != len(texts):
            raise self._bad_reply(ValueError(f"{len(matrix)} vectors for {len(texts)} texts"))
        if response.usage is not None:
            self.usage_tokens += int(response.usage.prompt_tokens or 0)
        return matrix

    def _bad_reply(self, exc: Exception) -> BackendError:
        return bad_reply("Embedding server", self._config.base_url, "embedder", "OpenAI embeddings", exc)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = [
            self._request(texts[start : start + self._config.batch_size])
            for start in range(0, len(texts), self._config.batch_size)
        ]
        matrix = np.concatenate(batches, axis=0)
        if matrix.shape[1] != self.dimension:
            raise BackendError(
                f"Embedding server returned {matrix.shape[1]}-d vectors, expected {self.dimension} — set "
                f"embedder.dimensions to match the model."
            )
        return normalise_rows(matrix)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        # Whitespace words stand in for tokens; with ~1.3 tokens a word the chunker's budget stays safe.
        import re

        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
