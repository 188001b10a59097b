"""SQuAD-format question answering data (e.g. COVID-QA): articles out as files, questions with gold sources;
and SQuAD v1.1 answer normalisation (`normalize_answer`).

Each article is written to `<out>/<document_id>.txt` (title on the first line, as in COVID-QA's contexts),
so retrieval can be scored at article level: a question's gold source is its article's file.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import InputError

BUNDLED_COVID_QA = Path(__file__).parent / "covid_qa" / "covid_qa_public.json"
BUNDLED_SNIPS = Path(__file__).parent / "snips"  # SNIPS 2017 (CC0): train_<Intent>_full.json, validate_<Intent>.json
BUNDLED_CLINC150_SAMPLE = Path(__file__).parent / "clinc150" / "data_small.json"  # CC BY 3.0 excerpt

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop punctuation, drop articles, collapse whitespace.

    The eval metrics (exact match, F1) score with it, and the data checks and converters compare texts with it."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class SquadQuestion:
    question_id: str
    question: str
    answers: tuple[str, ...]
    document_id: str  # the article's id; its file is <document_id>.txt


@dataclass(frozen=True)
class SquadArticle:
    document_id: str
    context: str


def read_squad(path: str | Path) -> tuple[list[SquadArticle], list[SquadQuestion]]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(str(path), None, "not SQuAD format: expected {\"data\": [{\"paragraphs\": [...]}]}")
    articles: list[SquadArticle] = []
    questions: list[SquadQuestion] = []
    for article_number, article in enumerate(data["data"]):
        for paragraph_number, paragraph in enumerate(article.get("paragraphs", [])):
            document_id = str(paragraph.get("document_id", f"{article_number}-{paragraph_number}"))
            articles.append(SquadArticle(document_id, paragraph["context"]))
            for qa in paragraph.get("qas", []):
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a.get("text")))
                questions.append(SquadQuestion(str(qa.get("id")), qa["question"].strip(), answers, document_id))
    return articles, questions


def write_articles(path: str | Path, out_dir: str | Path, *, limit: int | None = None) -> tuple[int, int]:
    """Write each article as <out_dir>/articles/<document_id>.txt and the questions as <out_dir>/questions.jsonl
    (question, answers, gold_sources). `limit` keeps the first N articles and their questions.
    Returns (articles, questions)."""
    articles, questions = read_squad(path)
    if limit is not None:
        articles = articles[:limit]
        kept = {a.document_id for a in articles}
        questions = [q for q in questions if q.document_id in kept]
    out = Path(out_dir)
    (out / "articles").mkdir(parents=True, exist_ok=True)
    for article in articles:
        (out / "articles" / f"{article.document_id}.txt").write_text(article.context, encoding="utf-8")
    with open(out / "questions.jsonl", "w", encoding="utf-8") as handle:
        for q in questions:
            handle.write(json.dumps({
                "id": q.question_id, "question": q.question, "answers": list(q.answers),
                "gold_sources": [f"articles/{q.document_id}.txt"],
            }, ensure_ascii=False) + "\n")
    return len(articles), len(questions)


def article_recall_at_k(retriever, questions, *, k: int = 5, progress=None) -> tuple[float, list[float]]:
    """Share of questions whose gold article (file name of gold_sources[0]) is among the top-k chunks' files,
    and each retrieval's latency in ms. `retriever` is an adaptlab.rag.retrieve.Retriever."""
    hits, latencies = 0, []
    for index, question in enumerate(questions, start=1):
        result = retriever.retrieve(question["question"], top_k=k)
        latencies.append(result.latency_ms)
        gold = Path(question["gold_sources"][0]).name
        hits += any(Path(c.chunk.path).name == gold for c in result.chunks)
        if progress:
            progress("retrieval", index, len(questions))
    return (hits / len(questions) if questions else 0.0), latencies
