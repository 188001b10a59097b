"""Build the configured embedder."""

from __future__ import annotations

from adaptlab.config import AdaptlabConfig
from adaptlab.embed.base import Embedder


def create_embedder(config: AdaptlabConfig) -> Embedder:
    if config.embedder.backend == "hash":
        from adaptlab.testing.fakes import HashEmbedder

        return HashEmbedder()
    if config.embedder.backend == "openai":
        from adaptlab.embed.openai_compat import OpenAIEmbedder

        return OpenAIEmbedder(config.embedder)
    from adaptlab.embed.minilm import MiniLMEmbedder

    return MiniLMEmbedder(
        config.embedder.model_path, batch_size=config.embedder.batch_size, threads=config.runtime.threads
    )
