"""What a bench run will build and measure, decided from [bench] before any long work starts.

Every input path is resolved and checked up front, so a typo fails in a second with the setting's name, not
after twenty minutes of training. The four built-in strategies get their settings from [strategies.prompt] /
[strategies.rag] unless the config defines them; each one whose inputs are missing is skipped with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.config import (
    AdaptlabConfig,
    CachedStrategyConfig,
    FinetunedRagStrategyConfig,
    FinetunedStrategyConfig,
    PromptStrategyConfig,
    RagStrategyConfig,
    StrategyConfig,
)
from adaptlab.errors import ConfigError

BUILTIN = ("prompt", "rag", "finetuned", "finetuned_rag")
CACHED_SUFFIX = "+cache"
ON = "@"  # bench.strategies entry "NAME@GEN": strategy NAME answering with [generators.GEN]


def split_entry(entry: str) -> tuple[str, str]:
    """'rag@hosted' → ('rag', 'hosted'); 'rag' → ('rag', '') (the strategy's own generator)."""
    name, _, generator = entry.partition(ON)
    return name, generator


@dataclass(frozen=True)
class SkippedStrategy:
    name: str
    reason: str


@dataclass
class BenchPlan:
    config_path: Path | None
    title: str
    cases: Path
    workload: Path
    documents: list[Path]
    train: Path | None
    query_log: Path | None
    cache_pairs: Path | None
    strategies: list[str]  # uncached strategies to measure, in order
    needs_adapter: list[str]  # of those, the ones whose adapter the bench trains
    skipped: list[SkippedStrategy] = field(default_factory=list)
    forgetting_cases: Path | None = None  # another task's cases: base vs adapter (with an adapter to train)

    @property
    def cached(self) -> bool:
        return self.query_log is not None

    def measured(self) -> list[str]:
        """Every strategy measured, each followed by its cached variant when there is a query log."""
        names: list[str] = []
        for name in self.strategies:
            names.append(name)
            if self.cached:
                names.append(name + CACHED_SUFFIX)
        return names


def _path(config: AdaptlabConfig, setting: str, raw: str, *, required: bool, folder_ok: bool = False) -> Path | None:
    where = config.source_path or "adaptlab.toml"
    if not raw:
        if required:
            raise ConfigError(f"{where}: bench.{setting} is not set — name the file in [bench] "
                              f"(docs/guide/bench.md shows a complete config).")
        return None
    path = config.resolve_path(raw)
    if not path.exists():
        raise ConfigError(f"{where}: bench.{setting} = {raw!r}: no such file ({path}) — fix the path (relative "
                          f"paths are relative to the config file).")
    if path.is_dir() and not folder_ok:
        raise ConfigError(f"{where}: bench.{setting} = {raw!r} is a folder — name a file.")
    return path


def plan_bench(config: AdaptlabConfig) -> BenchPlan:
    bench = config.bench
    cases = _path(config, "cases", bench.cases, required=True)
    workload = _path(config, "workload", bench.workload, required=True)
    documents = [p for raw in bench.documents if (p := _path(config, "documents", raw, required=True,
                                                              folder_ok=True))]
    train = _path(config, "train", bench.train, required=False)
    query_log = _path(config, "query_log", bench.query_log, required=False)
    pairs = _path(config, "cache_pairs", bench.cache_pairs, required=False)
    forgetting = _path(config, "forgetting_cases", bench.forgetting_cases, required=False)
    assert cases is not None and workload is not None
    source = Path(config.source_path) if config.source_path else None
    title = bench.title or (source.parent.name if source else "adaptlab bench")

    strategies: list[str] = []
    needs_adapter: list[str] = []
    skipped: list[SkippedStrategy] = []
    if len(set(bench.strategies)) != len(bench.strategies) or not bench.strategies:
        raise ConfigError(f"{config.source_path or 'adaptlab.toml'}: bench.strategies = {bench.strategies!r} — "
                          f"list each strategy once, e.g. [\"prompt\", \"rag\"].")
    for name in bench.strategies:
        base, generator = split_entry(name)
        section = config.strategies.get(base)
        if base.endswith(CACHED_SUFFIX) or isinstance(section, CachedStrategyConfig):
            raise ConfigError(f"bench.strategies: {name!r} is a cached strategy — list the uncached one; the bench "
                              f"adds its cached variant when bench.query_log is set.")
        if base not in BUILTIN and section is None:
            raise ConfigError(f"bench.strategies: no strategy named {base!r} — use one of {', '.join(BUILTIN)} or "
                              f"define [strategies.{base}].")
        if generator and generator not in config.generators:
            known = ", ".join(sorted(config.generators)) or "none defined"
            raise ConfigError(f"bench.strategies: {name!r} names generator {generator!r}, which is not a "
                              f"[generators.NAME] section of {config.source_path or 'adaptlab.toml'} (known: {known}).")
        kind = section.kind if section is not None else base
        retrieves = kind in ("rag", "finetuned_rag")
        finetuned = kind in ("finetuned", "finetuned_rag")
        if retrieves and not documents:
            skipped.append(SkippedStrategy(name, "it retrieves, and bench.documents names no documents"))
            continue
        has_adapter = isinstance(section, (FinetunedStrategyConfig, FinetunedRagStrategyConfig)) and bool(
            section.adapter or section.served_model)
        if finetuned and not has_adapter:
            if train is None:
                skipped.append(SkippedStrategy(name, "it needs a fine-tuned adapter, and bench.train names no "
                                                     "training examples"))
                continue
            needs_adapter.append(name)
        strategies.append(name)
    if not strategies:
        raise ConfigError("bench: nothing to measure — every strategy was skipped: "
                          + "; ".join(f"{s.name} ({s.reason})" for s in skipped))
    return BenchPlan(source, title, cases, workload, documents, train, query_log, pairs, strategies,
                     needs_adapter, skipped, forgetting if needs_adapter else None)


def bench_strategies(config: AdaptlabConfig, plan: BenchPlan, adapter: Path | None) -> dict[str, StrategyConfig]:
    """config.strategies with the bench's built-ins completed (adapters filled in) and a cached variant of each
    measured strategy when there is a query log."""
    strategies = dict(config.strategies)
    prompt = strategies["prompt"]
    rag = strategies["rag"]
    assert isinstance(prompt, PromptStrategyConfig) and isinstance(rag, RagStrategyConfig)
    for name in plan.strategies:
        base, generator = split_entry(name)
        section = strategies.get(base)
        if section is None and base == "finetuned":
            # The fine-tuned model learnt the task from the training examples: same system prompt, no few-shot
            # examples (what fine-tuning replaces), and the same output constraint as the prompt strategy — without
            # it the adapter is judged on near-miss labels the grammar would have ruled out.
            schema = prompt.json_schema_path if config.bench.finetuned_keeps_output_constraint else ""
            section = FinetunedStrategyConfig(system_prompt=prompt.system_prompt, max_tokens=prompt.max_tokens,
                                              json_schema_path=schema)
        elif section is None and base == "finetuned_rag":
            section = FinetunedRagStrategyConfig(**rag.model_dump(exclude={"kind"}))
        assert section is not None, name  # plan_bench lists only configured strategies and the built-ins
        assert not isinstance(section, CachedStrategyConfig), name
        if generator:
            section = section.model_copy(update={"generator": generator})
        if name in plan.needs_adapter and adapter is not None:
            section = section.model_copy(update={"adapter": str(adapter)})
        strategies[name] = section
        if plan.cached:
            strategies[name + CACHED_SUFFIX] = CachedStrategyConfig(wraps=name)
    return strategies
