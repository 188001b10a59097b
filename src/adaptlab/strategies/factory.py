"""Build a strategy from its [strategies.NAME] section of adaptlab.toml."""

from __future__ import annotations

from adaptlab.config import PromptStrategyConfig, RagStrategyConfig
from adaptlab.errors import ConfigError
from adaptlab.project import Project
from adaptlab.strategies.base import Strategy


def strategy_names(project: Project) -> list[str]:
    return sorted(project.config.strategies)


def build_strategy(project: Project, name: str) -> Strategy:
    config = project.config
    section = config.strategies.get(name)
    if section is None:
        raise ConfigError(f"No strategy named {name!r} — known: {', '.join(strategy_names(project))}. "
                          f"Define it as [strategies.{name}] with kind = \"prompt\" or \"rag\" in adaptlab.toml.")
    if isinstance(section, PromptStrategyConfig):
        return _build_prompt(project, name, section)
    if isinstance(section, RagStrategyConfig):
        return _build_rag(project, name, section)
    raise ConfigError(f"strategies.{name}: unsupported kind {section.kind!r}.")


def _build_prompt(project: Project, name: str, section: PromptStrategyConfig) -> Strategy:
    from adaptlab.strategies.prompt import PromptStrategy, load_examples, load_schema

    config = project.config
    examples = load_examples(config.resolve_path(section.few_shot_path)) if section.few_shot_path else []
    schema = load_schema(config.resolve_path(section.json_schema_path)) if section.json_schema_path else None
    needs_embedder = section.few_shot_selection == "similar" and section.few_shot_k > 0
    return PromptStrategy(
        name, section, project.generator, examples=examples, schema=schema,
        embedder=project.embedder if needs_embedder else None,
        max_tokens=section.max_tokens or config.generator.max_tokens, log=project.logger,
    )


def _build_rag(project: Project, name: str, section: RagStrategyConfig) -> Strategy:
    from adaptlab.rag.answer import RagAnswerer
    from adaptlab.rag.pipeline import build_retriever
    from adaptlab.strategies.rag import RagStrategy

    config = project.config
    updates = {}
    if section.system_prompt:
        updates["system_prompt"] = section.system_prompt
    if section.context_chunks:
        updates["context_chunks"] = section.context_chunks
    answer_config = config.answer.model_copy(update=updates)
    max_tokens = section.max_tokens or config.generator.max_tokens
    generator = project.generator
    answerer = RagAnswerer(
        build_retriever(project), generator, answer_config, max_tokens=max_tokens,
        n_ctx=getattr(generator, "n_ctx", config.generator.n_ctx), log=project.logger,
    )
    top_k = section.top_k or config.retrieve.top_k
    params = {
        "model": generator.name, "embedder": project.embedder.name, "store": config.store.backend,
        "top_k": top_k, "context_chunks": answer_config.context_chunks, "system_prompt": answer_config.system_prompt,
        "min_relevance": answer_config.min_relevance, "dense_weight": config.retrieve.dense_weight,
        "keyword_weight": config.retrieve.keyword_weight, "rrf_k": config.retrieve.rrf_k,
        "chunk_size_tokens": config.chunk.size_tokens, "max_tokens": max_tokens,
    }
    return RagStrategy(name, answerer, top_k=top_k, params=params)
