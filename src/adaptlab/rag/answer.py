"""Answer a question from retrieved chunks, with numbered sources and citations.

Two ways a citation is found, and each citation says which:
- "marker": the model wrote [n] for a source it was given;
- "overlap": the model wrote no marker (a 135M model often does not), and the answer's words are mostly
  found in source n (share of the answer's content words present in it ≥ 0.6).
When the best chunk's cosine similarity is below `answer.min_relevance`, no model is called and the answer
is a refusal: saying "I don't know" beats inventing.
"""

from __future__ import annotations

import re
import time
from collections import abc
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from adaptlab.config import AnswerConfig
from adaptlab.logs import CallLog
from adaptlab.models.base import ChatMessage, Generator, generation_kwargs
from adaptlab.rag.retrieve import RetrievalResult, Retriever
from adaptlab.rag.store import SearchFilter
from adaptlab.types import Answer, Citation, Generation, Sampling, ScoredChunk, TextDelta

_MARKER = re.compile(r"\[(\d{1,2})\]")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP = frozenset(
    "a an the of to in on for and or is are was were be been by with as at from that this it its which who "
    "what when where how why not no do does did can could may might will would should i you we they he she "
    "there their our your than then also".split()
)
_OVERLAP_MIN = 0.6
_SNIPPET_CHARS = 300


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def source_label(number: int, scored: ScoredChunk) -> str:
    chunk = scored.chunk
    location = f", {chunk.location}" if chunk.location else ""  # e.g. ", page 3, table 1" or ", Sales!A1:D12"
    return f"[{number}] {chunk.title}{location}"


def build_messages(question: str, sources: Sequence[ScoredChunk], system_prompt: str) -> list[ChatMessage]:
    blocks = [f"{source_label(n, s)}\n{s.chunk.text}" for n, s in enumerate(sources, start=1)]
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def best_snippet(chunk_text: str, answer_text: str) -> str:
    """The sentence of the chunk sharing most content words with the answer (the quoted evidence)."""
    answer_words = set(_content_words(answer_text))
    sentences = [s for s in _SENTENCE.split(chunk_text) if s.strip()] or [chunk_text]
    best = max(sentences, key=lambda s: len(answer_words & set(_content_words(s))))
    if not answer_words & set(_content_words(best)):
        best = chunk_text
    best = " ".join(best.split())
    return best if len(best) <= _SNIPPET_CHARS else best[: _SNIPPET_CHARS - 1] + "…"


def find_citations(answer_text: str, sources: Sequence[ScoredChunk]) -> list[Citation]:
    numbers = []
    for match in _MARKER.finditer(answer_text):
        number = int(match.group(1))
        if 1 <= number <= len(sources) and number not in numbers:
            numbers.append(number)
    cited_by: Literal["marker", "overlap"] = "marker"
    if not numbers:
        words = _content_words(_MARKER.sub(" ", answer_text))
        if words and sources:
            shares = []
            for n, s in enumerate(sources, start=1):
                source_words = set(_content_words(s.chunk.text))
                shares.append((sum(w in source_words for w in words) / len(words), -n))
            share, number = max(shares)  # on a tie, the better-ranked (lower-numbered) source
            number = -number
            if share >= _OVERLAP_MIN:
                numbers, cited_by = [number], "overlap"
    citations = []
    for number in numbers:
        scored = sources[number - 1]
        chunk = scored.chunk
        citations.append(
            Citation(
                number=number, doc_id=chunk.doc_id, path=chunk.path, title=chunk.title, page=chunk.page,
                char_start=chunk.char_start, char_end=chunk.char_end,
                snippet=best_snippet(chunk.text, answer_text), score=round(scored.score, 6), cited_by=cited_by,
                slide=chunk.slide, sheet=chunk.sheet, cells=chunk.cells, table=chunk.table,
                heading_path=chunk.heading_path,
            )
        )
    return citations


