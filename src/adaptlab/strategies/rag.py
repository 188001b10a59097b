"""The rag strategy: retrieve from the project's index, answer from numbered sources with citations."""

from __future__ import annotations

from typing import Any

from adaptlab.rag.answer import RagAnswerer
from adaptlab.strategies.base import AnswerStream, AskOptions, CacheProbe, Uncached
from adaptlab.types import Answer


class RagStrategy(Uncached):
    kind = "rag"
    retrieves = True

    def __init__(self, name: str, answerer: RagAnswerer, *, top_k: int, params: dict[str, Any],
                 kind: str = "rag") -> None:
        self.name = name
        self.kind = kind
        self._answerer = answerer
        self._top_k = top_k
        self._params = params

    @property
    def parallel_answers(self) -> int | None:
        return self._answerer.parallel_answers

    def answer(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> Answer:
        options = options or AskOptions()
        return self._answerer.answer(query, top_k=options.top_k or self._top_k, flt=options.flt, seed=seed)

    def stream(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> AnswerStream:
        options = options or AskOptions()
        return self._answerer.stream(query, top_k=options.top_k or self._top_k, flt=options.flt, seed=seed)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self._params}

    def seen_questions(self) -> list[str]:
        return []  # retrieval sees documents, not questions
