"""`adaptlab demo`: the RAG pipeline end to end on the bundled COVID-QA sample, measured.

Writes the bundled articles out as files, ingests them (incrementally: a second run reuses the index),
scores retrieval on the dataset's own questions (is the gold article in the top 5?), and answers a few
questions with citations. Seeded and greedy, so runs are reproducible.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles
from adaptlab.project import Project
from adaptlab.rag.index import ProgressCallback, ingest
from adaptlab.rag.pipeline import build_answerer, build_retriever
from adaptlab.rag.retrieve import Retriever
from adaptlab.types import Answer, IngestReport

DEMO_QUESTIONS = (
    "What is the main cause of HIV-1 infection in children?",
    "Which animals are the natural reservoir of MERS-CoV?",
    "Who won the football world cup in 1998?",  # off-topic on purpose: the answer should be a refusal
)


@dataclass
class DemoResult:
    articles: int
    questions: int
    ingest: IngestReport
    recall_at_5: float
    retrieval_p50_ms: float
    retrieval_p95_ms: float
    answers: list[tuple[str, Answer]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "articles": self.articles,
            "questions": self.questions,
            "ingest": self.ingest.to_dict(),
            "recall_at_5": round(self.recall_at_5, 4),
            "retrieval_p50_ms": round(self.retrieval_p50_ms, 1),
            "retrieval_p95_ms": round(self.retrieval_p95_ms, 1),
            "answers": [{"question": q, **a.to_dict()} for q, a in self.answers],
            "seconds": round(self.seconds, 1),
        }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def article_recall_at_k(retriever: Retriever, questions: Sequence[dict], *, k: int = 5,
                        progress: ProgressCallback | None = None) -> tuple[float, list[float]]:
    """Share of questions whose gold article (file name of gold_sources[0]) is among the top-k chunks' files,
    and each retrieval's latency in ms."""
    hits, latencies = 0, []
    for index, question in enumerate(questions, start=1):
        result = retriever.retrieve(question["question"], top_k=k)
        latencies.append(result.latency_ms)
        gold = Path(question["gold_sources"][0]).name
        hits += any(Path(c.chunk.path).name == gold for c in result.chunks)
        if progress:
            progress("retrieval", index, len(questions))
    return (hits / len(questions) if questions else 0.0), latencies


def run_demo(project: Project, *, quick: bool = False, progress: ProgressCallback | None = None,
             on_stage: Callable[[str], None] = lambda stage: None) -> DemoResult:
    started = time.perf_counter()
    data_dir = project.home / "demo" / "covid-qa"
    articles, question_count = write_articles(BUNDLED_COVID_QA, data_dir, limit=12 if quick else None)
    on_stage(f"Ingesting {articles} COVID-QA articles")
    report = ingest([data_dir / "articles"], project.config, store=project.store, embedder=project.embedder,
                    progress=progress or (lambda *_: None))

    on_stage(f"Scoring retrieval on {question_count} questions")
    retriever = build_retriever(project)
    questions = [json.loads(line) for line in (data_dir / "questions.jsonl").read_text().splitlines()]
    recall, latencies = article_recall_at_k(retriever, questions, k=5, progress=progress)

    on_stage("Answering questions with the local model")
    answerer = build_answerer(project)
    answers = [(q, answerer.answer(q)) for q in DEMO_QUESTIONS]
    return DemoResult(
        articles=articles, questions=len(questions), ingest=report,
        recall_at_5=recall,
        retrieval_p50_ms=_percentile(latencies, 0.5), retrieval_p95_ms=_percentile(latencies, 0.95),
        answers=answers, seconds=time.perf_counter() - started,
    )


def demo_result_json(result: DemoResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=lambda o: asdict(o))
