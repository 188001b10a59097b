"""The project folder (default ./.adaptlab) and the components built from one config.

Everything a project writes lives under its home — the index, the logs, locks — so projects never mix.

Components are built on first use from the config, through the backend factories (`adaptlab.embed.factory`,
`adaptlab.models.factory`, ...), or passed in: `Project(config, generator=FakeGenerator())` answers with a fake
model, `project.with_parts(embedder=LockedEmbedder(project.embedder))` shares every other part already built.
Nothing outside this class assigns a component.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from adaptlab.config import AdaptlabConfig, ChunkConfig, GeneratorConfig, RetrieveConfig
from adaptlab.errors import ConfigError, IngestError
from adaptlab.runtime import apply_threads

if TYPE_CHECKING:
    from adaptlab.cache.answer_cache import AnswerCache
    from adaptlab.embed.base import Embedder
    from adaptlab.logs import CallLog
    from adaptlab.models.adapters import BaseKey, SharedBase
    from adaptlab.models.base import Generator
    from adaptlab.rag.context import ChunkContextWriter, ContextProgress
    from adaptlab.rag.index import ProgressCallback
    from adaptlab.rag.retrieve import Retriever
    from adaptlab.rag.store import VectorStore
    from adaptlab.types import IngestReport


class Project:
    def __init__(self, config: AdaptlabConfig, *, generator: Generator | None = None,
                 embedder: Embedder | None = None, store: VectorStore | None = None,
                 cache: AnswerCache | None = None, logger: CallLog | None = None,
                 generators: dict[str, Generator] | None = None,
                 bases: dict[BaseKey, SharedBase] | None = None) -> None:
        self.config = config
        self._generator = generator
        self._generators: dict[str, Generator] = dict(generators or {})  # [generators.NAME], built on first use
        # Loaded bases of fine-tuned strategies, one per GGUF and context: the same dict in every with_parts copy.
        self._bases: dict[BaseKey, SharedBase] = bases if bases is not None else {}
        self._embedder = embedder
        self._store = store
        self._cache = cache
        self._logger = logger
        self._retriever: Retriever | None = None  # built from the store and embedder: never passed in
        self._index_stores: dict[str, VectorStore] = {}  # indexes of rag strategies' other [chunk] settings
        self._home: Path | None = None

    def with_parts(self, *, generator: Generator | None = None, embedder: Embedder | None = None,
                   store: VectorStore | None = None, cache: AnswerCache | None = None) -> Project:
        """A project on the same config that keeps the parts built so far, with the ones given replaced.

        The cache is not shared when the embedder is replaced: its semantic lookups use the new embedder."""
        return Project(self.config, generator=generator or self._generator, embedder=embedder or self._embedder,
                       store=store or self._store,
                       cache=cache or (self._cache if embedder is None else None), logger=self._logger,
                       generators=self._generators, bases=self._bases)

    @property
    def home(self) -> Path:
        if self._home is None:
            self._home = self.config.home_dir()
            self._home.mkdir(parents=True, exist_ok=True)
        return self._home

    @property
    def log_path(self) -> Path:
        return self.home / "logs.db"

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from adaptlab.embed.factory import create_embedder

            apply_threads(self.config.runtime.threads)
            self._embedder = create_embedder(self.config)
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from adaptlab.models.factory import create_generator

            self._generator = create_generator(self.config)
        return self._generator

    def generator_settings(self, name: str) -> GeneratorConfig:
        """The settings of generator `name` ("" is [generator])."""
        if not name:
            return self.config.generator
        settings = self.config.generators.get(name)
        if settings is None:
            known = ", ".join(sorted(self.config.generators)) or "none — add a [generators.NAME] section"
            raise ConfigError(f"No generator named {name!r} — known: {known}.")
        return settings

    def generator_for(self, name: str) -> Generator:
        """Generator `name` of [generators.NAME] ("" is [generator]); built once and shared by its strategies."""
        if not name:
            return self.generator
        if name not in self._generators:
            from adaptlab.models.factory import create_generator

            self._generators[name] = create_generator(self.config, settings=self.generator_settings(name))
        return self._generators[name]

    def adapted_generator(self, name: str, adapter: Path) -> Generator:
        """Generator `name` (a llama.cpp one) answering with the LoRA `adapter`. All adapters on the same base GGUF
        and context share one loaded base, which sets each call's adapter (models/adapters.py): the base is most
        of the memory. The adapter is loaded now, so a bad file fails here."""
        from adaptlab.models.factory import base_key, create_adapted_generator, open_shared_base

        settings = self.generator_settings(name)
        if settings.backend != "llama_cpp":
            raise ConfigError(f"A LoRA adapter file is loaded by llama.cpp, but generator {name or '[generator]'!r} "
                              f"has backend {settings.backend!r} — use a llama_cpp generator, or name the model the "
                              f"server serves the adapter as (served_model).")
        key = base_key(settings)
        if key not in self._bases:
            self._bases[key] = open_shared_base(self.config, settings)
        return create_adapted_generator(self.config, settings, self._bases[key], adapter.resolve())

    def adapter_loaded(self, name: str, adapter: Path) -> bool:
        """Whether `adapter` is loaded now on generator `name`'s shared base (never loads anything)."""
        base = self._opened_base(name)
        return base is not None and base.is_loaded(adapter.resolve())

    def unload_adapter(self, name: str, adapter: Path) -> bool:
        """Free `adapter` from generator `name`'s shared base (a later use loads it again); whether it was loaded."""
        base = self._opened_base(name)
        return base is not None and base.unload(adapter.resolve())

    def _opened_base(self, name: str) -> SharedBase | None:
        from adaptlab.models.factory import base_key

        settings = self.generator_settings(name)
        return self._bases.get(base_key(settings)) if settings.backend == "llama_cpp" else None

    @property
    def store(self) -> VectorStore:
        """The configured vector store, opened (and checked) for the configured embedder."""
        if self._store is None:
            from adaptlab.rag.store_factory import create_store

            store = create_store(self.config, self.home)
            store.open(self.embedder.name, self.embedder.dimension)
            self._store = store
        return self._store

    @property
    def retriever(self) -> Retriever:
        """Dense + keyword search over the store, fused, as `adaptlab retrieve` and every retrieving strategy run it."""
        if self._retriever is None:
            self._retriever = self._build_retriever(self.config.retrieve)
        return self._retriever

    def index_settings(self, strategy_names: Iterable[str] | None = None) -> list[ChunkConfig]:
        """The [chunk] settings of every index the rag strategies retrieve from (those named, or all configured):
        [chunk] itself first, then each other one a strategy's chunk_context asks for."""
        from adaptlab.config import RagStrategyConfig

        names = self.config.strategies if strategy_names is None else strategy_names
        found = [self.config.chunk]
        for name in names:
            section = self.config.strategies.get(name.split("@", 1)[0])
            if isinstance(section, RagStrategyConfig) and (chunk := section.chunk_settings(self.config.chunk)) \
                    not in found:
                found.append(chunk)
        return found

    def config_for_index(self, chunk: ChunkConfig) -> AdaptlabConfig:
        """The config that builds and reads the index of these [chunk] settings: [chunk]'s own index is the
        configured collection; an index with other settings is collection '<collection>_context_<context>'."""
        if chunk == self.config.chunk:
            return self.config
        store = self.config.store.model_copy(update={"collection": f"{self.config.store.collection}_context_"
                                                                   f"{chunk.context}"})
        return self.config.model_copy(update={"chunk": chunk, "store": store})

    def store_for(self, chunk: ChunkConfig) -> VectorStore:
        """The opened store of the index built with these [chunk] settings (see config_for_index)."""
        if chunk == self.config.chunk:
            return self.store
        config = self.config_for_index(chunk)
        if config.store.collection not in self._index_stores:
            from adaptlab.rag.store_factory import create_store

            store = create_store(config, self.home)
            store.open(self.embedder.name, self.embedder.dimension)
            self._index_stores[config.store.collection] = store
        return self._index_stores[config.store.collection]

    def ingest_indexes(self, paths: Sequence[str | Path], *, strategy_names: Iterable[str] | None = None,
                       tags: Sequence[str] = (), progress: ProgressCallback) -> dict[str, IngestReport]:
        """Ingest `paths` into every index the rag strategies retrieve from (see index_settings), each with its own
        [chunk] settings and context writer: {store collection: report}, [chunk]'s own index first. The caller
        holds ingest_lock()."""
        from adaptlab.rag.index import ingest

        reports: dict[str, IngestReport] = {}
        for chunk in self.index_settings(strategy_names):
            config = self.config_for_index(chunk)
            reports[config.store.collection] = ingest(
                paths, config, store=self.store_for(chunk), embedder=self.embedder, tags=tags, progress=progress,
                context_writer=self.chunk_context_writer(chunk=chunk))
        return reports

    def chunk_context_writer(self, progress: ContextProgress | None = None, *,
                             chunk: ChunkConfig | None = None) -> ChunkContextWriter | None:
        """What writes chunk contexts at ingest under chunk.context = "generator" (None when it is "none")."""
        chunk = chunk or self.config.chunk
        if chunk.context == "none":
            return None
        from adaptlab.rag.context import ContextCache, GeneratorContextWriter

        return GeneratorContextWriter(self.generator_for(chunk.context_generator), self.embedder,
                                      ContextCache(self.home / "chunk-context.sqlite"),
                                      document_tokens=chunk.context_document_tokens, progress=progress)

    def retriever_for(self, settings: RetrieveConfig, chunk: ChunkConfig | None = None) -> Retriever:
        """A retriever with other [retrieve] settings (a rag strategy's overrides) — with the query rewriter and the
        reranker those settings ask for, on their generator — over the index of `chunk` (default [chunk]'s)."""
        chunk = chunk or self.config.chunk
        if settings == self.config.retrieve and chunk == self.config.chunk:
            return self.retriever
        return self._build_retriever(settings, chunk)

    def _build_retriever(self, settings: RetrieveConfig, chunk: ChunkConfig | None = None) -> Retriever:
        from adaptlab.rag.retrieve import Retriever

        reranker = rewriter = None
        if settings.rerank:
            from adaptlab.rag.rerank import GeneratorReranker

            reranker = GeneratorReranker(self.generator_for(settings.generator), self.embedder,
                                         depth=settings.rerank_depth, passage_tokens=settings.rerank_passage_tokens)
        if settings.rewrite != "none":
            from adaptlab.rag.rewrite import GeneratorQueryRewriter

            rewriter = GeneratorQueryRewriter(self.generator_for(settings.generator), mode=settings.rewrite,
                                              queries=settings.rewrite_queries, max_tokens=settings.rewrite_max_tokens)
        store = self.store if chunk is None else self.store_for(chunk)
        return Retriever(store, self.embedder, settings, reranker=reranker, rewriter=rewriter)

    @property
    def cache(self) -> AnswerCache:
        """The answer cache ([cache]); semantic lookups use the project's embedder (loaded on first need)."""
        if self._cache is None:
            from adaptlab.cache.factory import open_cache

            self._cache = open_cache(self.config, self.home, embedder=lambda: self.embedder)
        return self._cache

    @property
    def logger(self) -> CallLog:
        if self._logger is None:
            from adaptlab.logs import CallLog

            self._logger = CallLog(self.log_path)
        return self._logger

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """One ingest at a time per project (readers are never blocked): two concurrent ingests of the same
        files would otherwise both append the same new chunks."""
        lock_path = self.home / "ingest.lock"
        with open(lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IngestError(
                    f"Another `adaptlab ingest` is running on {self.home} — wait for it to finish "
                    f"(the lock is released when that process exits, even if it is killed)."
                ) from None
            handle.write(str(os.getpid()))
            handle.flush()
            yield
