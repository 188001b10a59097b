"""The project folder (default ./.adaptlab) and the components built from one config.

Everything a project writes lives under its home — the index, the logs, locks — so projects never mix.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from adaptlab.config import AdaptlabConfig
from adaptlab.errors import IngestError
from adaptlab.runtime import apply_threads


@dataclass
class Project:
    config: AdaptlabConfig

    @cached_property
    def home(self) -> Path:
        home = self.config.home_dir()
        home.mkdir(parents=True, exist_ok=True)
        return home

    @property
    def log_path(self) -> Path:
        return self.home / "logs.db"

    @cached_property
    def embedder(self):
        from adaptlab.embed.factory import create_embedder

        apply_threads(self.config.runtime.threads)
        return create_embedder(self.config)

    @cached_property
    def generator(self):
        from adaptlab.models.factory import create_generator

        return create_generator(self.config)

    @cached_property
    def store(self):
        """The configured vector store, opened (and checked) for the configured embedder."""
        store = self.open_store_unchecked()
        store.open(self.embedder.name, self.embedder.dimension)
        return store

    def open_store_unchecked(self):
        if self.config.store.backend == "qdrant":
            from adaptlab.rag.qdrant_store import QdrantStore

            return QdrantStore(self.config.store)
        from adaptlab.rag.lance_store import LanceStore

        return LanceStore(self.config.store, self.home / "lancedb")

    @cached_property
    def cache(self):
        """The answer cache ([cache]); semantic lookups use the project's embedder."""
        from adaptlab.cache.factory import open_cache

        return open_cache(self.config, self.home, embedder=lambda: self.embedder)

    @cached_property
    def logger(self):
        from adaptlab.logs import CallLog

        return CallLog(self.log_path)

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
