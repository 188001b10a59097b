"""Build a strategy from its [strategies.NAME] section of adaptlab.toml."""

from __future__ import annotations

from typing import Any

from adaptlab.config import (
    CachedStrategyConfig,
    FinetunedRagStrategyConfig,
    FinetunedStrategyConfig,
    PromptStrategyConfig,
    RagStrategyConfig,
    StrategyConfig,
)
from adaptlab.errors import ConfigError, ModelNotFoundError
from adaptlab.models.base import Generator
from adaptlab.project import Project
from adaptlab.strategies.base import Strategy


def strategy_names(project: Project) -> list[str]:
    return sorted(project.config.strategies)


def build_strategy(project: Project, name: str, *, section: StrategyConfig | None = None) -> Strategy:
    """Strategy `name` of [strategies.NAME], or built from `section` (one that is not in the config: an adapter
    added to the server at run time)."""
    config = project.config
    section = section or config.strategies.get(name)
    if section is None:
        raise ConfigError(f"No strategy named {name!r} — known: {', '.join(strategy_names(project))}. "
                          f"Define it as [strategies.{name}] with kind = \"prompt\" or \"rag\" in adaptlab.toml.")
    if isinstance(section, CachedStrategyConfig):
        return _build_cached(project, name, section)
    # Fine-tuned kinds subclass the plain ones: they only swap the generator for base + adapter.
    if isinstance(section, PromptStrategyConfig):
        generator = _adapted_generator(project, name, section) if isinstance(section, FinetunedStrategyConfig) \
            else project.generator_for(section.generator)
        return _build_prompt(project, name, section, generator)
    if isinstance(section, RagStrategyConfig):
        generator = _adapted_generator(project, name, section) if isinstance(section, FinetunedRagStrategyConfig) \
            else project.generator_for(section.generator)
        return _build_rag(project, name, section, generator)
    raise ConfigError(f"strategies.{name}: unsupported kind {section.kind!r}.")


def _build_cached(project: Project, name: str, section: CachedStrategyConfig) -> Strategy:
    from adaptlab.strategies.cached import build_cached

    wrapped = project.config.strategies.get(section.wraps)
    if wrapped is None or isinstance(wrapped, CachedStrategyConfig):
        known = ", ".join(n for n, s in project.config.strategies.items() if not isinstance(s, CachedStrategyConfig))
        problem = "is itself a cached strategy" if wrapped is not None else "does not exist"
        raise ConfigError(f"strategies.{name}.wraps = {section.wraps!r} {problem} — name a strategy that answers "
                          f"questions: {known}.")
    return build_cached(project, name, section, build_strategy(project, section.wraps))


def _adapted_generator(project: Project, name: str,
                       section: FinetunedStrategyConfig | FinetunedRagStrategyConfig) -> Generator:
    """The base model with the strategy's adapter: a LoRA GGUF for llama.cpp, or a served model name."""
    from adaptlab.models.factory import create_generator

    config = project.config
    settings = project.generator_settings(section.generator)
    if settings.backend == "openai":
        if not section.served_model:
            raise ConfigError(f"strategies.{name}: with an 'openai' generator backend set served_model to the name "
                              f"the server gives the fine-tuned model (e.g. a vLLM LoRA module).")
        return create_generator(config, settings=settings.model_copy(update={"model": section.served_model}))
    if not section.adapter:
        raise ConfigError(f"strategies.{name}: set adapter to the GGUF LoRA file written by `adaptlab train ... "
                          f"--export` (or `adaptlab export`).")
    adapter = config.resolve_path(section.adapter)
    if not adapter.is_file():
        raise ModelNotFoundError(f"No LoRA adapter at {adapter} — train or export one first.")
    return project.adapted_generator(section.generator, adapter)


def _build_prompt(project: Project, name: str, section: PromptStrategyConfig, generator: Generator) -> Strategy:
    from adaptlab.strategies.prompt import PromptStrategy, load_examples, load_schema

    config = project.config
    examples = load_examples(config.resolve_path(section.few_shot_path)) if section.few_shot_path else []
    schema = load_schema(config.resolve_path(section.json_schema_path)) if section.json_schema_path else None
    needs_embedder = section.few_shot_selection == "similar" and section.few_shot_k > 0
    return PromptStrategy(
        name, section, generator, examples=examples, schema=schema,
        embedder=project.embedder if needs_embedder else None,
        max_tokens=section.max_tokens or project.generator_settings(section.generator).max_tokens,
        log=project.logger, conversation=config.conversation,
    )


def _build_rag(project: Project, name: str, section: RagStrategyConfig, generator: Generator) -> Strategy:
    from adaptlab.rag.answer import RagAnswerer
    from adaptlab.strategies.rag import RagStrategy

    config = project.config
    updates: dict[str, Any] = {}
    if section.system_prompt:
        updates["system_prompt"] = section.system_prompt
    if section.context_chunks:
        updates["context_chunks"] = section.context_chunks
    answer_config = config.answer.model_copy(update=updates)
    settings = project.generator_settings(section.generator)
    max_tokens = section.max_tokens or settings.max_tokens
    retrieve = section.retrieve_settings(config.retrieve)
    chunk = section.chunk_settings(config.chunk)
    answerer = RagAnswerer(project.retriever_for(retrieve, chunk), generator, answer_config, max_tokens=max_tokens,
                           n_ctx=settings.n_ctx, log=project.logger)
    top_k = section.top_k or config.retrieve.top_k
    params = {
        "model": generator.name, "generator": section.generator or "default", "embedder": project.embedder.name,
        "store": config.store.backend,
        "top_k": top_k, "context_chunks": answer_config.context_chunks, "system_prompt": answer_config.system_prompt,
        "min_relevance": answer_config.min_relevance, "dense_weight": retrieve.dense_weight,
        "keyword_weight": retrieve.keyword_weight, "rrf_k": retrieve.rrf_k,
        "rewrite": retrieve.rewrite, "rerank": retrieve.rerank_depth if retrieve.rerank else 0,
        "chunk_size_tokens": config.chunk.size_tokens, "chunk_context": chunk.context,
        "max_tokens": max_tokens, "decoding": "free text",
    }
    if isinstance(section, FinetunedRagStrategyConfig):
        params["adapter"] = section.adapter or section.served_model
    return RagStrategy(name, answerer, top_k=top_k, params=params, kind=section.kind,
                       conversation=config.conversation)
