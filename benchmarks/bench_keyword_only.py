"""Keyword-only retrieval (`retrieve.dense_weight = 0`) against the default hybrid, on the bundled COVID-QA articles
with the real MiniLM embedder and the embedded LanceDB store.

  measured = Retriever.retrieve with dense search off: BM25 hits, their stored vectors for the relevance score
             (and MMR), no model call per hit;
  anchor   = the same call with the default hybrid (dense + BM25, fused), which embeds only the query.
Both return --top-k chunks from --top-k candidates. Goal: keyword-only ≤ 1.5× the hybrid's median (it used to
re-embed every hit: seconds per query at top-k 60).

    .venv/bin/python benchmarks/bench_keyword_only.py             # 60 articles, 50 questions, top-k 60
    .venv/bin/python benchmarks/bench_keyword_only.py --quick     # 10 articles, 20 questions
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import finish, percentile, print_table, set_threads, verdict  # noqa: E402

set_threads(1)

GOAL = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--top-k", type=int, default=60)
    args = parser.parse_args()
    articles, queries = (10, 20) if args.quick else (None, 50)

    from adaptlab.config import AdaptlabConfig
    from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles
    from adaptlab.project import Project
    from adaptlab.rag.index import ingest

    root = Path(tempfile.mkdtemp(prefix="adaptlab-kw-"))
    write_articles(BUNDLED_COVID_QA, root / "data", limit=articles)
    questions = [json.loads(line)["question"]
                 for line in (root / "data" / "questions.jsonl").read_text(encoding="utf-8").splitlines()][:queries]
    base = {"home": str(root / "home"), "runtime": {"threads": 1}}
    built = AdaptlabConfig.model_validate(base)
    project = Project(built)
    ingest([root / "data" / "articles"], built, store=project.store, embedder=project.embedder)

    def timed(dense_weight: float) -> tuple[list[float], float]:
        retrieve = {"top_k": args.top_k, "candidates": args.top_k}
        if dense_weight == 0:
            retrieve["dense_weight"] = 0.0
        config = AdaptlabConfig.model_validate({**base, "retrieve": retrieve})
        retriever = Project(config).retriever
        retriever.retrieve(questions[0])  # warm: open the table, load the model
        latencies, relevance = [], 0.0
        for question in questions:
            started = time.perf_counter()
            result = retriever.retrieve(question)
            latencies.append((time.perf_counter() - started) * 1000)
            relevance += result.best_dense_score or 0.0
        return latencies, relevance / len(questions)

    hybrid, hybrid_relevance = timed(0.7)
    keyword, keyword_relevance = timed(0.0)
    ratio = percentile(keyword, 50) / percentile(hybrid, 50)
    rows = [["hybrid (anchor)", f"{percentile(hybrid, 50):.1f}", f"{percentile(hybrid, 95):.1f}",
             f"{hybrid_relevance:.3f}"],
            ["keyword only", f"{percentile(keyword, 50):.1f}", f"{percentile(keyword, 95):.1f}",
             f"{keyword_relevance:.3f}"]]
    print(f"{project.store.count()} chunks, {len(questions)} questions, top-k {args.top_k}")
    print_table(["retrieval", "p50 ms", "p95 ms", "mean best cosine"], rows)
    print(f"keyword-only / hybrid p50: {ratio:.2f}× (goal ≤ {GOAL}×) {verdict(ratio <= GOAL)}")
    finish("bench_keyword_only", {"chunks": project.store.count(), "questions": len(questions),
                                  "top_k": args.top_k, "hybrid_p50_ms": percentile(hybrid, 50),
                                  "keyword_p50_ms": percentile(keyword, 50), "ratio": ratio,
                                  "goal": GOAL, "pass": ratio <= GOAL})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
