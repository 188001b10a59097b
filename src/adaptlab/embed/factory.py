"""Build the configured embedder: one factory per `embedder.backend`."""

from __future__ import annotations

from collections.abc import Callable

from adaptlab.config import AdaptlabConfig
from adaptlab.embed.base import Embedder


def _minilm(config: AdaptlabConfig) -> Embedder:
    from adaptlab.embed.minilm import MiniLMEmbedder

    return MiniLMEmbedder(config.embedder.model_path, batch_size=config.embedder.batch_size)


def _openai(config: AdaptlabConfig) -> Embedder:
    from adaptlab.embed.openai_compat import OpenAIEmbedder

    return OpenAIEmbedder(config.embedder)


def _hash(config: AdaptlabConfig) -> Embedder:
    from adaptlab.embed.hash import HashEmbedder

    return HashEmbedder()


EMBEDDERS: dict[str, Callable[[AdaptlabConfig], Embedder]] = {"minilm": _minilm, "openai": _openai, "hash": _hash}


def create_embedder(config: AdaptlabConfig) -> Embedder:
    return EMBEDDERS[config.embedder.backend](config)
