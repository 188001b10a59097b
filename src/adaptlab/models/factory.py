"""Build a configured generator: [generator], or one of [generators.NAME]."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from adaptlab.config import AdaptlabConfig, GeneratorConfig
from adaptlab.models.base import Generator

if TYPE_CHECKING:
    from adaptlab.models.adapters import BaseKey, SharedBase


def create_generator(config: AdaptlabConfig, *, settings: GeneratorConfig | None = None,
                     lora_path: str | None = None) -> Generator:
    """settings: the generator section to build (default [generator]); threads come from [runtime]."""
    settings = settings or config.generator
    if settings.backend == "openai":
        from adaptlab.models.openai_compat import OpenAIGenerator

        return OpenAIGenerator(settings)
    from adaptlab.models.llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(settings, threads=config.runtime.threads, lora_path=lora_path)


def base_key(settings: GeneratorConfig) -> BaseKey:
    """Which loaded base a llama.cpp generator section can share (see models/adapters.py)."""
    from adaptlab.models.adapters import BaseKey
    from adaptlab.models.registry import resolve_gguf

    return BaseKey(str(resolve_gguf(settings.model_path).resolve()), settings.n_ctx, settings.seed)


def open_shared_base(config: AdaptlabConfig, settings: GeneratorConfig) -> SharedBase:
    """The base GGUF of a llama.cpp generator section, loaded once for all its adapters; at most
    serve.max_loaded_adapters of them stay loaded."""
    from adaptlab.models.adapters import SharedBase
    from adaptlab.models.llama_cpp import load_llama
    from adaptlab.models.registry import resolve_gguf

    model_path = resolve_gguf(settings.model_path)
    llama = load_llama(model_path, settings, threads=config.runtime.threads)
    return SharedBase(llama, name=model_path.name, max_loaded=config.serve.max_loaded_adapters)


def create_adapted_generator(config: AdaptlabConfig, settings: GeneratorConfig, base: SharedBase,
                             adapter: Path) -> Generator:
    """Generator `settings` answering with the LoRA `adapter` on `base` (loaded now, so a bad file fails here)."""
    from adaptlab.models.adapters import AdaptedGenerator
    from adaptlab.models.llama_cpp import LlamaCppGenerator

    base.load(adapter)
    inner = LlamaCppGenerator(settings, threads=config.runtime.threads, llama=base.llama)
    return AdaptedGenerator(base, adapter, inner)
