"""Reranking with the configured generator as the judge (pointwise, graded 0–3).

No cross-encoder ships: the PyPI packages that wrap one (flashrank, rerankers, mxbai-rerank, local-reranker,
sentence-transformers' CrossEncoder) download their weights from a model hub at run time, which adaptlab never
does, and small-hybrid-reranker's bundled artifact is a pickled scikit-learn model, not a cross-encoder. A team
with a cross-encoder can plug it in through the `Reranker` protocol in `rag/retrieve.py`.

Each of the fused top `depth` candidates is judged in its own call, the question first and the passage last, so
llama.cpp reuses the evaluated prefix (system prompt + question) across the candidates of one query. The grade is
constrained to a JSON enum, so any backend (llama.cpp grammar, an OpenAI-compatible server's response_format)
answers in the same shape. Candidates are reordered by grade; equal grades keep their fused order, so a judge
that cannot tell passages apart leaves the ranking as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from adaptlab.embed.base import Embedder, clip_to_tokens
from adaptlab.models.base import ChatMessage, Generator
from adaptlab.rag.retrieve import Reranked
from adaptlab.types import Generation, ScoredChunk, Usage

JUDGE_SYSTEM_PROMPT = (
    "You judge whether a passage helps answer a question. Grade it: 3 = it answers the question, 2 = it "
    "partly answers it, 1 = same topic but no answer, 0 = unrelated. Reply with the grade only."
)
GRADE_SCHEMA = {
    "type": "object",
    "properties": {"grade": {"type": "integer", "enum": [0, 1, 2, 3]}},
    "required": ["grade"],
    "additionalProperties": False,
}


def parse_grade(text: str) -> int | None:
    """The 0–3 grade in a judge's reply (JSON, or a bare digit from a backend that ignored the schema)."""
    try:
        value = json.loads(text).get("grade")
    except (ValueError, AttributeError):
        digits = [c for c in text if c.isdigit()]
        value = int(digits[0]) if digits else None
    return value if isinstance(value, int) and 0 <= value <= 3 else None


class GeneratorReranker:
    """`Reranker` that asks the generator to grade each of the top `depth` candidates."""

    def __init__(self, generator: Generator, embedder: Embedder, *, depth: int, passage_tokens: int) -> None:
        self._generator = generator
        self._embedder = embedder
        self._depth = depth
        self._passage_tokens = passage_tokens

    def rerank(self, query: str, candidates: Sequence[ScoredChunk]) -> Reranked:
        judged = list(candidates[: self._depth])
        generations = [self._judge(query, candidate) for candidate in judged]
        grades = [parse_grade(generation.text) for generation in generations]
        # Ungradable replies (None) count as 1 ("same topic"): the retrieval found them, the judge said nothing.
        ranking = [1 if grade is None else grade for grade in grades]
        order = sorted(range(len(judged)), key=lambda i: (-ranking[i], i))
        reranked = [replace(judged[i], rerank_score=None if grades[i] is None else float(ranking[i]))
                    for i in order]
        usage = Usage(sum(g.usage.prompt_tokens for g in generations), sum(g.usage.completion_tokens
                                                                             for g in generations))
        return Reranked(reranked + list(candidates[self._depth:]), usage)

    def _judge(self, query: str, candidate: ScoredChunk) -> Generation:
        passage = clip_to_tokens(self._embedder, candidate.chunk.text, self._passage_tokens)
        messages: list[ChatMessage] = [
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": f"Question: {query}\n\nPassage ({candidate.chunk.title}):\n{passage}"},
        ]
        return self._generator.chat(messages, max_tokens=12, temperature=0.0, json_schema=GRADE_SCHEMA)
