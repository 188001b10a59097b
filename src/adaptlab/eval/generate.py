"""Eval cases a team does not write by hand: drafted from its documents, or collected from its traffic.

From documents (`adaptlab cases generate --from docs/`): chunks are sampled round-robin across documents (so no
single long document dominates). In each, the answer is chosen first — a short span of one sentence (a number
with its unit, a date, a name) — and a named generator writes the question that sentence answers with it
(answer-aware question generation: the reference answer is the document's own words, which even a small model
cannot paraphrase wrongly). Each draft is kept only when
  - the question does not give its answer away,
  - the checking model (the judge: a named generator, by default the drafting one) says the passage answers it,
  - it is not a near duplicate of another kept draft, of the existing cases or of training data.
Kept drafts are written as eval cases with the chunk's document as gold source and the tag `synthetic`, so
results can be read on synthetic and hand-written cases separately.

From a query log (`--from-log queries.jsonl`): the most frequent distinct questions (near duplicates folded),
written as cases without answers, for a person to label.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptlab.datasets.squad import normalize_answer
from adaptlab.errors import InputError
from adaptlab.eval.cases import EvalCase
from adaptlab.eval.heldout import SeenText, find_overlaps, training_questions
from adaptlab.project import Project
from adaptlab.textfiles import write_jsonl_atomic
from adaptlab.types import Chunk

SYNTHETIC_TAG = "synthetic"
FROM_LOG_TAG = "from-log"
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"],
}
CHECK_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"answerable": {"type": "boolean"}}, "required": ["answerable"],
}
DRAFT_SYSTEM = ("You write one exam question for a given answer. The question asks for exactly that answer and "
                "does not contain it. Reply with JSON only.")
DRAFT_EXAMPLE = ("Sentence: The bridge opened in 1932 after six years of construction.\nAnswer: 1932\n",
                 '{"question": "In which year did the bridge open?"}')
# Answer spans: a number with its unit, or a run of capitalised words (a name). Numbers first: they make
# unambiguous questions.
_NUMBER = re.compile(r"(?<![\w-])(?:(?:19|20)\d\d|\d[\d,.]*\s?(?:%|percent|per cent|days?|weeks?|months?|years?|"
                     r"hours?|minutes?|mg|kg|km|nm|million|billion|cases|patients|people|children|samples))"
                     r"(?![\w-])")
_NAME = re.compile(r"\b[A-Z][\w-]+(?:\s+(?:of\s+|de\s+)?[A-Z][\w-]+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|\n+")
_LABEL_LINE = re.compile(r"^\w[\w ]{0,15}:\s")  # "Authors: …", "DOI: …": metadata, not prose
_NOT_NAMES = frozenset({"the", "in", "a", "an", "this", "these", "we", "it", "our", "however", "although", "for",
                        "to", "of", "and", "on", "at", "as", "by", "with", "from", "table", "figure", "fig", "text",
                        "abstract", "background", "methods", "results", "conclusions", "conclusion", "introduction"})
MAX_ANSWER_WORDS = 8
CHECK_SYSTEM = "You check exam questions against a passage. Reply with JSON only."
ATTEMPTS_PER_CASE = 4  # chunks tried per case wanted before giving up

Progress = Callable[[str, int, int], None]


@dataclass
class GenerationReport:
    cases: list[dict[str, Any]]
    tried: int
    rejected: Counter[str] = field(default_factory=Counter)  # reason → drafts rejected for it
    dropped: list[dict[str, Any]] = field(default_factory=list)  # each rejected draft with its reason, for review
    documents: int = 0
    chunks: int = 0

    @property
    def kept(self) -> int:
        return len(self.cases)

    def reject(self, reason: str, draft: dict[str, Any]) -> None:
        self.rejected[reason] += 1
        self.dropped.append({**draft, "reason": reason})


def _words(text: str) -> list[str]:
    """Lower-case word tokens, punctuation as a separator ('caen/2014/13' holds '2014')."""
    return re.findall(r"\w+", normalize_answer(re.sub(r"[^\w\s]", " ", text)))


def _support(answer: str, passage: str) -> float:
    words = _words(answer)
    if not words:
        return 0.0
    present = set(_words(passage))
    return sum(word in present for word in words) / len(words)


def _parse_question(text: str) -> str | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    question = str(data.get("question") or "").strip() if isinstance(data, dict) else ""
    if len(question.split()) < 3:
        return None
    return question if question.endswith("?") else question.rstrip(".") + "?"


def _answer_spans(sentence: str) -> list[str]:
    """Candidate answers in one sentence: numbers with a unit and years first, then names (not sentence-initial
    words). Bare numbers are left out: in papers they are mostly references and identifiers."""
    numbers = [m.group().strip(" ,.") for m in _NUMBER.finditer(sentence)]
    names = [m.group() for m in _NAME.finditer(sentence)
             if m.start() > 0 and m.group().split()[0].lower() not in _NOT_NAMES and len(m.group()) >= 3]
    return [span for span in numbers + names if span and len(span.split()) <= MAX_ANSWER_WORDS]


def _pick_answer(chunk: Chunk, rng: random.Random) -> tuple[str, str] | None:
    """(sentence, answer span) from the chunk, or None when it has no usable sentence."""
    sentences = [" ".join(s.split()) for s in _SENTENCE.split(chunk.text)
                 if 6 <= len(s.split()) <= 60 and "http" not in s and not _LABEL_LINE.match(s.strip())]
    rng.shuffle(sentences)
    for sentence in sentences:
        spans = _answer_spans(sentence)
        if spans:
            return sentence, spans[0] if rng.random() < 0.6 else rng.choice(spans)
    return None


def _sample_chunks(chunks_by_doc: dict[str, list[Chunk]], budget: int, rng: random.Random) -> list[Chunk]:
    """Round-robin over documents (in a seeded order), a random unused chunk of each in turn."""
    # Ordered by path (doc ids hash the absolute path), so a seed drafts the same cases wherever the folder lives.
    order = sorted(chunks_by_doc, key=lambda doc: chunks_by_doc[doc][0].path)
    pools = {doc: rng.sample(chunks_by_doc[doc], len(chunks_by_doc[doc])) for doc in order}
    rng.shuffle(order)
    picked: list[Chunk] = []
    while len(picked) < budget and any(pools.values()):
        for doc in order:
            if pools[doc] and len(picked) < budget:
                picked.append(pools[doc].pop())
    return picked


def _gold_source(path: str, roots: Sequence[Path]) -> str:
    """The document's path relative to the parent of the folder it was found in (what `gold_sources` matches
    at the end of an indexed path: 'articles/x.txt')."""
    file = Path(path).resolve()
    for root in roots:
        try:
            return file.relative_to(root.resolve().parent).as_posix()
        except ValueError:
            continue
    return file.name


def generate_from_documents(project: Project, sources: Sequence[Path], *, n: int, generator: str = "",
                            judge: str | None = None, seed: int = 0, avoid: Sequence[Path] = (),
                            progress: Progress | None = None) -> GenerationReport:
    """Draft up to n checked cases from the documents under `sources` (see the module docstring)."""
    from adaptlab.rag.chunk import Chunker
    from adaptlab.rag.index import load_documents

    config = project.config
    documents, problems, _ = load_documents(sources, config)
    if not documents:
        detail = "; ".join(str(p) for p in problems[:3]) or "no readable files"
        raise InputError(", ".join(map(str, sources)), None, f"no documents to draft questions from ({detail})",
                         "point --from at a folder of .txt/.md/.html/.pdf/… files")
    chunker = Chunker(config.chunk, project.embedder)
    chunks_by_doc = {doc.doc_id: chunks for doc in documents if (chunks := chunker.chunk(doc))}
    rng = random.Random(seed)
    candidates = _sample_chunks(chunks_by_doc, n * ATTEMPTS_PER_CASE, rng)
    drafter = project.generator_for(generator)
    checker = project.generator_for(judge if judge is not None else generator)
    seen = [SeenText(text, f"existing file {path.name}") for path in avoid for text in _questions_of(path)]
    threshold = config.eval.near_duplicate_jaccard
    report = GenerationReport([], 0, documents=len(chunks_by_doc), chunks=sum(map(len, chunks_by_doc.values())))
    for chunk in candidates:
        if report.kept >= n:
            break
        report.tried += 1
        if progress:
            progress("Drafting cases", report.kept, n)
        picked = _pick_answer(chunk, rng)
        if picked is None:
            report.reject("no sentence with a short answer in the passage", {"source": chunk.path})
            continue
        sentence, answer = picked
        example_user, example_reply = DRAFT_EXAMPLE
        generation = drafter.chat(
            [{"role": "system", "content": DRAFT_SYSTEM},
             {"role": "user", "content": example_user}, {"role": "assistant", "content": example_reply},
             {"role": "user", "content": f"Sentence: {sentence}\nAnswer: {answer}\n"}],
            json_schema=DRAFT_SCHEMA, max_tokens=64, seed=seed + report.tried)
        question = _parse_question(generation.text)
        if question is None:
            report.reject("no usable question drafted", {"answer": answer, "draft": generation.text,
                                                         "source": chunk.path})
            continue
        draft = {"question": question, "answer": answer, "sentence": sentence, "source": chunk.path}
        if _support(answer, question) >= 0.5:
            report.reject("the question gives the answer away", draft)
            continue
        check = checker.chat(
            [{"role": "system", "content": CHECK_SYSTEM},
             {"role": "user", "content": f"Passage:\n{chunk.text}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
                                         "Does the passage alone answer the question with this answer?"}],
            json_schema=CHECK_SCHEMA, seed=seed)
        try:
            answerable = bool(json.loads(check.text).get("answerable"))
        except (json.JSONDecodeError, AttributeError):
            answerable = False
        if not answerable:
            report.reject("the judge found it not answerable from its passage", draft)
            continue
        probe = EvalCase(case_id="draft", question=question)
        if find_overlaps([probe], seen, threshold):
            report.reject("near duplicate of another case or of training data", draft)
            continue
        seen.append(SeenText(question, "a kept draft"))
        report.cases.append({
            "id": f"syn-{report.kept + 1:04d}", "question": question, "answers": [answer],
            "gold_sources": [_gold_source(chunk.path, sources)], "tags": [SYNTHETIC_TAG],
        })
    if progress:
        progress("Drafting cases", report.kept, n)
    return report


def _questions_of(path: Path) -> list[str]:
    """Questions of an eval cases file or a training file, for the near-duplicate check."""
    return [seen.text for seen in training_questions(path)]


def collect_from_log(log_path: Path, *, n: int, threshold: float) -> GenerationReport:
    """The log's n most frequent distinct questions (near duplicates folded into the first seen), as cases with
    no answers yet — for a person to label."""
    from adaptlab.cache.analyze import load_query_log

    report = GenerationReport([], 0)
    kept: list[SeenText] = []
    for question, count in load_query_log(log_path).most_asked():
        if len(report.cases) >= n:
            break
        report.tried += 1
        if find_overlaps([EvalCase(case_id="q", question=question)], kept, threshold):
            report.rejected["near duplicate of a more frequent question"] += 1
            continue
        kept.append(SeenText(question, "log"))
        report.cases.append({"id": f"log-{len(report.cases) + 1:04d}", "question": question, "answers": [],
                             "tags": [FROM_LOG_TAG, "unlabelled", f"asked-{count}"]})
    return report


def write_cases(path: Path, cases: list[dict[str, Any]]) -> None:
    write_jsonl_atomic(path, cases)