class RagAnswerer:
    def __init__(self, retriever: Retriever, generator: Generator, config: AnswerConfig, *, max_tokens: int,
                 n_ctx: int, log: CallLog | None = None) -> None:
        self._retriever = retriever
        self._generator = generator
        self._config = config
        self._max_tokens = max_tokens
        self._n_ctx = n_ctx
        self._log = log

    @property
    def parallel_answers(self) -> int | None:
        return self._generator.max_parallel

    @property
    def generator(self) -> Generator:
        """The model that answers (a follow-up question is made standalone with it)."""
        return self._generator

    def answer(self, question: str, *, top_k: int | None = None, flt: SearchFilter | None = None,
               seed: int | None = None, sampling: Sampling = Sampling()) -> Answer:
        started = time.perf_counter()
        retrieval = self._retrieve(question, top_k, flt)
        if self._should_refuse(retrieval):
            return self._refusal(question, retrieval, started)
        messages, sources = self._fit_context(question, list(retrieval.chunks[: self._config.context_chunks]))
        generation = self._generator.chat(messages, seed=seed, **self._kwargs(sampling))
        return self._answer_from(question, generation, retrieval, sources, started)

    def stream(self, question: str, *, top_k: int | None = None, flt: SearchFilter | None = None,
               seed: int | None = None,
               sampling: Sampling = Sampling()) -> abc.Generator[TextDelta | Answer, None, None]:
        """`answer`, the model's text streamed as it comes; the citations are found in the whole text, at the
        end. A refusal comes in one piece, at once."""
        started = time.perf_counter()
        retrieval = self._retrieve(question, top_k, flt)
        if self._should_refuse(retrieval):
            refusal = self._refusal(question, retrieval, started)
            if refusal.text:
                yield TextDelta(refusal.text)
            yield refusal
            return
        messages, sources = self._fit_context(question, list(retrieval.chunks[: self._config.context_chunks]))
        for event in self._generator.stream_chat(messages, seed=seed, **self._kwargs(sampling)):
            if isinstance(event, TextDelta):
                yield event
            else:
                yield self._answer_from(question, event, retrieval, sources, started)

    def _kwargs(self, sampling: Sampling) -> dict:
        # The context budget (_fit_context) keeps room for the configured max_tokens; a client's larger one
        # may run into the window, which llama.cpp reports as an error of its own.
        return generation_kwargs(sampling, max_tokens=self._max_tokens, json_schema=None)

    def _retrieve(self, question: str, top_k: int | None, flt: SearchFilter | None) -> RetrievalResult:
        retrieval = self._retriever.retrieve(question, top_k=top_k, flt=flt)
        if self._log:
            self._log.record("retrieval", latency_ms=retrieval.latency_ms, query=question,
                             hits=len(retrieval.chunks), best_dense=retrieval.best_dense_score)
        return retrieval

    def _refusal(self, question: str, retrieval: RetrievalResult, started: float) -> Answer:
        answer = Answer(text=self._config.refusal_text, refused=True, model=self._generator.name,
                        latency_ms=(time.perf_counter() - started) * 1000, retrieved=retrieval.chunks,
                        search_results=retrieval.chunks, usage=retrieval.usage)
        self._record(question, answer)
        return answer

    def _answer_from(self, question: str, generation: Generation, retrieval: RetrievalResult,
                     sources: list[ScoredChunk], started: float) -> Answer:
        if self._log:
            self._log.record("llm", model=generation.model, prompt_tokens=generation.usage.prompt_tokens,
                             completion_tokens=generation.usage.completion_tokens, latency_ms=generation.latency_ms,
                             purpose="rag-answer")
        answer = Answer(
            text=generation.text,
            citations=tuple(find_citations(generation.text, sources)),
            # Query rewriting and reranking call the model too: their tokens are part of what an answer costs.
            usage=generation.usage + retrieval.usage,
            latency_ms=(time.perf_counter() - started) * 1000,
            model=generation.model,
            retrieved=tuple(sources),
            search_results=retrieval.chunks,
            retries=generation.retries,
            finish_reason=generation.finish_reason or "stop",
        )
        self._record(question, answer)
        return answer

    def prompt_for(self, question: str, *, top_k: int | None = None,
                   flt: SearchFilter | None = None) -> list[ChatMessage]:
        """The exact messages `answer` would send (benchmarks time the bare model on them)."""
        retrieval = self._retriever.retrieve(question, top_k=top_k, flt=flt)
        return self._fit_context(question, list(retrieval.chunks[: self._config.context_chunks]))[0]

    def _should_refuse(self, retrieval: RetrievalResult) -> bool:
        if not retrieval.chunks:
            return True
        best = retrieval.best_dense_score
        return best is not None and best < self._config.min_relevance

    def _fit_context(
        self, question: str, sources: list[ScoredChunk]
    ) -> tuple[list[ChatMessage], list[ScoredChunk]]:
        """Drop the lowest-ranked sources until prompt + answer fit the model's context window.

        Returns the sources kept with the messages (not on `self`: one answerer serves concurrent requests)."""
        budget = self._n_ctx - self._max_tokens - 16  # chat-template overhead
        while True:
            messages = build_messages(question, sources, self._config.system_prompt)
            used = sum(self._generator.count_tokens(m["content"]) + 4 for m in messages)
            if used <= budget or not sources:
                return messages, sources
            if len(sources) > 1:
                sources = sources[:-1]
                continue
            # One source still too long (large chunks from another embedder): keep the share that fits.
            only = sources[0]
            keep = max(1, int(len(only.chunk.text) * budget / used * 0.9))
            if keep >= len(only.chunk.text):
                return messages, sources
            clipped = replace(only.chunk, text=only.chunk.text[:keep], char_end=only.chunk.char_start + keep)
            sources = [replace(only, chunk=clipped)]

    def _record(self, question: str, answer: Answer) -> None:
        if self._log:
            self._log.record("answer", model=answer.model, prompt_tokens=answer.usage.prompt_tokens,
                             completion_tokens=answer.usage.completion_tokens, latency_ms=answer.latency_ms,
                             query=question, refused=answer.refused, citations=len(answer.citations))

