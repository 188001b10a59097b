"""Build the configured generator."""

from __future__ import annotations

from adaptlab.config import AdaptlabConfig
from adaptlab.models.base import Generator


def create_generator(config: AdaptlabConfig, *, lora_path: str | None = None) -> Generator:
    if config.generator.backend == "openai":
        from adaptlab.models.openai_compat import OpenAIGenerator

        return OpenAIGenerator(config.generator)
    from adaptlab.models.llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(config.generator, threads=config.runtime.threads, lora_path=lora_path)
