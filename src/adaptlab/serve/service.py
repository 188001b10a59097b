"""What the server serves: the configured strategies as models, how one question is answered, and its price.

A request to a cached strategy is answered in up to three steps, each on its own lane:
1. exact cache lookup — on the event loop for the SQLite backend (microseconds, no model);
2. semantic lookup — on the lookup lane (one embedding);
3. generation on a miss — on the generation lane, whose bounded queue is the server's backpressure.
Only step 3 waits behind other generations, so hits stay fast while the generator is busy. The answer is the
one the strategy gives to the harness: same prompt, retrieval, post-processing and cache rules.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from adaptlab.config import AdaptlabConfig, ServeConfig, StrategyConfig
from adaptlab.errors import AdaptlabError, ConfigError
from adaptlab.project import Project
from adaptlab.serve.work import ANYONE, Caller, WorkLane
from adaptlab.strategies.base import AnswerEvent, AskOptions, CacheProbe, Strategy
from adaptlab.strategies.cached import cache_context
from adaptlab.types import Answer

log = logging.getLogger("adaptlab.serve")

EMBEDDING_MODEL = "embedding"  # model id suffix of /v1/embeddings


@dataclass(frozen=True)
class ServedModel:
    id: str  # what clients send, e.g. "adaptlab-rag"
    strategy_name: str
    kind: str
    strategy: Strategy
    fingerprint: str  # of everything besides the question that shapes the answer


@dataclass(frozen=True)
class SkippedStrategy:
    name: str
    reason: str


class Catalog:
    """The served models. Adapters added at run time (serve/admin.py) join and leave while requests are answered:
    each change replaces the mapping whole, under a lock, so a reader holds either the old one or the new one."""

    def __init__(self, models: Mapping[str, ServedModel], skipped: tuple[SkippedStrategy, ...],
                 embedding_model: str) -> None:
        self._models: Mapping[str, ServedModel] = MappingProxyType(dict(models))
        self.skipped = skipped
        self.embedding_model = embedding_model
        self._lock = threading.Lock()

    @property
    def models(self) -> Mapping[str, ServedModel]:
        """The models served now (read-only: a later change makes a new mapping)."""
        return self._models

    def add(self, model: ServedModel) -> None:
        with self._lock:
            if model.id in self._models or model.id == self.embedding_model:
                raise ConfigError(f"A model named {model.id!r} is already served — choose another name.")
            self._models = MappingProxyType({**self._models, model.id: model})

    def remove(self, model_id: str) -> ServedModel:
        with self._lock:
            models = dict(self._models)
            removed = models.pop(model_id, None)
            if removed is None:
                raise ConfigError(f"No model named {model_id!r} is served.")
            self._models = MappingProxyType(models)
            return removed


def build_catalog(project: Project) -> Catalog:
    """Build every served strategy now, so a bad config fails at startup rather than on the first request.

    With serve.strategies empty, a strategy that cannot be built (no adapter yet, say) is skipped with the
    reason; one named in serve.strategies must build."""
    from adaptlab.strategies.factory import build_strategy

    config = project.config
    settings = config.serve
    explicit = bool(settings.strategies)
    names = settings.strategies or sorted(config.strategies)
    models: dict[str, ServedModel] = {}
    skipped: list[SkippedStrategy] = []
    for name in names:
        try:
            strategy = build_strategy(project, name)
        except AdaptlabError as exc:
            if explicit:
                raise ConfigError(f"serve.strategies names {name!r}, which cannot be served: {exc}") from exc
            skipped.append(SkippedStrategy(name, str(exc)))
            continue
        model_id = settings.model_prefix + name
        models[model_id] = ServedModel(model_id, name, strategy.kind, strategy, _fingerprint(config, strategy))
    embedding_model = settings.model_prefix + EMBEDDING_MODEL
    if embedding_model in models:
        raise ConfigError(f"The strategy named {EMBEDDING_MODEL!r} would be served as {embedding_model!r}, the "
                          f"embedding model's id — rename [strategies.{EMBEDDING_MODEL}].")
    if not models:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped)
        raise ConfigError(f"No strategy can be served ({reasons}) — fix one of them or set serve.strategies.")
    return Catalog(models, tuple(skipped), embedding_model)


def build_served_model(project: Project, name: str, section: StrategyConfig) -> ServedModel:
    """A strategy that is not in the config (an adapter added at run time), built and fingerprinted as if it were
    [strategies.NAME] = section."""
    from adaptlab.strategies.factory import build_strategy

    config = project.config
    strategy = build_strategy(project, name, section=section)
    as_configured = config.model_copy(update={"strategies": {**config.strategies, name: section}})
    model_id = config.serve.model_prefix + name
    return ServedModel(model_id, name, strategy.kind, strategy, _fingerprint(as_configured, strategy))


def _fingerprint(config: AdaptlabConfig, strategy: Strategy) -> str:
    return "fp_" + cache_context(config, strategy.name, strategy)[:16]


@dataclass(frozen=True)
class Pricer:
    """The price of one answer: its measured wall time on the machine, plus its tokens at an API's prices."""

    usd_per_hour: float
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, answer: Answer) -> float:
        compute = answer.latency_ms / 3_600_000 * self.usd_per_hour
        tokens = (answer.usage.prompt_tokens * self.input_per_mtok
                  + answer.usage.completion_tokens * self.output_per_mtok) / 1_000_000
        return compute + tokens


