"""`adaptlab data check`: is this training data fit to fine-tune on, and is the eval still held out?

Checks, each finding naming file:line (both sides for a pair):
- invalid lines (the format rules of finetune/data.py), reported instead of stopping the check;
- exact duplicates (same normalised input and target), conflicting targets, near-duplicate inputs
  (word-set Jaccard ≥ threshold) inside the training set(s);
- leakage across sets: training inputs vs eval questions, eval vs few-shot and cache-seed questions (these
  inflate a measured score: errors); training vs few-shot / cache seed (they do not: warnings);
- format consistency of JSON targets, label typos, class balance, token lengths after the chat template.

Readiness (the guidance of "LLM Fine-Tuning Explained: When It Beats RAG and What It Truly Costs"): READY when
there are ≥ min_examples clean examples (after dropping duplicates and leaked ones), a held-out eval set, no
leakage and no format problems.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal

from adaptlab.errors import InputError
from adaptlab.eval.cases import EvalCase, load_cases
from adaptlab.eval.heldout import SeenText, find_overlaps
from adaptlab.eval.metrics import normalize_answer, parse_json_output
from adaptlab.finetune.data import (
    TokenCounter,
    TrainingExample,
    fingerprint,
    parse_training_file,
)
from adaptlab.textfiles import jsonl_lines, read_text, write_jsonl_atomic
from adaptlab.types import FileProblem

Severity = Literal["error", "warning"]
JSON_MAJORITY = 0.8  # share of JSON targets above which a non-JSON target is a format problem
COMMON_KEY_SHARE = 0.8  # a key in this share of JSON targets is expected in all of them
TYPO_MAX_COUNT = 2  # a label this rare that looks like a frequent one is probably a typo
TYPO_SIMILARITY = 0.85  # SequenceMatcher ratio (case-insensitive): "PlayMusik" vs "PlayMusic" is 0.89
IMBALANCE_RATIO = 10.0
HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class Finding:
    """One problem. `where` is file:line; `other` the file:line on the other side of a pair."""

    check: str  # invalid, duplicate, conflict, near_duplicate, leak, overlap, format, label, balance, length, ...
    severity: Severity
    message: str
    fix: str = ""
    where: str | None = None
    other: str | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} — {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "message": self.message, "fix": self.fix,
                "where": self.where, "other": self.other}


@dataclass(frozen=True)
class DataSetSummary:
    """One input file and its version (the content fingerprint)."""

    role: str  # "train", "eval", "fewshot" or "cache_seed"
    path: str
    records: int
    fingerprint: str
    kind: str | None = None  # training format, when one was detected
    invalid: int = 0  # lines that failed validation

    @property
    def version(self) -> str:
        return self.fingerprint[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": self.path, "records": self.records, "fingerprint": self.fingerprint,
                "version": self.version, "kind": self.kind, "invalid": self.invalid}


@dataclass(frozen=True)
class LengthStats:
    """Tokens per training example after the chat template."""

    count: int
    minimum: int
    p50: int
    p95: int
    maximum: int
    histogram: tuple[tuple[int, int, int], ...]  # (from, to inclusive, examples)
    max_tokens: int | None
    over_limit: int

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "min": self.minimum, "p50": self.p50, "p95": self.p95, "max": self.maximum,
                "histogram": [{"from": lo, "to": hi, "count": n} for lo, hi, n in self.histogram],
                "max_tokens": self.max_tokens, "over_limit": self.over_limit}


@dataclass
class CheckReport:
    sets: list[DataSetSummary]
    findings: list[Finding]
    examples: int  # valid training examples
    clean: int  # what write_fixed keeps: valid, minus duplicates and leaked ones
    min_examples: int
    has_eval: bool
    label_counts: dict[str, int]
    balance_ratio: float | None  # most / least frequent label (suspected typos left out)
    lengths: LengthStats | None
    reasons: list[str]  # why not ready; empty when ready
    training: list[TrainingExample] = field(default_factory=list, repr=False)
    invalid_lines: int = 0
    # (file, line) of each training example write_fixed drops, and why ("duplicate" or "leak")
    dropped: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)

    @property
    def ready(self) -> bool:
        return not self.reasons

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready, "reasons": list(self.reasons), "examples": self.examples, "clean": self.clean,
            "min_examples": self.min_examples, "has_eval": self.has_eval, "invalid_lines": self.invalid_lines,
            "dropped": {"duplicate": sum(1 for r in self.dropped.values() if r == "duplicate"),
                        "leak": sum(1 for r in self.dropped.values() if r == "leak")},
            "sets": [s.to_dict() for s in self.sets], "findings": [f.to_dict() for f in self.findings],
            "label_counts": dict(self.label_counts), "balance_ratio": self.balance_ratio,
            "lengths": self.lengths.to_dict() if self.lengths else None,
        }


@dataclass(frozen=True)
class FixResult:
    out: Path
    kept: int
    dropped_duplicates: int
    dropped_leaked: int


@dataclass(frozen=True)
class _Question:
    text: str
    where: str  # file:line


# ------------------------------------------------------------------------------------------------ check


def check_datasets(
    train: Sequence[str | Path],
    *,
    eval_path: str | Path | None = None,
    fewshot_path: str | Path | None = None,
    cache_seed_path: str | Path | None = None,
    near_duplicate_jaccard: float = 0.8,
    token_counter: TokenCounter | None = None,
    max_tokens: int | None = None,
    min_examples: int = 200,
    truncation_length: int | None = None,
) -> CheckReport:
    """Run every check over the training file(s) and the other sets; see the module docstring.

    A bad eval, few-shot or cache-seed file raises (their loaders report every bad line); bad training lines
    become findings so the rest of the report still comes out. `truncation_length` (train.max_length) adds a
    warning for examples training would truncate.
    """
    if not train:
        raise InputError("data check", None, "no training file given", "pass one or more training JSONL files")
    findings: list[Finding] = []
    sets: list[DataSetSummary] = []
    examples: list[TrainingExample] = []
    invalid = 0
    for path in train:
        file_examples, problems = parse_training_file(path)
        bad_lines = len({p.line for p in problems})
        invalid += bad_lines
        findings.extend(_invalid_finding(p) for p in problems)
        kinds = Counter(e.kind for e in file_examples)
        sets.append(DataSetSummary("train", str(path), len(file_examples) + bad_lines, fingerprint(path),
                                   kinds.most_common(1)[0][0] if kinds else None, bad_lines))
        if not file_examples and not problems:
            findings.append(Finding("empty", "error", "no training examples in the file",
                                    "write one JSON object per line", where=str(path)))
        examples.extend(file_examples)

    eval_cases = load_cases(eval_path) if eval_path is not None else []
    if eval_path is not None:
        sets.append(DataSetSummary("eval", str(eval_path), len(eval_cases), fingerprint(eval_path)))
    fewshot = _read_questions(fewshot_path, ("question",), "few-shot") if fewshot_path is not None else []
    if fewshot_path is not None:
        sets.append(DataSetSummary("fewshot", str(fewshot_path), len(fewshot), fingerprint(fewshot_path)))
    seeds = _read_questions(cache_seed_path, ("question", "query"), "cache-seed") if cache_seed_path else []
    if cache_seed_path is not None:
        sets.append(DataSetSummary("cache_seed", str(cache_seed_path), len(seeds), fingerprint(cache_seed_path)))

    dropped: dict[tuple[str, int], str] = {}
    findings += _duplicates(examples, near_duplicate_jaccard, dropped)
    evals = [_Question(c.question, f"{eval_path}:{c.line}") for c in eval_cases]
    leaks, eval_leaks = _leakage(examples, evals, fewshot, seeds, near_duplicate_jaccard, dropped)
    findings += leaks
    findings += _format_findings(examples)
    label_findings, label_counts, ratio = _label_findings(examples)
    findings += label_findings
    lengths = None
    if token_counter is not None and examples:
        length_findings, lengths = _length_findings(examples, token_counter, max_tokens, truncation_length)
        findings += length_findings

    clean = len(examples) - len(dropped)
    reasons = _reasons(findings, invalid, clean, min_examples, eval_path is not None, eval_leaks, max_tokens)
    return CheckReport(
        sets=sets, findings=findings, examples=len(examples), clean=clean, min_examples=min_examples,
        has_eval=eval_path is not None, label_counts=label_counts, balance_ratio=ratio, lengths=lengths,
        reasons=reasons, training=examples, invalid_lines=invalid, dropped=dropped,
    )


def _reasons(findings: list[Finding], invalid: int, clean: int, min_examples: int, has_eval: bool,
             eval_leaks: dict[str, int], max_tokens: int | None) -> list[str]:
    reasons: list[str] = []
    if invalid:
        reasons.append(f"{invalid} invalid line{_s(invalid)} in the training data — fix the lines listed above")
    if clean < min_examples:
        reasons.append(f"only {clean} clean example{_s(clean)} — collect ~{min_examples - clean} more "
                       f"(at least {min_examples} after dropping duplicates and leaked ones)")
    if not has_eval:
        reasons.append("no held-out eval set: pass --eval (without one, a fine-tune cannot be measured)")
    leaked = eval_leaks.get("train", 0)
    if leaked:
        reasons.append(f"{leaked} training example{_s(leaked)} leak{'' if leaked != 1 else 's'} into the eval set — "
                       f"drop {'it' if leaked == 1 else 'them'} (--fix OUT writes a copy without them)")
    for role, name in (("fewshot", "few-shot"), ("cache_seed", "cache-seed")):
        if eval_leaks.get(role):
            count = eval_leaks[role]
            reasons.append(f"{count} eval question{_s(count)} also in the {name} file — remove them from one of "
                           "the two, or the eval measures what that strategy was shown")
    formats = sum(1 for f in findings if f.check == "format")
    if formats:
        reasons.append(f"{formats} format problem{_s(formats)} (targets that break the majority's format) — "
                       "fix the lines listed above")
    too_long = sum(1 for f in findings if f.check == "length")
    if too_long:
        reasons.append(f"{too_long} example{_s(too_long)} longer than the context of {max_tokens} tokens — "
                       "shorten or split them")
    return reasons


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _invalid_finding(problem: FileProblem) -> Finding:
    return Finding("invalid", "error", problem.reason, problem.fix, where=f"{problem.path}:{problem.line}")


def _read_questions(path: str | Path, keys: tuple[str, ...], what: str) -> list[_Question]:
    """The question of each JSONL line (the first of `keys` present), with its file:line."""
    questions: list[_Question] = []
    for number, stripped in jsonl_lines(read_text(Path(path))):
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(str(path), number, f"invalid JSON: {exc.msg}", "fix or remove the line") from None
        text = next((record[k] for k in keys if isinstance(record, dict) and isinstance(record.get(k), str)), None)
        if text is None:
            raise InputError(str(path), number, f"a {what} line needs {' or '.join(repr(k) for k in keys)}",
                             f'write {{"{keys[0]}": "...", ...}} per line')
        questions.append(_Question(text, f"{path}:{number}"))
    return questions


# ------------------------------------------------------------------------------------- duplicates, leaks


def _duplicates(examples: list[TrainingExample], threshold: float,
                dropped: dict[tuple[str, int], str]) -> list[Finding]:
    """Exact duplicates (dropped), same input with another target (conflict), near-duplicate inputs; the input
    is the whole conversation before the target (see _context_text)."""
    findings: list[Finding] = []
    first_pair: dict[tuple[str, str], TrainingExample] = {}
    first_input: dict[str, TrainingExample] = {}
    exact_input: set[int] = set()
    contexts = [_context_text(e) for e in examples]
    for index, example in enumerate(examples):
        norm_input = normalize_answer(contexts[index])
        key = (norm_input, normalize_answer(example.target_text))
        if key in first_pair:
            original = first_pair[key]
            dropped[(example.source, example.line)] = "duplicate"
            findings.append(Finding("duplicate", "warning", f"exact duplicate of {original.location}",
                                    "drop it (--fix OUT keeps the first)", example.location, original.location))
        elif norm_input in first_input:
            original = first_input[norm_input]
            findings.append(Finding(
                "conflict", "warning", f"same input as {original.location} with a different target",
                "keep one target per input unless both are right (the model learns a coin flip)",
                example.location, original.location))
        first_pair.setdefault(key, example)
        if norm_input in first_input:
            exact_input.add(index)
        first_input.setdefault(norm_input, example)
    for later, earlier, similarity in near_duplicate_pairs(contexts, threshold):
        if later in exact_input:
            continue
        findings.append(Finding(
            "near_duplicate", "warning",
            f"input is a near duplicate (Jaccard {similarity:.2f}) of {examples[earlier].location}",
            "review: a paraphrase with its own target is fine, a copy only weighs that example double",
            examples[later].location, examples[earlier].location))
    return findings


def _context_text(example: TrainingExample) -> str:
    """Everything before the target except system turns: two multi-turn chats that end in the same "thanks"
    are not duplicates, and a system prompt shared by every example would make all of them look alike."""
    if example.kind == "completion" or (example.kind == "preference" and example.messages is None):
        return example.prompt or ""
    turns = example.messages or ()
    if example.kind == "chat":
        turns = turns[:-1]
    return "\n".join(m["content"] for m in turns if m["role"] != "system")


def near_duplicate_pairs(texts: Sequence[str], threshold: float) -> list[tuple[int, int, float]]:
    """(later, earlier, Jaccard) for each text whose word set (after SQuAD normalisation, as in
    eval/heldout.py) reaches `threshold` with an earlier one: its most similar earlier text.

    heldout.find_overlaps compares two different sets; within one set a text must not match itself and
    every pair must be seen, so this indexes each text only after querying it. Only a prefix of each word set
    (rarest words first) is indexed: two sets with Jaccard ≥ t always share a word of those prefixes (the
    prefix filter of all-pairs similarity joins), which keeps frequent words from making it quadratic.
    """
    word_sets = [frozenset(normalize_answer(text).split()) for text in texts]
    frequency = Counter(word for words in word_sets for word in words)
    index: dict[str, list[int]] = {}
    pairs: list[tuple[int, int, float]] = []
    for position, words in enumerate(word_sets):
        if not words:
            continue
        ordered = sorted(words, key=lambda w: (frequency[w], w))
        prefix = ordered[: len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1]
        candidates = {other for word in prefix for other in index.get(word, ())}
        best: tuple[int, float] | None = None
        for other in sorted(candidates):
            other_words = word_sets[other]
            shared = len(words & other_words)
            similarity = shared / (len(words) + len(other_words) - shared)
            if similarity >= threshold and (best is None or similarity > best[1]):
                best = (other, similarity)
        if best is not None:
            pairs.append((position, best[0], best[1]))
        for word in prefix:
            index.setdefault(word, []).append(position)
    return pairs


def _overlaps(queries: Sequence[str], seen: Sequence[str], threshold: float) -> list[tuple[int, int, float, bool]]:
    """(query index, seen index, similarity, exact) for each query's best exact/near match, via heldout's check."""
    cases = [EvalCase(case_id=str(i), question=text) for i, text in enumerate(queries)]
    seen_texts = [SeenText(text, str(i)) for i, text in enumerate(seen)]
    return [(int(o.case_id), int(o.seen.source), o.similarity, o.exact)
            for o in find_overlaps(cases, seen_texts, threshold)]


def _leakage(examples: list[TrainingExample], evals: list[_Question], fewshot: list[_Question],
             seeds: list[_Question], threshold: float,
             dropped: dict[tuple[str, int], str]) -> tuple[list[Finding], dict[str, int]]:
    findings: list[Finding] = []
    counts: Counter[str] = Counter()

    def how(similarity: float, exact: bool) -> str:
        return "an exact duplicate" if exact else f"a near duplicate (Jaccard {similarity:.2f})"

    inputs = [e.input_text for e in examples]
    # Training vs eval: one finding per leaked training example (not per eval case), so --fix drops them all.
    for query, hit, similarity, exact in _overlaps(inputs, [q.text for q in evals], threshold):
        example = examples[query]
        dropped[(example.source, example.line)] = "leak"
        counts["train"] += 1
        findings.append(Finding(
            "leak", "error", f"training input is {how(similarity, exact)} of eval question {evals[hit].where}",
            "drop it from training (--fix OUT) or from the eval set: the eval must be held out",
            example.location, evals[hit].where))
    for role, name, others in (("fewshot", "few-shot", fewshot), ("cache_seed", "cache-seed", seeds)):
        if not others:
            continue
        for query, hit, similarity, exact in _overlaps([q.text for q in evals], [q.text for q in others], threshold):
            counts[role] += 1
            findings.append(Finding(
                "leak", "error", f"eval question is {how(similarity, exact)} of {name} question {others[hit].where}",
                f"remove it from the eval or the {name} file: that strategy was shown the answer",
                evals[query].where, others[hit].where))
        for query, hit, similarity, exact in _overlaps(inputs, [q.text for q in others], threshold):
            findings.append(Finding(
                "overlap", "warning", f"training input is {how(similarity, exact)} of {name} question "
                f"{others[hit].where}", "fine for the eval (neither is scored); remove it for cleaner comparisons",
                examples[query].location, others[hit].where))
    return findings, dict(counts)


# ------------------------------------------------------------------------------------ format and labels


def _format_findings(examples: list[TrainingExample]) -> list[Finding]:
    """When most targets are JSON, the others break the format; JSON targets should share the common keys."""
    if not examples:
        return []
    findings: list[Finding] = []
    parsed: list[Any] = []
    for example in examples:
        ok, value = parse_json_output(example.target_text)
        parsed.append(value if ok and isinstance(value, (dict, list)) else None)
    json_count = sum(1 for value in parsed if value is not None)
    share = json_count / len(examples)
    if share >= JSON_MAJORITY:
        for example, value in zip(examples, parsed):
            if value is None:
                findings.append(Finding("format", "error", f"target should be JSON ({share:.0%} of targets are): "
                                        f"{example.target_text[:60]!r}", "write the reply as JSON like the others",
                                        example.location))
            elif not _is_bare_json(example.target_text):
                findings.append(Finding("format", "error", "target wraps its JSON in other text",
                                        "train on the bare JSON: the model learns to emit the wrapper too",
                                        example.location))
    elif json_count and share >= 1 - JSON_MAJORITY:
        findings.append(Finding("format_mix", "warning", f"targets mix JSON ({json_count}) and plain text "
                                f"({len(examples) - json_count})", "keep one output format per task"))
    objects = [(e, v) for e, v in zip(examples, parsed) if isinstance(v, dict)]
    if objects:
        key_counts = Counter(key for _, value in objects for key in value)
        common = sorted(k for k, n in key_counts.items() if n >= COMMON_KEY_SHARE * len(objects))
        for example, value in objects:
            missing = [k for k in common if k not in value]
            if missing:
                findings.append(Finding(
                    "format", "error", f"JSON target lacks {', '.join(repr(k) for k in missing)} "
                    f"(in {min(key_counts[k] for k in missing)} of {len(objects)} JSON targets)",
                    "add the missing keys (empty values are fine) so every target has one shape", example.location))
    return findings


def _is_bare_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def example_label(example: TrainingExample) -> str | None:
    """The `label` field, else a JSON target's "intent"."""
    if example.label is not None:
        return example.label
    ok, value = parse_json_output(example.target_text)
    if ok and isinstance(value, dict) and isinstance(value.get("intent"), str):
        return value["intent"]
    return None


