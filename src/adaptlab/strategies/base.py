"""The Strategy protocol: everything the harness, the cost model and the server know about a strategy."""

from __future__ import annotations

from typing import Any, Protocol

from adaptlab.types import Answer


class Strategy(Protocol):
    name: str  # the [strategies.NAME] it was built from
    kind: str  # "prompt" | "rag" | ...
    retrieves: bool  # answers carry search results and citations (retrieval metrics apply)

    def answer(self, query: str, *, seed: int | None = None) -> Answer:
        """Answer one query: text, citations, token usage, latency, cache status.

        seed: sampling seed for this call (the harness varies it across `--repeats`); None keeps the config's."""

    def describe(self) -> dict[str, Any]:
        """Parameters that identify this strategy's behaviour (recorded with every eval run)."""

    def seen_questions(self) -> list[str]:
        """Questions this strategy was shown (few-shot examples, training data): the held-out check compares
        eval questions against them."""