def make_pricer(config: AdaptlabConfig) -> Pricer:
    settings = config.serve
    if not settings.cost_api_model:
        return Pricer(settings.cost_usd_per_hour)
    from adaptlab.cost.catalog import load_catalog

    price = load_catalog(config.prices).api_model(settings.cost_api_model)
    return Pricer(settings.cost_usd_per_hour, price.input_per_mtok, price.output_per_mtok)


class Answering:
    """Answers questions for served models across the lookup and generation lanes."""

    def __init__(self, settings: ServeConfig, *, llama_cpp: bool) -> None:
        if llama_cpp and settings.generation_workers > 1:
            raise ConfigError(f"serve.generation_workers = {settings.generation_workers}, but generator.backend = "
                              f"'llama_cpp' runs one generation at a time in a process — set it to 1, or serve "
                              f"the model from an OpenAI-compatible server (generator.backend = 'openai').")
        # One caller's share of generation: its own setting, else the workers plus half of the queue.
        share = settings.max_queue_per_caller or settings.generation_workers + max(1, settings.max_queue // 2)
        self.generation = WorkLane("generation", workers=settings.generation_workers,
                                   max_waiting=settings.max_queue, per_caller=share)
        self.lookup = WorkLane("lookup", workers=settings.lookup_workers, max_waiting=settings.max_lookup_queue)

    async def answer(self, model: ServedModel, question: str, *, seed: int | None, options: AskOptions = AskOptions(),
                     probe: CacheProbe | None, caller: Caller = ANYONE) -> Answer:
        """`caller` gets its share of the generation lane, and a generation it hung up on before it started is
        dropped (ClientGone). options: the client's sampling (which bypasses the cache) and tenant. probe: what
        `probe` found for this question (None: no cache, or the sampling bypasses it)."""
        strategy = model.strategy
        if probe is not None and probe.hit is not None:
            return probe.hit
        return await self.generation.run(
            lambda: strategy.answer(question, seed=seed, options=options, probe=probe), caller)

    async def stream(self, model: ServedModel, question: str, *, seed: int | None, options: AskOptions = AskOptions(),
                     probe: CacheProbe | None, caller: Caller = ANYONE) -> AsyncGenerator[AnswerEvent, None]:
        """`answer`, streamed: the strategy's own stream runs on the generation lane and each piece is passed on
        as it comes (the server sends a cache hit's events as one body, without calling this). Closing this
        iterator (the client hung up) stops the generation at its next piece."""
        strategy = model.strategy
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[AnswerEvent | None] = asyncio.Queue()  # None: the job has ended
        stop = threading.Event()

        def generate() -> None:
            events = strategy.stream(question, seed=seed, options=options, probe=probe)
            try:
                for event in events:
                    loop.call_soon_threadsafe(pieces.put_nowait, event)
                    if stop.is_set():
                        break  # nobody reads on: stop generating (llama.cpp stops at this token)
            finally:
                events.close()

        result = await self.generation.start(generate, caller)
        # Scheduled after every piece the job queued (call_soon_threadsafe keeps their order).
        result.add_done_callback(lambda _: pieces.put_nowait(None))
        try:
            while True:
                piece = await pieces.get()
                if piece is None:
                    break
                yield piece
            result.result()  # the job's error, if it failed
        finally:
            stop.set()

    def shutdown(self) -> None:
        self.generation.shutdown()
        self.lookup.shutdown()

    async def probe(self, model: ServedModel, question: str, options: AskOptions) -> CacheProbe | None:
        """The cache look-up on its lane (None for a strategy without a cache, and for a request whose own
        sampling bypasses it): a hit is answered without generation; a miss is passed to `answer` / `stream`."""
        strategy = model.strategy
        if strategy.cache_reach == "none" or not options.is_default:
            return None
        tenant = options.tenant
        if strategy.cache_reach == "local":
            probe = strategy.probe_cache(question, exact_only=True, tenant=tenant)
            if probe.hit is None and strategy.semantic_cache:
                probe = await self.lookup.run(lambda: strategy.probe_cache(question, tenant=tenant))
            return probe
        # a network backend (Redis) is never waited on by the event loop
        return await self.lookup.run(lambda: strategy.probe_cache(question, tenant=tenant))