def _label_findings(examples: list[TrainingExample]) -> tuple[list[Finding], dict[str, int], float | None]:
    findings: list[Finding] = []
    labels = [example_label(e) for e in examples]
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return findings, {}, None
    suspects: dict[str, str] = {}
    for rare, count in counts.items():
        if count > TYPO_MAX_COUNT:
            continue
        candidates = [(SequenceMatcher(None, rare.lower(), other.lower()).ratio(), other)
                      for other, other_count in counts.items()
                      if other != rare and other_count > TYPO_MAX_COUNT and other_count >= 2 * count]
        similarity, match = max(candidates, default=(0.0, ""))
        if similarity >= TYPO_SIMILARITY:
            suspects[rare] = match
    for example, label in zip(examples, labels):
        if label in suspects:
            findings.append(Finding("label", "warning", f"label {label!r} occurs {counts[label]}× — possible typo of "
                                    f"{suspects[label]!r} ({counts[suspects[label]]}×)",
                                    f"write {suspects[label]!r} if that is what it means", example.location))
        if example.label is not None:
            ok, value = parse_json_output(example.target_text)
            intent = value.get("intent") if ok and isinstance(value, dict) else None
            if isinstance(intent, str) and intent != example.label:
                findings.append(Finding("label", "warning", f"label {example.label!r} but the target's intent is "
                                        f"{intent!r}", "make them agree", example.location))
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    real = [n for label, n in counts.items() if label not in suspects]
    ratio = max(real) / min(real) if len(real) > 1 else None
    if ratio is not None and ratio > IMBALANCE_RATIO:
        most = max(ordered, key=lambda k: ordered[k] if k not in suspects else -1)
        least = min((k for k in ordered if k not in suspects), key=lambda k: ordered[k])
        findings.append(Finding(
            "balance", "warning", f"classes are imbalanced: {most!r} has {ordered[most]}, {least!r} has "
            f"{ordered[least]} (ratio {ratio:.1f} > {IMBALANCE_RATIO:g})",
            "collect more of the rare classes, or down-sample the frequent ones"))
    return findings, ordered, ratio


