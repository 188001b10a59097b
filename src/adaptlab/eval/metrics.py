"""Per-case metric functions for the evaluation harness.

Everything here is pure (no I/O, no model loading): the harness passes in predictions, gold data and,
for groundedness, an embedding callable. Each function scores ONE case; aggregation and confidence
intervals live in `adaptlab.eval.stats`.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import numpy as np

from adaptlab.datasets.squad import normalize_answer as normalize_answer

# --------------------------------------------------------------------------------------------------
# Extractive QA (SQuAD v1.1 official definitions, so numbers are comparable with published ones)
# --------------------------------------------------------------------------------------------------

# normalize_answer (SQuAD v1.1 normalisation) lives with the SQuAD data in adaptlab.datasets.squad: the
# dataset converters, below eval in the import layers, dedupe with it too.


def _require_answers(answers: Sequence[str]) -> None:
    # An empty gold list would silently score 0 (or 1) and skew the mean: that is a dataset bug.
    if len(answers) == 0:
        raise ValueError("answers must contain at least one reference answer")


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference answer, else 0.0."""
    _require_answers(answers)
    pred = normalize_answer(prediction)
    return 1.0 if any(pred == normalize_answer(a) for a in answers) else 0.0


def _f1_single(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    # SQuAD v2 convention for empties (v1.1 had no empty answers): both empty agree, one empty does not.
    if not pred_tokens or not gold_tokens:
        return 1.0 if pred_tokens == gold_tokens else 0.0
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 (multiset overlap of normalised tokens), maximised over the reference answers."""
    _require_answers(answers)
    pred_tokens = normalize_answer(prediction).split()
    return max(_f1_single(pred_tokens, normalize_answer(a).split()) for a in answers)


# --------------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------------


_LABEL_STRIP = string.punctuation.replace("_", "") + " "


def _normalize_label(text: str) -> str:
    # Unlike normalize_answer this keeps '_' and inner punctuation: labels like "play_music" must survive.
    text = " ".join(text.lower().split())
    return text.strip(_LABEL_STRIP)


def _label_spans(text: str, label: str) -> list[tuple[int, int]]:
    # Whole-word phrase: no word character ([A-Za-z0-9_], so '_' counts as a letter) on either side.
    pattern = re.compile(r"(?<!\w)" + re.escape(label) + r"(?!\w)")
    return [m.span() for m in pattern.finditer(text)]


def label_correct(prediction: str, label: str, labels: Sequence[str] = ()) -> float:
    """1.0 if the prediction names `label`, else 0.0.

    Rule: both sides are normalised by lower-casing, collapsing whitespace and stripping surrounding
    punctuation/whitespace (underscores and inner punctuation are kept). An exact match scores 1.0.
    Otherwise, if `labels` (all known labels) is given, the prediction scores 1.0 when exactly one known
    label occurs in it as a whole-word phrase and that label is `label` — small models write
    "The intent is: play_music." instead of the bare label. A label that only occurs inside a longer
    known label that also occurs (e.g. "music" inside "play music") does not count separately.
    Naming two different known labels is ambiguous and scores 0.0.
    """
    pred = _normalize_label(prediction)
    gold = _normalize_label(label)
    if pred == gold:
        return 1.0
    if not labels or not gold:
        return 0.0
    # The gold label is always a candidate even if the caller's label list forgot it.
    known = {_normalize_label(lab) for lab in labels} | {gold}
    known.discard("")
    spans = {lab: _label_spans(pred, lab) for lab in known}
    spans = {lab: s for lab, s in spans.items() if s}

    def shadowed(lab: str, span: tuple[int, int]) -> bool:
        return any(
            len(other) > len(lab) and o_start <= span[0] and span[1] <= o_end
            for other, other_spans in spans.items()
            for o_start, o_end in other_spans
        )

    found = {lab for lab, lab_spans in spans.items() if any(not shadowed(lab, s) for s in lab_spans)}
    return 1.0 if found == {gold} else 0.0


# --------------------------------------------------------------------------------------------------
# Structured (JSON) output
# --------------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)


def parse_json_output(text: str) -> tuple[bool, Any]:
    """(True, value) if `text` holds JSON, else (False, None).

    Tried in order: the whole text; the body of a ```json … ``` (or bare ```) fence; the first balanced
    {...} or [...] found by `raw_decode` from each '{' / '[' position (models wrap JSON in prose).
    """
    try:
        return True, json.loads(text)
    except ValueError:
        pass
    for match in _FENCE.finditer(text):
        try:
            return True, json.loads(match.group(1))
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for pos, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _end = decoder.raw_decode(text, pos)
            except ValueError:
                continue
            return True, value
    return False, None


def schema_valid(value: Any, schema: dict) -> bool:
    """Whether `value` validates against `schema` (draft picked from its "$schema", latest by default).

    Raises jsonschema.SchemaError for a malformed schema: that is a configuration error, not a model miss.
    """
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return bool(validator_cls(schema).is_valid(value))


@dataclass(frozen=True)
class FieldScores:
    accuracy: float
    precision: float
    recall: float
    f1: float


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    # Leaf paths like "a.b[0].c"; empty containers are leaves so that {} vs {"x": 1} is still scored.
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(_flatten(child, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, child in enumerate(value):
            out.update(_flatten(child, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _leaf_equal(predicted: Any, expected: Any) -> bool:
    # bool is an int subclass; keep true/false distinct from 1/0 so a type slip is not rewarded.
    if isinstance(predicted, bool) or isinstance(expected, bool):
        return type(predicted) is type(expected) and predicted == expected
    if isinstance(predicted, str) and isinstance(expected, str):
        return normalize_answer(predicted) == normalize_answer(expected)
    if isinstance(predicted, int | float) and isinstance(expected, int | float):
        return float(predicted) == float(expected)
    equal: bool = predicted == expected  # JSON values: == gives a bool
    return equal


def field_scores(predicted: Any, expected: Any) -> FieldScores:
    """Leaf-level accuracy/precision/recall/F1 of a predicted JSON value against the expected one.

    `predicted` None means the output was not JSON at all and scores zero everywhere.
    """
    if predicted is None:
        return FieldScores(0.0, 0.0, 0.0, 0.0)
    pred_leaves = _flatten(predicted)
    gold_leaves = _flatten(expected)
    if not gold_leaves:  # cannot happen with _flatten (empty containers are leaves); kept for safety
        if not pred_leaves:
            return FieldScores(1.0, 1.0, 1.0, 1.0)
        return FieldScores(1.0, 0.0, 1.0, 0.0)
    correct = sum(
        1 for path, val in pred_leaves.items() if path in gold_leaves and _leaf_equal(val, gold_leaves[path])
    )
    precision = correct / len(pred_leaves) if pred_leaves else 0.0
    recall = correct / len(gold_leaves)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return FieldScores(accuracy=recall, precision=precision, recall=recall, f1=f1)


# --------------------------------------------------------------------------------------------------
# Retrieval and citations
# --------------------------------------------------------------------------------------------------


def _clean_gold(gold: str) -> str:
    gold = gold.strip().replace("\\", "/")
    while gold.startswith("./"):
        gold = gold[2:]
    return gold


def source_matches(gold: str, doc_id: str, path: str) -> bool:
    """Whether a gold source identifier (document id or possibly relative path) names this document."""
    gold = _clean_gold(gold)
    if not gold:
        return False
    path = path.replace("\\", "/")
    return gold == doc_id or gold == path or path.endswith("/" + gold)


def _unique_docs(sources: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    # Several chunks of one document must count as one retrieved document (first rank wins).
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for doc_id, path in sources:
        key = doc_id or path
        if key not in seen:
            seen.add(key)
            out.append((doc_id, path))
    return out


def _unique_gold(gold: Sequence[str]) -> list[str]:
    if len(gold) == 0:
        raise ValueError("gold must contain at least one source")
    return list(dict.fromkeys(_clean_gold(g) for g in gold))


def _require_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def recall_at_k(ranked_sources: Sequence[tuple[str, str]], gold: Sequence[str], k: int) -> float:
    """Fraction of gold sources found among the top-k unique documents (deduped before the cut)."""
    _require_k(k)
    golds = _unique_gold(gold)
    top = _unique_docs(ranked_sources)[:k]
    found = sum(1 for g in golds if any(source_matches(g, d, p) for d, p in top))
    return found / len(golds)


def reciprocal_rank(ranked_sources: Sequence[tuple[str, str]], gold: Sequence[str]) -> float:
    """1 / (1-based rank among unique documents) of the first gold document; 0.0 if none is retrieved."""
    golds = _unique_gold(gold)
    for rank, (doc_id, path) in enumerate(_unique_docs(ranked_sources), start=1):
        if any(source_matches(g, doc_id, path) for g in golds):
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked_sources: Sequence[tuple[str, str]], gold: Sequence[str], k: int) -> float:
    """Binary-relevance nDCG@k over unique documents; each gold source is credited at most once."""
    _require_k(k)
    golds = _unique_gold(gold)
    credited: set[str] = set()
    dcg = 0.0
    for i, (doc_id, path) in enumerate(_unique_docs(ranked_sources)[:k], start=1):
        matched = {g for g in golds if g not in credited and source_matches(g, doc_id, path)}
        if matched:
            credited |= matched
            dcg += 1.0 / math.log2(i + 1)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(golds), k) + 1))
    return dcg / idcg


def citation_precision_recall(
    cited: Sequence[tuple[str, str]], gold: Sequence[str]
) -> tuple[float | None, float]:
    """(precision, recall) of the documents an answer cites against the gold sources.

    Precision is None when nothing is cited: it is undefined, and counting it as 0 or 1 would bias the
    mean; the harness leaves such cases out of the precision average.
    """
    golds = _unique_gold(gold)
    docs = _unique_docs(cited)
    matched_gold = sum(1 for g in golds if any(source_matches(g, d, p) for d, p in docs))
    recall = matched_gold / len(golds)
    if not docs:
        return None, recall
    good = sum(1 for d, p in docs if any(source_matches(g, d, p) for g in golds))
    return good / len(docs), recall


# --------------------------------------------------------------------------------------------------
# Answer text: sentences, groundedness, refusals
# --------------------------------------------------------------------------------------------------

# "[1]", "[1][2]", "[1, 2]", "[1-3]"; horizontal whitespace before a marker goes too ("word [1]." -> "word.").
_CITATION = re.compile(r"[ \t]*\[\d+(?:\s*[,\-–]\s*\d+)*\]")
# Sentence end: . ! ? (optionally followed by a closing quote/bracket) then whitespace; or any newline.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+|\n+")
_HAS_ALNUM = re.compile(r"[^\W_]")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, dropping citation markers and pieces without letters or digits.

    A heuristic (abbreviations such as "e.g. x" split too); good enough for the groundedness proxy.
    """
    text = _CITATION.sub("", text)
    pieces = (p.strip() for p in _SENTENCE_BREAK.split(text))
    return [p for p in pieces if p and _HAS_ALNUM.search(p)]


def groundedness(
    answer_text: str,
    evidence_texts: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    threshold: float,
) -> float | None:
    """Fraction of answer sentences supported by the evidence — an embedding-similarity PROXY.

    A sentence counts as supported if its best cosine similarity against any evidence sentence is at
    least `threshold`. This measures topical closeness, not entailment: a fluent contradiction of the
    evidence can still score as supported. `embed` must return L2-normalised rows; it is called once
    with answer and evidence sentences in one batch because it is a slow neural model.

    Returns None when the answer has no sentences (nothing to judge), 0.0 when there is no evidence.
    """
    answer_sents = split_sentences(answer_text)
    if not answer_sents:
        return None
    evidence_sents = [s for text in evidence_texts for s in split_sentences(text)]
    if not evidence_sents:
        return 0.0
    vectors = np.asarray(embed(answer_sents + evidence_sents), dtype=np.float64)
    expected_rows = len(answer_sents) + len(evidence_sents)
    if vectors.ndim != 2 or vectors.shape[0] != expected_rows:
        raise ValueError(f"embed returned shape {vectors.shape}, expected ({expected_rows}, d)")
    answer_vecs = vectors[: len(answer_sents)]
    evidence_vecs = vectors[len(answer_sents) :]
    best = (answer_vecs @ evidence_vecs.T).max(axis=1)
    return float(np.count_nonzero(best >= threshold) / len(answer_sents))


def is_refusal(answer_text: str, refusal_text: str) -> bool:
    """Whether the answer is the configured refusal (normalised equal, or starts with it).

    The prefix must end at a word boundary so that "I don't know" does not match "I don't knowingly …".
    """
    answer = normalize_answer(answer_text)
    refusal = normalize_answer(refusal_text)
    if not refusal:
        return answer == refusal
    return answer == refusal or answer.startswith(refusal + " ")
