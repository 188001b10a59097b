"""Query rewriting with the configured generator: extra search queries that the Retriever fuses with the question.

- 'hyde' (hypothetical document embeddings): the generator writes a short passage as if answering; the passage
  shares vocabulary and phrasing with the documents that do answer, so it is searched beside the question.
- 'multi_query': the generator rephrases the question N ways; each rephrasing is searched.
The original question is always searched too: a bad rewrite adds a list to the fusion, it never replaces the
question.
"""

from __future__ import annotations

from typing import Literal

from adaptlab.models.base import ChatMessage, Generator
from adaptlab.rag.retrieve import Rewritten

HYDE_PROMPT = (
    "Write a short passage, two or three sentences, from a document that answers the question. Write the passage "
    "only."
)
MULTI_QUERY_PROMPT = (
    "Rewrite the question {n} different ways, with other words a document might use. One rewrite per line, "
    "nothing else."
)


class GeneratorQueryRewriter:
    """`QueryRewriter` that asks the generator for a HyDE passage or rephrasings."""

    def __init__(self, generator: Generator, *, mode: Literal["hyde", "multi_query"], queries: int,
                 max_tokens: int) -> None:
        self._generator = generator
        self._mode = mode
        self._queries = queries
        self._max_tokens = max_tokens

    def rewrite(self, query: str) -> Rewritten:
        """Extra queries to search beside `query` (possibly none, never `query` itself)."""
        prompt = HYDE_PROMPT if self._mode == "hyde" else MULTI_QUERY_PROMPT.format(n=self._queries)
        messages: list[ChatMessage] = [{"role": "system", "content": prompt}, {"role": "user", "content": query}]
        generation = self._generator.chat(messages, max_tokens=self._max_tokens, temperature=0.0)
        return Rewritten(tuple(self._queries_in(query, generation.text)), generation.usage)

    def _queries_in(self, query: str, text: str) -> list[str]:
        if self._mode == "hyde":
            return [text.strip()] if text.strip() else []
        lines = [line.strip().lstrip("-*0123456789.) ").strip() for line in text.splitlines()]
        seen = {query.strip().lower()}
        rewrites = []
        for line in lines:
            if line and line.lower() not in seen:
                seen.add(line.lower())
                rewrites.append(line)
        return rewrites[: self._queries]
