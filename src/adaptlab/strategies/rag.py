"""The rag strategy: retrieve from the project's index, answer from numbered sources with citations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptlab.config import ConversationConfig
from adaptlab.rag.answer import RagAnswerer
from adaptlab.strategies.base import SAMPLING_FIELDS, AnswerStream, AskOptions, CacheProbe, Uncached
from adaptlab.strategies.conversation import FollowUpCondenser
from adaptlab.types import Answer, Standalone, Turn


class RagStrategy(Uncached):
    kind = "rag"
    retrieves = True

    def __init__(self, name: str, answerer: RagAnswerer, *, top_k: int, params: dict[str, Any],
                 kind: str = "rag", conversation: ConversationConfig | None = None) -> None:
        self.name = name
        self._condenser = FollowUpCondenser(conversation or ConversationConfig(), answerer.generator)
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
        return self._answerer.answer(query, top_k=options.top_k or self._top_k, flt=options.flt, seed=seed,
                                     sampling=options.sampling)

    def stream(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> AnswerStream:
        options = options or AskOptions()
        return self._answerer.stream(query, top_k=options.top_k or self._top_k, flt=options.flt, seed=seed,
                                     sampling=options.sampling)

    @property
    def sampling_applied(self) -> frozenset[str]:
        return SAMPLING_FIELDS

    def standalone(self, question: str, history: Sequence[Turn]) -> Standalone:
        return self._condenser.standalone(question, history)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self._params}

    def seen_questions(self) -> list[str]:
        return []  # retrieval sees documents, not questions
