"""Build a configured generator: [generator], or one of [generators.NAME]."""

from __future__ import annotations

from adaptlab.config import AdaptlabConfig, GeneratorConfig
from adaptlab.models.base import Generator


def create_generator(config: AdaptlabConfig, *, settings: GeneratorConfig | None = None,
                     lora_path: str | None = None) -> Generator:
    """settings: the generator section to build (default [generator]); threads come from [runtime]."""
    settings = settings or config.generator
    if settings.backend == "openai":
        from adaptlab.models.openai_compat import OpenAIGenerator

        return OpenAIGenerator(settings)
    from adaptlab.models.llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(settings, threads=config.runtime.threads, lora_path=lora_path)
