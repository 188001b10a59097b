"""Contextual chunks: one sentence per chunk, written by the generator at ingest, that says where the chunk sits.

A chunk cut from the middle of a document often never names its subject ("The rate rose to 12% in March"), so
neither BM25 nor the embedder can match it to a question that does. The generator reads the document's beginning
and the chunk and writes a short context ("From a 2020 study of COVID-19 cases in Wuhan: ..."), which is embedded
and indexed with the chunk; citations still show the chunk's own words.

Contexts are cached by content hash (generator, prompt, document beginning and chunk text) in an SQLite file under
the project home, committed after every chunk: a re-ingest, a changed setting elsewhere, or a run killed half-way
only generates the contexts it does not have yet. The document's beginning comes first in the prompt and the
chunk last, so llama.cpp reuses the evaluated document prefix across that document's chunks.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from adaptlab.embed.base import Embedder, clip_to_tokens
from adaptlab.models.base import ChatMessage, Generator

CONTEXT_PROMPT = (
    "You help a search engine. Given the beginning of a document and one passage from it, write one short "
    "sentence that situates the passage in the document: its subject and what the passage is about. Write the "
    "sentence only."
)
# Part of every cache key: change it when the prompt or the way contexts are made changes.
CONTEXT_VERSION = "context-v1"

# (chunks done, chunks total) of one document
ContextProgress = Callable[[int, int], None]


class ChunkContextWriter(Protocol):
    """Writes the context sentence of each chunk of one document (empty string: none)."""

    def contexts(self, title: str, document_text: str, chunk_texts: Sequence[str]) -> list[str]: ...


class ContextCache:
    """content hash -> context sentence, in SQLite (one file per project home; safe across processes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._connection:
            self._connection.execute("CREATE TABLE IF NOT EXISTS contexts (key TEXT PRIMARY KEY, context TEXT)")

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._connection.execute("SELECT context FROM contexts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, context: str) -> None:
        with self._lock, self._connection:  # committed at once: a killed ingest keeps every context written
            self._connection.execute("INSERT OR REPLACE INTO contexts VALUES (?, ?)", (key, context))

    def close(self) -> None:
        self._connection.close()


class GeneratorContextWriter:
    """`ChunkContextWriter` on the configured generator, cached by content hash."""

    def __init__(self, generator: Generator, embedder: Embedder, cache: ContextCache, *, document_tokens: int,
                 max_tokens: int = 48, progress: ContextProgress | None = None) -> None:
        self._generator = generator
        self._embedder = embedder
        self._cache = cache
        self._document_tokens = document_tokens
        self._max_tokens = max_tokens
        self._progress = progress
        self.generated = 0  # contexts generated (not found in the cache) since this writer was made

    def contexts(self, title: str, document_text: str, chunk_texts: Sequence[str]) -> list[str]:
        beginning = clip_to_tokens(self._embedder, document_text, self._document_tokens)
        results = []
        for done, text in enumerate(chunk_texts, start=1):
            key = hashlib.sha256("\0".join(
                [CONTEXT_VERSION, self._generator.name, str(self._max_tokens), title, beginning, text]
            ).encode("utf-8")).hexdigest()
            context = self._cache.get(key)
            if context is None:
                context = self._generate(title, beginning, text)
                self._cache.put(key, context)
                self.generated += 1
            results.append(context)
            if self._progress:
                self._progress(done, len(chunk_texts))
        return results

    def _generate(self, title: str, beginning: str, text: str) -> str:
        messages: list[ChatMessage] = [
            {"role": "system", "content": CONTEXT_PROMPT},
            {"role": "user", "content": f"Document: {title}\n{beginning}\n\nPassage:\n{text}"},
        ]
        generated = self._generator.chat(messages, max_tokens=self._max_tokens, temperature=0.0).text
        return " ".join(generated.split())  # one line: it is prefixed to the chunk's indexed text
