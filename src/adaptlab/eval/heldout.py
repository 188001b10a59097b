"""Held-out discipline: find eval questions that a strategy has already seen (few-shot examples, training data).

An eval question equal to a seen question after SQuAD normalisation is an exact duplicate; one whose word
set has Jaccard similarity ≥ threshold with a seen question is a near duplicate. Either inflates the score
of the strategy that saw it, so the harness warns (and `--strict` refuses).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import InputError
from adaptlab.eval.cases import EvalCase
from adaptlab.eval.metrics import normalize_answer

_QUESTION_KEYS = ("question", "prompt", "instruction", "input", "text")


@dataclass(frozen=True)
class SeenText:
    text: str
    source: str  # where it was seen: "few-shot examples of strategy 'x'", "training file f.jsonl:12"


@dataclass(frozen=True)
class Overlap:
    case_id: str
    question: str
    seen: SeenText
    similarity: float
    exact: bool

    def __str__(self) -> str:
        how = "exact duplicate" if self.exact else f"near duplicate (Jaccard {self.similarity:.2f})"
        return f"eval case {self.case_id!r} is an {how} of a question in {self.seen.source}: {self.seen.text[:80]!r}"


def find_overlaps(cases: Sequence[EvalCase], seen: Sequence[SeenText], threshold: float) -> list[Overlap]:
    """Every (case, seen text) pair that is an exact or near duplicate; the best match per case."""
    seen_words = [frozenset(normalize_answer(s.text).split()) for s in seen]
    seen_normal = [normalize_answer(s.text) for s in seen]
    by_word: dict[str, list[int]] = {}
    for index, words in enumerate(seen_words):
        for word in words:
            by_word.setdefault(word, []).append(index)
    overlaps: list[Overlap] = []
    for case in cases:
        normal = normalize_answer(case.question)
        words = frozenset(normal.split())
        shared = Counter(i for word in words for i in by_word.get(word, ()))
        best: Overlap | None = None
        for index, count in shared.items():
            union = len(words) + len(seen_words[index]) - count
            similarity = count / union if union else 0.0
            exact = normal == seen_normal[index]
            if (exact or similarity >= threshold) and (best is None or similarity > best.similarity):
                best = Overlap(case.case_id, case.question, seen[index], 1.0 if exact else similarity, exact)
        if best:
            overlaps.append(best)
    return overlaps


def training_questions(path: str | Path) -> list[SeenText]:
    """Questions of a training file (JSONL): the first of question/prompt/instruction/input/text, or the
    user turns of a "messages" conversation."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read the training file: {exc}",
                         "pass a UTF-8 JSONL file to --train") from None
    seen: list[SeenText] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(str(path), number, f"invalid JSON: {exc.msg}", "fix or remove the line") from None
        if not isinstance(record, dict):
            continue
        source = f"training file {path.name}:{number}"
        for key in _QUESTION_KEYS:
            if isinstance(record.get(key), str):
                seen.append(SeenText(record[key], source))
                break
        else:
            for message in record.get("messages") or []:
                if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"),
                                                                                               str):
                    seen.append(SeenText(message["content"], source))
    return seen