# ------------------------------------------------------------------------------------------------ lengths


def _length_findings(examples: list[TrainingExample], counter: TokenCounter, max_tokens: int | None,
                     truncation_length: int | None) -> tuple[list[Finding], LengthStats]:
    lengths = [counter(example) for example in examples]
    findings: list[Finding] = []
    truncated = 0
    for example, tokens in zip(examples, lengths):
        if max_tokens is not None and tokens > max_tokens:
            findings.append(Finding(
                "length", "error",
                f"{tokens} tokens after the chat template, longer than the model's context of {max_tokens}",
                "shorten or split the example", example.location))
        elif truncation_length is not None and tokens > truncation_length:
            truncated += 1
    if truncated:
        findings.append(Finding(
            "truncation", "warning", f"{truncated} example{_s(truncated)} longer than train.max_length = "
            f"{truncation_length} tokens: training truncates them", "raise train.max_length or shorten them"))
    return findings, length_stats(lengths, max_tokens)


def length_stats(lengths: Sequence[int], max_tokens: int | None = None) -> LengthStats:
    """min / p50 / p95 / max (nearest rank) and a 10-bin equal-width histogram."""
    ordered = sorted(lengths)
    count = len(ordered)

    def rank(q: float) -> int:
        return ordered[max(0, math.ceil(q * count) - 1)]

    low, high = ordered[0], ordered[-1]
    width = max(1, math.ceil((high - low + 1) / HISTOGRAM_BINS))
    bins = [0] * math.ceil((high - low + 1) / width)
    for value in ordered:
        bins[(value - low) // width] += 1
    histogram = tuple((low + i * width, min(high, low + (i + 1) * width - 1), n) for i, n in enumerate(bins))
    over = sum(1 for value in ordered if max_tokens is not None and value > max_tokens)
    return LengthStats(count, low, rank(0.5), rank(0.95), high, histogram, max_tokens, over)


# ------------------------------------------------------------------------------------------------ fixing


def write_fixed(report: CheckReport, out_path: str | Path) -> FixResult:
    """Write the training data without duplicates (the first occurrence stays) and leaked examples.

    Refuses to overwrite any input file, and to run while lines are invalid (they cannot be copied faithfully;
    dropping them silently would hide them).
    """
    out = Path(out_path)
    for summary in report.sets:
        source = Path(summary.path)
        if out.resolve() == source.resolve() or (out.exists() and source.exists() and os.path.samefile(out, source)):
            raise InputError(str(out), None, f"refusing to overwrite an input file (the {summary.role} set)",
                             "pass --fix a new path; compare the two, then replace the original yourself")
    if report.invalid_lines:
        raise InputError(str(out), None, f"{report.invalid_lines} invalid training line(s) — not writing a fixed "
                         "copy", "fix the invalid lines first; --fix only drops duplicates and leaked examples")
    kinds = {example.kind for example in report.training}
    if len(kinds) > 1:
        raise InputError(str(out), None, f"the training files use different formats ({', '.join(sorted(kinds))})",
                         "check and fix them one file at a time")
    kept = [e for e in report.training if (e.source, e.line) not in report.dropped]
    write_jsonl_atomic(out, (e.to_record() for e in kept))
    reasons = Counter(report.dropped.values())
    return FixResult(out, len(kept), reasons["duplicate"], reasons["leak"])
