"""Retrieval quality on COVID-QA: article recall@1/@5 and MRR over all 563 questions, one row per technique.

Each row is a retrieval configuration of adaptlab itself (the same `Retriever` that `ask`, `eval` and `bench` use),
over the 60 bundled COVID-QA articles ingested with the real MiniLM embedder into the embedded LanceDB store:

  BM25 alone          retrieve.dense_weight = 0
  hybrid              the defaults (dense + BM25, weighted reciprocal rank fusion)
  + contextual chunks chunk.context = "generator": a context sentence per chunk, written by the generator at
                      ingest and cached by content hash (only with --context; slow: one generation per chunk)
  + rerank            retrieve.rerank = true: the generator judges the fused top rerank_depth candidates
  + query rewrite     retrieve.rewrite = "hyde": the question and a generated answer passage are both searched;
                      "multi_query": the question and two generated rephrasings

Metrics are over distinct articles, ranked by their best chunk: recall@1 and recall@5 (the gold article is first /
among the first five), MRR (1 / rank of the gold article, 0 past --depth chunks), and each query's latency
(p50/p95, the whole retrieve call including any generation). The gold article is the one the question was
written from.

    .venv/bin/python benchmarks/retrieval_quality.py                      # BM25, hybrid, + rerank, + rewrite
    .venv/bin/python benchmarks/retrieval_quality.py --rows bm25 hybrid   # just these rows
    .venv/bin/python benchmarks/retrieval_quality.py --context            # also the contextual-chunks rows
    .venv/bin/python benchmarks/retrieval_quality.py --questions 100      # the first 100 questions only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import finish, percentile, print_table, set_threads  # noqa: E402

GOAL_POINTS = 0.03  # recall@5 over BM25 alone
GOAL_P95_MS = 300.0


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    retrieve: dict[str, Any]
    contextual: bool = False  # needs the index built with chunk.context = "generator"


ROWS = (
    Row("bm25", "BM25 alone", {"dense_weight": 0.0}),
    Row("hybrid", "hybrid (defaults)", {}),
    Row("context", "+ contextual chunks", {}, contextual=True),
    Row("rerank", "+ rerank (LLM, depth 10)", {"rerank": True, "rerank_depth": 10}),
    Row("rewrite", "+ query rewrite (HyDE)", {"rewrite": "hyde"}),
    Row("multi_query", "+ query rewrite (2 rephrasings)", {"rewrite": "multi_query"}),
    Row("context_bm25", "BM25 alone, contextual chunks", {"dense_weight": 0.0}, contextual=True),
)


@dataclass
class Scores:
    recall_1: float
    recall_5: float
    mrr: float
    p50_ms: float
    p95_ms: float


def article_ranks(retriever: Any, questions: list[dict], depth: int) -> tuple[list[int | None], list[float]]:
    """Per question: the 1-based rank of the gold article among distinct articles (None if not retrieved)."""
    ranks: list[int | None] = []
    latencies: list[float] = []
    for index, question in enumerate(questions, start=1):
        started = time.perf_counter()
        result = retriever.retrieve(question["question"], top_k=depth)
        latencies.append((time.perf_counter() - started) * 1000)
        articles: list[str] = []
        for scored in result.chunks:
            name = Path(scored.chunk.path).name
            if name not in articles:
                articles.append(name)
        gold = Path(question["gold_sources"][0]).name
        ranks.append(articles.index(gold) + 1 if gold in articles else None)
        if index % 50 == 0:
            print(f"  {index}/{len(questions)}", file=sys.stderr, flush=True)
    return ranks, latencies


def score(ranks: list[int | None], latencies: list[float]) -> Scores:
    n = len(ranks)
    return Scores(
        recall_1=sum(r == 1 for r in ranks) / n,
        recall_5=sum(r is not None and r <= 5 for r in ranks) / n,
        mrr=sum(1 / r for r in ranks if r is not None) / n,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", choices=[r.name for r in ROWS],
                        default=["bm25", "hybrid", "rerank", "rewrite"])
    parser.add_argument("--context", action="store_true", help="add the contextual-chunks rows (slow ingest)")
    parser.add_argument("--questions", type=int, default=None, help="first N questions only (default all 563)")
    parser.add_argument("--every", type=int, default=1, help="every N-th question only (a spread-out sample for "
                        "the rows that generate per query)")
    parser.add_argument("--depth", type=int, default=20, help="chunks retrieved per question (articles ranked)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--home", default=None, help="project home to keep (and reuse) the indexes and the "
                        "context cache in (default: a temporary folder)")
    args = parser.parse_args()
    set_threads(args.threads)
    names = list(args.rows) + (["context", "context_bm25"] if args.context else [])
    rows = [r for r in ROWS if r.name in names]

    from adaptlab.config import AdaptlabConfig
    from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles
    from adaptlab.project import Project
    from adaptlab.rag.index import ingest

    root = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="adaptlab-recall-"))
    data = root / "data"
    if not (data / "questions.jsonl").exists():
        write_articles(BUNDLED_COVID_QA, data)
    questions = [json.loads(line) for line in (data / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = questions[: args.questions] if args.questions else questions
    questions = questions[:: args.every]

    def config(row: Row) -> AdaptlabConfig:
        home = root / ("home-context" if row.contextual else "home")
        chunk = {"context": "generator"} if row.contextual else {}
        return AdaptlabConfig.model_validate({"home": str(home), "runtime": {"threads": args.threads},
                                              "chunk": chunk, "retrieve": row.retrieve})

    context_started = time.perf_counter()
    contexts_done = [0]

    def context_progress(done: int, total: int) -> None:
        contexts_done[0] += 1
        if done == total:
            print(f"  contexts: {contexts_done[0]} chunks, {time.perf_counter() - context_started:.0f} s",
                  file=sys.stderr, flush=True)

    indexed: set[bool] = set()
    results: dict[str, Scores] = {}
    for row in rows:
        built = config(row)
        project = Project(built)
        if row.contextual not in indexed:
            started = time.perf_counter()
            report = ingest([data / "articles"], built, store=project.store, embedder=project.embedder,
                            context_writer=project.chunk_context_writer(context_progress))
            indexed.add(row.contextual)
            print(f"ingest ({'contextual' if row.contextual else 'plain'}): {project.store.count()} chunks, "
                  f"{len(report.added)} documents added, {time.perf_counter() - started:.0f} s", file=sys.stderr)
        retriever = project.retriever
        retriever.retrieve(questions[0]["question"])  # warm: open the table, load the models
        print(f"{row.label}: {len(questions)} questions", file=sys.stderr)
        results[row.name] = score(*article_ranks(retriever, questions, args.depth))

    table = [[row.label, f"{s.recall_1:.3f}", f"{s.recall_5:.3f}", f"{s.mrr:.3f}", f"{s.p50_ms:.0f}",
              f"{s.p95_ms:.0f}"] for row in rows if (s := results.get(row.name))]
    print(f"\nCOVID-QA, {len(questions)} questions, 60 articles; metrics over distinct articles")
    print_table(["retrieval", "recall@1", "recall@5", "MRR", "p50 ms", "p95 ms"], table)
    baseline = results.get("bm25")
    if baseline:
        for name, s in results.items():
            if name != "bm25":
                gain = s.recall_5 - baseline.recall_5
                met = gain >= GOAL_POINTS and s.p95_ms <= GOAL_P95_MS
                print(f"{name}: recall@5 {gain * 100:+.1f} points over BM25 at p95 {s.p95_ms:.0f} ms "
                      f"({'meets' if met else 'misses'} the goal: ≥ +{GOAL_POINTS * 100:.0f} points at "
                      f"p95 ≤ {GOAL_P95_MS:.0f} ms)")
    finish("retrieval_quality", {"questions": len(questions), "depth": args.depth,
                                 "rows": {name: vars(s) for name, s in results.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
