"""The prompt strategy: the base model, a system prompt and optional few-shot examples — nothing else.

Few-shot examples come from a JSONL file of {"question", "answer"}; either the first k are shown to every
question ("static") or the k whose questions are nearest by embedding cosine ("similar"). With a JSON Schema,
decoding is constrained to valid JSON — a strong prompting baseline for structured output.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptlab.config import ConversationConfig, PromptStrategyConfig
from adaptlab.embed.base import Embedder
from adaptlab.errors import ConfigError, InputError
from adaptlab.logs import CallLog
from adaptlab.models.base import ChatMessage, Generator, generation_kwargs
from adaptlab.strategies.base import SAMPLING_FIELDS, AnswerStream, AskOptions, CacheProbe, Uncached
from adaptlab.strategies.conversation import FollowUpCondenser
from adaptlab.types import Answer, Generation, Standalone, TextDelta, Turn


@dataclass(frozen=True)
class FewShotExample:
    question: str
    answer: str


def load_examples(path: Path) -> list[FewShotExample]:
    """Read {"question", "answer"} lines (answer may be any JSON: it is shown as JSON text)."""
    if not path.is_file():
        raise ConfigError(f"Few-shot file {path} does not exist — fix strategies.*.few_shot_path.")
    examples: list[FewShotExample] = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(str(path), line_number, f"invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str) or "answer" not in record:
            raise InputError(str(path), line_number, 'expected an object with "question" and "answer"',
                             'write one {"question": "...", "answer": "..."} per line')
        answer = record["answer"]
        examples.append(FewShotExample(record["question"], answer if isinstance(answer, str) else json.dumps(answer)))
    if not examples:
        raise InputError(str(path), None, "no examples", "add {\"question\", \"answer\"} lines or set few_shot_k = 0")
    return examples


def load_schema(path: Path) -> dict[str, Any]:
    import jsonschema

    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"JSON Schema file {path}: {exc.strerror} — fix strategies.*.json_schema_path.") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from None
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InputError(str(path), None, f"not a valid JSON Schema: {exc.message}") from None
    return schema


class PromptStrategy(Uncached):
    kind = "prompt"
    retrieves = False

    def __init__(self, name: str, config: PromptStrategyConfig, generator: Generator, *,
                 examples: Sequence[FewShotExample] = (), schema: dict[str, Any] | None = None,
                 embedder: Embedder | None = None, max_tokens: int, log: CallLog | None = None,
                 conversation: ConversationConfig | None = None) -> None:
        if config.few_shot_k and not examples:
            raise ConfigError(f"strategies.{name}.few_shot_k = {config.few_shot_k} but no examples were given — "
                              f"set strategies.{name}.few_shot_path.")
        if config.few_shot_selection == "similar" and config.few_shot_k and embedder is None:
            raise ConfigError(f"strategies.{name}: 'similar' few-shot selection needs an embedder.")
        self.name = name
        self.kind = config.kind  # "prompt", or "finetuned" (same prompting, adapted model)
        self._config = config
        self._generator = generator
        self._condenser = FollowUpCondenser(conversation or ConversationConfig(), generator)
        self._examples = list(examples)
        self._schema = schema
        self._embedder = embedder
        self._max_tokens = max_tokens
        self._log = log
        self._example_vectors: np.ndarray | None = None
        self._vectors_lock = threading.Lock()  # answers in parallel (eval, serve) embed the examples once

    @property
    def parallel_answers(self) -> int | None:
        return self._generator.max_parallel

    def describe(self) -> dict[str, Any]:
        params = {
            "kind": self.kind, "model": self._generator.name, "generator": self._config.generator or "default",
            "system_prompt": self._config.system_prompt,
            "few_shot_k": self._config.few_shot_k, "few_shot_selection": self._config.few_shot_selection,
            "few_shot_path": self._config.few_shot_path, "json_schema": bool(self._schema),
            "decoding": (f"constrained to the JSON schema {Path(self._config.json_schema_path).name}"
                         if self._schema else "free text"),
            "max_tokens": self._max_tokens,
        }
        adapter = getattr(self._config, "adapter", "") or getattr(self._config, "served_model", "")
        if adapter:
            params["adapter"] = adapter
        return params

    def seen_questions(self) -> list[str]:
        return [e.question for e in self._examples] if self._config.few_shot_k else []

    def messages_for(self, query: str) -> list[ChatMessage]:
        messages: list[ChatMessage] = [{"role": "system", "content": self._config.system_prompt}]
        for example in self._choose_examples(query):
            messages.append({"role": "user", "content": example.question})
            messages.append({"role": "assistant", "content": example.answer})
        messages.append({"role": "user", "content": query})
        return messages

    def answer(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> Answer:
        # options: this strategy retrieves nothing, so per-call retrieval changes do not apply (callers check
        # `retrieves` before offering them); probe: it has no cache.
        started = time.perf_counter()
        generation = self._generator.chat(self.messages_for(query), seed=seed, **self._sampling(options))
        return self._answer_from(generation, started)

    def stream(self, query: str, *, seed: int | None = None, options: AskOptions | None = None,
               probe: CacheProbe | None = None) -> AnswerStream:
        started = time.perf_counter()
        for event in self._generator.stream_chat(self.messages_for(query), seed=seed, **self._sampling(options)):
            if isinstance(event, TextDelta):
                yield event
            else:
                yield self._answer_from(event, started)

    @property
    def sampling_applied(self) -> frozenset[str]:
        return SAMPLING_FIELDS - {"json_schema"} if self._schema is not None else SAMPLING_FIELDS

    def standalone(self, question: str, history: Sequence[Turn]) -> Standalone:
        return self._condenser.standalone(question, history)

    def _sampling(self, options: AskOptions | None) -> dict[str, Any]:
        sampling = (options or AskOptions()).sampling
        return generation_kwargs(sampling, max_tokens=self._max_tokens, json_schema=self._schema)

    def _answer_from(self, generation: Generation, started: float) -> Answer:
        if self._log:
            self._log.record("llm", model=generation.model, prompt_tokens=generation.usage.prompt_tokens,
                             completion_tokens=generation.usage.completion_tokens, latency_ms=generation.latency_ms,
                             purpose=f"strategy:{self.name}")
        return Answer(text=generation.text, usage=generation.usage, model=generation.model,
                      latency_ms=(time.perf_counter() - started) * 1000, retries=generation.retries,
                      finish_reason=generation.finish_reason or "stop")

    def _choose_examples(self, query: str) -> list[FewShotExample]:
        k = self._config.few_shot_k
        if not k:
            return []
        if self._config.few_shot_selection == "static" or len(self._examples) <= k:
            return self._examples[:k]
        assert self._embedder is not None
        with self._vectors_lock:
            if self._example_vectors is None:
                self._example_vectors = self._embedder.embed([e.question for e in self._examples])
        similarities = self._example_vectors @ self._embedder.embed([query])[0]
        nearest = np.argsort(-similarities, kind="stable")[:k]
        # Most similar last: the example right before the question influences a small model most.
        return [self._examples[i] for i in reversed(nearest)]
