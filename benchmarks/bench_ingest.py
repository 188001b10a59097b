"""Ingestion throughput: adaptlab.rag.index.ingest vs the bare embedder encoding the same chunks.

Data: the first --articles COVID-QA articles (bundled in src/adaptlab/datasets/covid_qa), written out as .txt files by
adaptlab.datasets.squad.write_articles.

  anchor   = MiniLMEmbedder.embed on exactly the chunks ingest produces (load_documents + Chunker,
             not timed), same embedder instance, same batch size;
  measured = the full ingest (load, hash, chunk, embed, write in whole-document commits, FTS index, optimize)
             into a fresh LanceStore in a temporary project home, with the same embedder instance.
The model is loaded once, before both, so its load time is in neither. Anchor and measured run alternately
--repeats times; the best of each is kept (noisy shared machine).

Result: chunks/s of both and ratio = ingest throughput / bare embedder throughput. Goal: ≥ 0.9.

    .venv/bin/python benchmarks/bench_ingest.py            # 20 articles
    .venv/bin/python benchmarks/bench_ingest.py --quick    # 5 articles
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, finish, peak_rss_mb, print_table, set_threads, verdict  # noqa: E402

NAME = "bench_ingest"
GOAL_RATIO = 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run for CI smoke tests (5 articles, 1 repeat)")
    parser.add_argument("--articles", type=int, default=None, help="COVID-QA articles ingested (default 20; --quick 5)")
    parser.add_argument("--repeats", type=int, default=None, help="alternating anchor/measured rounds (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default: runtime.threads)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="embedder batch size (default: embedder.batch_size)")
    args = parser.parse_args(argv)
    if args.articles is None:
        args.articles = 5 if args.quick else 20
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from adaptlab.config import AdaptlabConfig  # light import: no numpy/torch yet

    config = AdaptlabConfig()
    threads = args.threads or config.runtime.threads
    batch_size = args.batch_size or config.embedder.batch_size
    set_threads(threads)  # before torch/numpy start their pools
    config.runtime.threads = threads
    config.embedder.batch_size = batch_size

    from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles
    from adaptlab.embed.minilm import MiniLMEmbedder
    from adaptlab.rag.chunk import Chunker
    from adaptlab.rag.index import ingest, load_documents
    from adaptlab.rag.lance_store import LanceStore

    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-ingest-") as tmp:
        tmp_path = Path(tmp)
        write_articles(BUNDLED_COVID_QA, tmp_path / "data", limit=args.articles)
        files = sorted((tmp_path / "data" / "articles").glob("*.txt"))
        if len(files) < args.articles:
            print(f"only {len(files)} articles available", file=sys.stderr)
        paths = [str(f) for f in files]

        with Timer() as t_model:
            embedder = MiniLMEmbedder(config.embedder.model_path, batch_size=batch_size)
        embedder.embed(["warm-up sentence for the embedder"] * 4)

        with Timer() as t_prepare:
            documents, problems, _ = load_documents(paths, config)
            chunker = Chunker(config.chunk, embedder)
            chunks = [chunk for document in documents for chunk in chunker.chunk(document)]
        if problems:
            raise RuntimeError(f"articles failed to load: {problems}")
        texts = [chunk.index_text for chunk in chunks]
        tokens = sum(embedder.count_tokens(text) for text in texts)
        print(f"{NAME}: {len(files)} articles, {len(documents)} documents, {len(chunks)} chunks "
              f"({tokens / len(chunks):.0f} tokens/chunk), threads={threads}, batch_size={batch_size}, "
              f"model load {t_model.seconds:.1f}s (excluded)", file=sys.stderr)

        anchor_runs: list[float] = []
        measured_runs: list[float] = []
        reports = []
        for round_number in range(args.repeats):
            with Timer() as t_anchor:
                vectors = embedder.embed(texts)
            anchor_runs.append(t_anchor.seconds)
            assert vectors.shape == (len(texts), embedder.dimension)

            run_config = config.model_copy(deep=True)
            run_config.home = str(tmp_path / f"home-{round_number}")
            store = LanceStore(run_config.store, run_config.home_dir() / "lancedb")
            store.open(embedder.name, embedder.dimension)
            with Timer() as t_measured:
                report = ingest(paths, run_config, store=store, embedder=embedder)
            measured_runs.append(t_measured.seconds)
            reports.append(report)
            if report.chunks_written != len(chunks):
                raise RuntimeError(f"ingest wrote {report.chunks_written} chunks, the anchor embedded {len(chunks)}")
            print(f"round {round_number + 1}: bare embed {t_anchor.seconds:.2f}s, ingest {t_measured.seconds:.2f}s",
                  file=sys.stderr)

    n = len(chunks)
    best_anchor, best_measured = min(anchor_runs), min(measured_runs)
    anchor_cps, measured_cps = n / best_anchor, n / best_measured
    ratio = measured_cps / anchor_cps
    ok = ratio >= GOAL_RATIO
    print()
    print_table(
        ["path", "chunks", "best s", "all runs s", "chunks/s"],
        [["bare embedder (anchor)", n, best_anchor, " ".join(f"{s:.2f}" for s in anchor_runs), anchor_cps],
         ["adaptlab ingest", n, best_measured, " ".join(f"{s:.2f}" for s in measured_runs), measured_cps]],
    )
    print(f"\nload+chunk alone (not in the anchor): {t_prepare.seconds:.2f}s; "
          f"ingest minus bare embed: {best_measured - best_anchor:.2f}s")
    print(f"ratio ingest / bare = {ratio:.3f}x")
    print(f"goal ≥ {GOAL_RATIO}x: {verdict(ok)}")
    finish(NAME, {
        "params": {"articles": len(files), "repeats": args.repeats, "threads": threads, "batch_size": batch_size,
                   "quick": args.quick},
        "chunks": n, "documents": len(documents), "tokens_per_chunk": round(tokens / n, 1),
        "anchor": {"runs_s": [round(s, 3) for s in anchor_runs], "best_s": round(best_anchor, 3),
                   "chunks_per_s": round(anchor_cps, 2)},
        "measured": {"runs_s": [round(s, 3) for s in measured_runs], "best_s": round(best_measured, 3),
                     "chunks_per_s": round(measured_cps, 2)},
        "ratio": round(ratio, 4), "load_chunk_s": round(t_prepare.seconds, 3),
        "model_load_s": round(t_model.seconds, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
        "goal": {"ratio_min": GOAL_RATIO}, "verdict": verdict(ok),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
