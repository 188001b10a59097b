"""One RAG `ask` vs a bare llama-cpp-python call on the same final prompt.

Setup (not timed): a project in a temporary home with the first --articles COVID-QA articles ingested by the
real embedder (all-MiniLM-L6-v2), and the `rag` strategy that `adaptlab ask` answers with (build_strategy). Questions
come from the questions.jsonl written by write_articles, picked round-robin over the ingested articles, skipping any
the answerer would refuse (no model call: nothing to compare).

  measured = wall time of strategy.answer(question): embed the question, dense + BM25 search, fusion, prompt
             building (token counting), the llama.cpp chat completion, citation finding, call logging;
  anchor   = wall time of project.generator.llama.create_chat_completion(messages=answerer.prompt_for(q), ...)
             on the same Llama instance with the same max_tokens, temperature (greedy), seed and repeat_penalty.
The prompt for the anchor is built before its timer starts. Llama.reset() runs before every timed call, so
neither side reuses the other's KV cache (llama-cpp-python reuses a matching prompt prefix otherwise): both
evaluate the whole prompt, as a one-shot `adaptlab ask` does. Order alternates per question; one warm-up pair
runs first. Greedy decoding on the same prompt gives the same tokens; the completion token counts of both
sides are reported to show it.

Result: total ratio = Σ measured / Σ anchor (goal ≤ 1.10) and the overhead in ms (measured − anchor, and the
untimed prompt_for time as an independent estimate of retrieval + prompt building).

    .venv/bin/python benchmarks/bench_ask.py            # 10 articles, 10 questions
    .venv/bin/python benchmarks/bench_ask.py --quick    # 5 articles, 3 questions
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, finish, peak_rss_mb, percentile, print_table, set_threads, verdict  # noqa: E402

NAME = "bench_ask"
GOAL_RATIO = 1.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run for CI smoke tests (5 articles, 3 questions)")
    parser.add_argument("--articles", type=int, default=None, help="COVID-QA articles ingested (default 10; --quick 5)")
    parser.add_argument("--questions", type=int, default=None, help="timed questions (default 10; --quick 3)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp/torch threads (default: runtime.threads)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="tokens generated at most (default: generator.max_tokens)")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: generator.seed)")
    args = parser.parse_args(argv)
    if args.articles is None:
        args.articles = 5 if args.quick else 10
    if args.questions is None:
        args.questions = 3 if args.quick else 10
    return args


def pick_questions(questions_file: Path, gold_files: list[str]) -> list[dict]:
    """Round-robin over the ingested articles so questions spread across documents (deterministic)."""
    by_article: dict[str, list[dict]] = {name: [] for name in gold_files}
    with open(questions_file, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            gold = record["gold_sources"][0]
            if gold in by_article:
                by_article[gold].append(record)
    ordered: list[dict] = []
    depth = 0
    while any(len(items) > depth for items in by_article.values()):
        ordered.extend(items[depth] for items in by_article.values() if len(items) > depth)
        depth += 1
    return ordered


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from adaptlab.config import AdaptlabConfig

    base = AdaptlabConfig()
    threads = args.threads or base.runtime.threads
    set_threads(threads)

    from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles
    from adaptlab.project import Project
    from adaptlab.rag.answer import RagAnswerer
    from adaptlab.rag.index import ingest
    from adaptlab.strategies.factory import build_strategy

    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-ask-") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        write_articles(BUNDLED_COVID_QA, data, limit=args.articles)
        files = sorted((data / "articles").glob("*.txt"))

        config = base.model_copy(deep=True)
        config.home = str(tmp_path / "home")
        config.runtime.threads = threads
        if args.max_tokens:
            config.generator.max_tokens = args.max_tokens
        if args.seed is not None:
            config.generator.seed = args.seed
        max_tokens, temperature, seed = (config.generator.max_tokens, config.generator.temperature,
                                         config.generator.seed)
        # Every sampling setting the generator passes, so both sides decode the same tokens.
        sampling = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        if hasattr(config.generator, "repeat_penalty"):
            sampling["repeat_penalty"] = config.generator.repeat_penalty
        project = Project(config)
        with Timer() as t_setup:
            report = ingest([str(f) for f in files], config, store=project.store, embedder=project.embedder)
            strategy = build_strategy(project, "rag")
            llama = project.generator.llama
        retriever = project.retriever
        # The anchor's prompt: an answerer on the same retriever, generator and settings as the strategy's.
        answerer = RagAnswerer(retriever, project.generator, config.answer, max_tokens=max_tokens,
                               n_ctx=config.generator.n_ctx)

        candidates = pick_questions(data / "questions.jsonl", [f"articles/{f.name}" for f in files])
        chosen, refused_skipped = [], 0
        for record in candidates:
            result = retriever.retrieve(record["question"])
            best = result.best_dense_score
            if not result.chunks or (best is not None and best < config.answer.min_relevance):
                refused_skipped += 1
                continue
            chosen.append(record["question"])
            if len(chosen) == args.questions + 1:  # +1: the warm-up question
                break
        if len(chosen) < 2:
            raise RuntimeError(f"not enough answerable questions among {len(candidates)} candidates")
        warmup, questions = chosen[0], chosen[1:]
        print(f"{NAME}: {len(files)} articles ({report.total_chunks} chunks, setup {t_setup.seconds:.1f}s), "
              f"{len(questions)} questions (+1 warm-up; {refused_skipped} skipped as refusals), threads={threads}, "
              + ", ".join(f"{k}={v}" for k, v in sampling.items()), file=sys.stderr)

        def run_measured(question: str):
            llama.reset()
            started = time.perf_counter()
            answer = strategy.answer(question)
            return time.perf_counter() - started, answer

        def run_anchor(question: str):
            with Timer() as t_prompt:
                messages = answerer.prompt_for(question)
            llama.reset()
            started = time.perf_counter()
            result = llama.create_chat_completion(messages=messages, **sampling)
            return time.perf_counter() - started, result, t_prompt.seconds

        run_measured(warmup)
        run_anchor(warmup)

        rows = []
        for i, question in enumerate(questions):
            if i % 2 == 0:
                m_s, answer = run_measured(question)
                a_s, result, prompt_s = run_anchor(question)
            else:
                a_s, result, prompt_s = run_anchor(question)
                m_s, answer = run_measured(question)
            if answer.refused:
                raise RuntimeError(f"answerer refused a pre-checked question: {question!r}")
            a_text = (result["choices"][0]["message"].get("content") or "").strip()
            rows.append({
                "question": question, "measured_s": m_s, "anchor_s": a_s, "prompt_for_s": prompt_s,
                "measured_tokens": answer.usage.completion_tokens,
                "anchor_tokens": int(result["usage"]["completion_tokens"]),
                "prompt_tokens": int(result["usage"]["prompt_tokens"]),
                "same_text": a_text == answer.text,
            })
            print(f"  q{i + 1}: ask {m_s * 1000:.0f} ms ({answer.usage.completion_tokens} tok), "
                  f"bare {a_s * 1000:.0f} ms ({rows[-1]['anchor_tokens']} tok)", file=sys.stderr)
        peak = peak_rss_mb()

    sum_m = sum(r["measured_s"] for r in rows)
    sum_a = sum(r["anchor_s"] for r in rows)
    ratio = sum_m / sum_a
    tok_m = sum(r["measured_tokens"] for r in rows)
    tok_a = sum(r["anchor_tokens"] for r in rows)
    per_tok_ratio = (sum_m / max(1, tok_m)) / (sum_a / max(1, tok_a))
    overheads = [(r["measured_s"] - r["anchor_s"]) * 1000 for r in rows]
    prompt_ms = [r["prompt_for_s"] * 1000 for r in rows]
    ok = ratio <= GOAL_RATIO

    print()
    print_table(
        ["#", "prompt tok", "ask ms", "bare ms", "ask tok", "bare tok", "same text", "overhead ms", "prompt_for ms"],
        [[i + 1, r["prompt_tokens"], r["measured_s"] * 1000, r["anchor_s"] * 1000, r["measured_tokens"],
          r["anchor_tokens"], "yes" if r["same_text"] else "NO", (r["measured_s"] - r["anchor_s"]) * 1000,
          r["prompt_for_s"] * 1000] for i, r in enumerate(rows)],
    )
    print()
    print_table(
        ["summary", "ask (measured)", "bare llama.cpp (anchor)"],
        [["total s", sum_m, sum_a],
         ["completion tokens", tok_m, tok_a],
         ["ms / completion token", sum_m * 1000 / max(1, tok_m), sum_a * 1000 / max(1, tok_a)]],
    )
    print(f"\noverhead per ask: median {percentile(overheads, 50):.1f} ms, "
          f"mean {sum(overheads) / len(overheads):.1f} ms; "
          f"prompt_for (retrieval + prompt building) median {percentile(prompt_ms, 50):.1f} ms")
    print(f"ratio Σask / Σbare = {ratio:.3f}x (per completion token {per_tok_ratio:.3f}x)")
    print(f"goal ≤ {GOAL_RATIO}x: {verdict(ok)}")
    finish(NAME, {
        "params": {"articles": len(files), "questions": len(rows), "threads": threads, **sampling,
                   "quick": args.quick},
        "chunks": report.total_chunks, "refusals_skipped": refused_skipped,
        "measured_total_s": round(sum_m, 3), "anchor_total_s": round(sum_a, 3), "ratio": round(ratio, 4),
        "per_token_ratio": round(per_tok_ratio, 4), "completion_tokens": {"measured": tok_m, "anchor": tok_a},
        "all_same_text": all(r["same_text"] for r in rows),
        "overhead_ms": {"median": round(percentile(overheads, 50), 2),
                        "mean": round(sum(overheads) / len(overheads), 2)},
        "prompt_for_ms": {"median": round(percentile(prompt_ms, 50), 2), "p95": round(percentile(prompt_ms, 95), 2)},
        "peak_rss_mb": round(peak, 1),
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        "goal": {"ratio_max": GOAL_RATIO}, "verdict": verdict(ok),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
