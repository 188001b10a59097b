"""Dense retrieval at scale: LanceStore.dense_search vs exact numpy search over the same vectors.

Data: --rows synthetic 384-d unit vectors (seeded), drawn around --clusters gaussian centres with a spread
that varies per cluster, so an approximate index is neither trivially exact nor hopeless. Queries are data
points with a small perturbation. Every row is a whole adaptlab Chunk (short text), written through
LanceStore.add_chunks in batches, then LanceStore.finalize() builds the indexes as ingest would (under
store.index = 'auto' the vector index is built at ≥ exact_below rows, and under store.graph = 'auto' the
in-process HNSW graph that answers unfiltered searches, rag/graph_index.py).

Measured, top-k (default 10) over --queries queries × 2 passes, interleaved per query (after a warm-up):
  * LanceStore.dense_search p50/p95 latency and recall@k against exact search (whole chunks with their
    vectors: from the graph and its payload table), and dense_search(with_vectors=False) (what the Retriever asks
    without MMR);
  * the same store with store.graph = 'off' (LanceDB's own index: what filtered searches and a reader whose
    table another process is writing use);
  * breakdown, LanceDB's query (settings, filter, call path) projecting only chunk_id + _distance (the
    index search and one round trip, no payload), and projecting all payload columns + vector (how whole
    chunks were read before the chunk_json column);
  * anchor: brute-force numpy (matrix-vector product + argpartition) p50/p95 on the same vectors and queries;
    ratio = store p95 / numpy p95;
  * filtered search (tag carried by --filter-fraction of rows) latency and recall against exact filtered search;
  * finalize() time, split into the vector-index build, the FTS build and the rest (optimize);
  * peak memory of this process (ru_maxrss) and the RSS of a fresh process that reopens the store and queries it.
Goal (embedded default settings): p95 ≤ 5 ms at recall@10 ≥ 0.95.

    .venv/bin/python benchmarks/bench_retrieval.py            # 200,000 rows
    .venv/bin/python benchmarks/bench_retrieval.py --quick    # 20,000 rows (indexed too: exact_below is 10,000)
    .venv/bin/python benchmarks/bench_retrieval.py --sweep    # also try query settings on the same index
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Timer,
    current_rss_mb,
    finish,
    peak_rss_mb,
    percentile,
    print_table,
    process_peak_rss_mb,
    set_threads,
    verdict,
)

NAME = "bench_retrieval"
GOAL_P95_MS = 5.0
GOAL_RECALL = 0.95
HOT_TAG = "hot"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run for CI smoke tests (20,000 rows)")
    parser.add_argument("--rows", type=int, default=None, help="vectors stored (default 200000; --quick 20000)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=None,
                        help="gaussian clusters (default rows/100, at most 2000)")
    parser.add_argument("--queries", type=int, default=None, help="timed queries (default 300; --quick 200)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10_000, help="chunks per add_chunks call")
    parser.add_argument("--filter-fraction", type=float, default=0.10,
                        help="share of rows carrying the filter tag (0 skips the filtered measurement)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for the numpy anchor")
    parser.add_argument("--build-threads", type=int, default=1,
                        help="threads for building the graph (runtime.threads, default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--index", default=None,
                        help="override store.index (auto, flat, ivf_hnsw_sq, ivf_sq, ivf_flat)")
    parser.add_argument("--nprobes", type=int, default=None, help="override store.nprobes")
    parser.add_argument("--refine-factor", type=int, default=None, help="override store.refine_factor")
    parser.add_argument("--ef", type=int, default=None, help="override store.ef")
    parser.add_argument("--sweep", action="store_true",
                        help="after the main measurement, time other nprobes/ef/refine settings on the same index")
    parser.add_argument("--dir", default=None, help="build the store here instead of a temporary directory")
    parser.add_argument("--reopen-probe", default=None, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 20_000 if args.quick else 200_000
    if args.queries is None:
        args.queries = 200 if args.quick else 300
    if args.clusters is None:
        args.clusters = max(1, min(2000, args.rows // 100))
    return args


# -- data ----------------------------------------------------------------------------------------------
def make_data(args):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    d = args.dim
    centres = rng.standard_normal((args.clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Spread per cluster: noise norm 0.5–1.1 around a unit centre, i.e. members at cosine ~0.45–0.8 of each other.
    spread = rng.uniform(0.5, 1.1, args.clusters).astype(np.float32)
    assign = rng.integers(0, args.clusters, args.rows)
    vectors = np.empty((args.rows, d), dtype=np.float32)
    for start in range(0, args.rows, 20_000):
        stop = min(start + 20_000, args.rows)
        a = assign[start:stop]
        block = centres[a] + rng.standard_normal((stop - start, d)).astype(np.float32) * (spread[a, None] / np.sqrt(d))
        vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    hot = rng.random(args.rows) < args.filter_fraction
    picks = rng.choice(args.rows, args.queries, replace=False)
    queries = vectors[picks] + rng.standard_normal((args.queries, d)).astype(np.float32) * (0.3 / np.sqrt(d))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return vectors, hot, queries.astype(np.float32)


def make_chunks(start: int, stop: int, hot):
    from adaptlab.types import Chunk

    chunks = []
    for i in range(start, stop):
        text = f"synthetic chunk {i} of document {i // 10}"
        chunks.append(Chunk(
            chunk_id=str(i), doc_id=f"doc-{i // 10}", doc_hash="h0", chunk_index=i % 10, chunk_count=10,
            path=f"/synthetic/doc-{i // 10}.txt", title=f"Document {i // 10}", text=text, index_text=text,
            char_start=0, char_end=len(text), page=None, tags=(HOT_TAG,) if hot[i] else (),
        ))
    return chunks


# -- measurement ---------------------------------------------------------------------------------------
def exact_topk(matrix, query, k):
    import numpy as np

    scores = matrix @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def lance_query(store, vector, k, columns, where=None):
    """The query dense_search runs (same settings, filter and call path), projecting `columns` (+ _distance)."""
    from lancedb.background_loop import LOOP
    from lancedb.table import AsyncTable

    columns = [*columns, "_distance"]

    config = store._config
    ef = max(config.ef, k * max(1, config.refine_factor))  # as dense_search: HNSW needs ef ≥ its candidates
    async_table = getattr(store.table, "_table", None)
    if isinstance(async_table, AsyncTable):  # dense_search's one-round-trip path
        query = (async_table.query().nearest_to(vector).column("vector").distance_type("cosine")
                 .nprobes(config.nprobes).ef(ef).limit(k))
        if config.refine_factor:
            query = query.refine_factor(config.refine_factor)
        if where:
            query = query.where(where)
        return LOOP.run(query.select(columns).to_arrow())
    query = (store.table.search(vector, vector_column_name="vector").distance_type("cosine")
             .nprobes(config.nprobes).ef(ef).limit(k))
    if config.refine_factor:
        query = query.refine_factor(config.refine_factor)
    if where:
        query = query.where(where, prefilter=True)
    return query.select(columns).to_arrow()


def searches(store, k, *, flt=None, where=None, breakdown=True, lance_only=None):
    """name → (search(query), the chunk ids it found): dense_search, the same on `lance_only` (the store with its
    graph off), and the LanceDB queries that break it down."""
    from adaptlab.rag.lance_store import _PAYLOAD_COLUMNS

    def hit_ids(hits):
        return [h.chunk.chunk_id for h in hits]

    def arrow_ids(data):
        return data["chunk_id"].to_pylist()

    found = {"store": (lambda q: store.dense_search(q, k, flt), hit_ids),
             "ids": (lambda q: lance_query(store, q, k, ["chunk_id"], where), arrow_ids)}
    if lance_only is not None:
        found["lancedb"] = (lambda q: lance_only.dense_search(q, k, flt), hit_ids)
    if breakdown:
        found["store_no_vectors"] = (lambda q: store.dense_search(q, k, flt, with_vectors=False), hit_ids)
        found["columns"] = (lambda q: lance_query(store, q, k, [*_PAYLOAD_COLUMNS, "vector"], where), arrow_ids)
    return found


def measure(matrix, row_ids, queries, k, found, *, passes=2, warmup=20):
    """Per query, interleaved: numpy exact (anchor, also the ground truth), then each search in `found` (see
    searches()), their order rotating from query to query. Interleaving makes bursts of load on a shared machine
    hit all of them alike; rotating gives each the place right after numpy (whose 300 MB pass leaves CPU caches
    cold and, on a loaded machine, its threads waiting longer to be scheduled) equally often.
    Returns latency lists (all passes pooled, "numpy" and each name), each search's recall against exact, and
    each search's latencies when it ran right after numpy (a subset of its list)."""
    for q in queries[:warmup]:
        exact_topk(matrix, q, k)
        for search, _ in found.values():
            search(q)
    lat: dict[str, list[float]] = {"numpy": [], **{name: [] for name in found}}
    recalls: dict[str, list[float]] = {name: [] for name in found}
    names = list(found)
    after_numpy: dict[str, list[float]] = {name: [] for name in found}
    for pass_number in range(passes):
        for number, q in enumerate(queries):
            started = time.perf_counter()
            top = exact_topk(matrix, q, k)
            lat["numpy"].append((time.perf_counter() - started) * 1000)
            expected = {int(row_ids[i]) for i in top}
            turn = number % len(names)
            for name in names[turn:] + names[:turn]:
                search, ids_of = found[name]
                started = time.perf_counter()
                result = search(q)
                lat[name].append((time.perf_counter() - started) * 1000)
                if name == names[turn]:
                    after_numpy[name].append(lat[name][-1])
                if pass_number == 0:
                    recalls[name].append(len({int(c) for c in ids_of(result)} & expected) / len(expected))
    return lat, {name: sum(values) / len(values) for name, values in recalls.items()}, after_numpy


def stats(latencies):
    return {"p50_ms": round(percentile(latencies, 50), 3), "p95_ms": round(percentile(latencies, 95), 3),
            "mean_ms": round(sum(latencies) / len(latencies), 3)}


def store_config(args):
    from adaptlab.config import StoreConfig

    overrides = {key: value for key, value in (
        ("index", args.index), ("nprobes", args.nprobes), ("refine_factor", args.refine_factor), ("ef", args.ef),
    ) if value is not None}
    return StoreConfig(**overrides)


def reopen_probe(args) -> None:
    """Child process: reopen the store, query it, report memory (keeps the parent's arrays out of the figure)."""
    import numpy as np

    from adaptlab.rag.lance_store import LanceStore

    directory = Path(args.reopen_probe)
    queries = np.load(directory / "queries.npy")
    rss_before = current_rss_mb()
    store = LanceStore(store_config(args), directory / "lancedb")
    store.open("synthetic:clustered", int(queries.shape[1]))
    started = time.perf_counter()
    store.dense_search(queries[0], args.k)
    first_ms = (time.perf_counter() - started) * 1000
    for q in queries[:100]:
        store.dense_search(q, args.k)
    print(json.dumps({"rss_before_open_mb": round(rss_before, 1), "rss_after_queries_mb": round(current_rss_mb(), 1),
                      "peak_rss_mb": round(process_peak_rss_mb(), 1), "first_query_ms": round(first_ms, 2)}))


def sweep(store, base_config, vectors, queries, k):
    """Other query-time settings on the same index (one pass each, interleaved with numpy)."""
    import numpy as np

    from adaptlab.config import StoreConfig

    row_ids = np.arange(len(vectors))
    hnsw = "Hnsw" in store.info().index
    results = []
    for nprobes in (5, 10, 20, 40):
        for refine in (0, 2, 4):
            for ef in ((32, 64, 128) if hnsw else (base_config.ef,)):
                if ef < k * max(1, refine):  # LanceDB refuses ef < the candidates it must return
                    continue
                setting = {"nprobes": nprobes, "refine_factor": refine, "ef": ef}
                store._config = StoreConfig(**{**base_config.model_dump(), **setting})
                try:
                    lat, recalls, _ = measure(vectors, row_ids, queries, k, searches(store, k, breakdown=False),
                                              passes=1, warmup=10)
                    recall = recalls["store"]
                except Exception as exc:  # a refused setting is a result of the sweep, not a failure
                    results.append({**setting, "error": str(exc)[:200]})
                    continue
                s = stats(lat["store"])
                results.append({**setting, "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"],
                                "ids_p95_ms": round(percentile(lat["ids"], 95), 3),
                                "numpy_p95_ms": round(percentile(lat["numpy"], 95), 3), "recall": round(recall, 4)})
    store._config = base_config
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    if args.reopen_probe:
        reopen_probe(args)
        return 0
    import numpy as np

    from adaptlab.rag.lance_store import _PAYLOAD_COLUMNS, LanceStore, _where
    from adaptlab.rag.store import SearchFilter

    config = store_config(args)
    print(f"{NAME}: rows={args.rows:,} dim={args.dim} clusters={args.clusters} queries={args.queries} k={args.k} "
          f"index={config.index} exact_below={config.exact_below:,} nprobes={config.nprobes} ef={config.ef} "
          f"refine_factor={config.refine_factor}", file=sys.stderr)

    with Timer() as t_data:
        vectors, hot, queries = make_data(args)
    tmp = tempfile.TemporaryDirectory(prefix="adaptlab-bench-retrieval-") if args.dir is None else None
    directory = Path(tmp.name if tmp else args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "queries.npy", queries)
    try:
        store = LanceStore(config, directory / "lancedb", threads=args.build_threads)
        store.open("synthetic:clustered", args.dim)
        if store.count():
            raise RuntimeError(f"{directory} already holds a table: give --dir an empty folder")
        with Timer() as t_add:
            for start in range(0, args.rows, args.batch):
                stop = min(start + args.batch, args.rows)
                store.add_chunks(make_chunks(start, stop, hot), vectors[start:stop])
        # Time each index build inside finalize() by wrapping the table's create_index.
        index_seconds: dict[str, float] = {}
        table = store.table
        original_create_index = table.create_index

        def timed_create_index(column, *a, **kw):
            started = time.perf_counter()
            try:
                return original_create_index(column, *a, **kw)
            finally:
                index_seconds[column] = time.perf_counter() - started

        table.create_index = timed_create_index
        graph = store._graph
        if graph is not None:  # time the graph's build the same way
            original_sync = graph.sync

            def timed_sync(*a, **kw):
                started = time.perf_counter()
                try:
                    return original_sync(*a, **kw)
                finally:
                    index_seconds["graph"] = time.perf_counter() - started

            graph.sync = timed_sync
        with Timer() as t_finalize:
            store.finalize()
        del table.create_index
        info = store.info()
        lance_only = LanceStore(config.model_copy(update={"graph": "off"}), directory / "lancedb")
        lance_only.open("synthetic:clustered", args.dim)
        print(f"data {t_data.seconds:.1f}s, add_chunks {t_add.seconds:.1f}s "
              f"({args.rows / t_add.seconds:,.0f} rows/s), finalize {t_finalize.seconds:.1f}s "
              f"(vector index {index_seconds.get('vector', 0.0):.1f}s, "
              f"FTS {index_seconds.get('index_text', 0.0):.1f}s, graph {index_seconds.get('graph', 0.0):.1f}s), "
              f"index: {info.index}", file=sys.stderr)

        lat, recalls, after_numpy = measure(vectors, np.arange(args.rows), queries, args.k,
                                            searches(store, args.k, lance_only=lance_only))
        recall, recall_ids = recalls["store"], recalls["ids"]
        filtered = None
        if args.filter_fraction > 0 and hot.any():
            flt = SearchFilter(tags=(HOT_TAG,))
            hot_rows = np.flatnonzero(hot)
            f_lat, f_recalls, _ = measure(vectors[hot_rows], hot_rows, queries, args.k,
                                       searches(store, args.k, flt=flt, where=_where(flt)[0], breakdown=False),
                                       passes=1)
            filtered = {"rows": int(hot.sum()), "store": stats(f_lat["store"]), "ids_only": stats(f_lat["ids"]),
                        "numpy_anchor": stats(f_lat["numpy"]), "recall": round(f_recalls["store"], 4),
                        "recall_ids_only": round(f_recalls["ids"], 4)}
        peak_build = peak_rss_mb()
        has_index = info.index != "exact (brute force)"  # query settings do nothing on exact search
        # The sweep tunes LanceDB's index: on the store without the graph, which would otherwise answer.
        sweep_results = sweep(lance_only, config, vectors, queries, args.k) if args.sweep and has_index else None
        del store, lance_only
        probe = subprocess.run(
            [sys.executable, __file__, "--reopen-probe", str(directory), "--k", str(args.k),
             "--threads", str(args.threads),
             *(sum(([f"--{n.replace('_', '-')}", str(v)] for n, v in (
                 ("index", args.index), ("nprobes", args.nprobes), ("refine_factor", args.refine_factor),
                 ("ef", args.ef)) if v is not None), []))],
            capture_output=True, text=True, check=True,
        )
        reopen = json.loads(probe.stdout.strip().splitlines()[-1])
    finally:
        if tmp:
            tmp.cleanup()

    s, i, n = stats(lat["store"]), stats(lat["ids"]), stats(lat["numpy"])
    bare, columns, lance = stats(lat["store_no_vectors"]), stats(lat["columns"]), stats(lat["lancedb"])
    cold = stats(after_numpy["store"])
    ratio = s["p95_ms"] / n["p95_ms"]
    ok = s["p95_ms"] <= GOAL_P95_MS and recall >= GOAL_RECALL
    samples = len(lat["store"])
    print()
    rows = [["LanceStore.dense_search (whole chunks + vectors)", s["p50_ms"], s["p95_ms"], s["mean_ms"], recall],
            ["dense_search(with_vectors=False)", bare["p50_ms"], bare["p95_ms"], bare["mean_ms"],
             recalls["store_no_vectors"]],
            ["store.graph = 'off' (LanceDB's index)", lance["p50_ms"], lance["p95_ms"], lance["mean_ms"],
             recalls["lancedb"]],
            ["LanceDB's query, chunk_id + score only", i["p50_ms"], i["p95_ms"], i["mean_ms"], recall_ids],
            [f"same query, {len(_PAYLOAD_COLUMNS)} payload columns + vector (old read)", columns["p50_ms"],
             columns["p95_ms"],
             columns["mean_ms"], recalls["columns"]],
            ["numpy exact (anchor)", n["p50_ms"], n["p95_ms"], n["mean_ms"], 1.0]]
    if filtered:
        share = f"{filtered['rows'] / args.rows:.0%}"
        rows += [[f"filtered dense_search (tag on {share})", filtered["store"]["p50_ms"], filtered["store"]["p95_ms"],
                  filtered["store"]["mean_ms"], filtered["recall"]],
                 ["filtered, chunk_id + score only", filtered["ids_only"]["p50_ms"], filtered["ids_only"]["p95_ms"],
                  filtered["ids_only"]["mean_ms"], filtered["recall_ids_only"]],
                 ["filtered numpy exact (anchor)", filtered["numpy_anchor"]["p50_ms"],
                  filtered["numpy_anchor"]["p95_ms"], filtered["numpy_anchor"]["mean_ms"], 1.0]]
    print(f"top-{args.k} over {args.queries} queries × 2 passes ({samples} samples; filtered: 1 pass), interleaved:")
    print_table(["search", "p50 ms", "p95 ms", "mean ms", f"recall@{args.k}"], rows)
    print()
    print_table(
        ["build / memory", "value"],
        [["add_chunks rows/s", round(args.rows / t_add.seconds)],
         ["finalize s (total)", round(t_finalize.seconds, 2)],
         ["  vector index build s", round(index_seconds.get("vector", 0.0), 2)],
         ["  FTS index build s", round(index_seconds.get("index_text", 0.0), 2)],
         ["  graph build s", round(index_seconds.get("graph", 0.0), 2)],
         ["vector index", info.index],
         ["peak RSS this process MB (incl. the numpy copy)", round(peak_build, 1)],
         ["reopened: RSS after 100 queries MB", reopen["rss_after_queries_mb"]],
         ["reopened: peak RSS MB", reopen["peak_rss_mb"]],
         ["reopened: first query ms", reopen["first_query_ms"]]],
    )
    if sweep_results:
        print("\nquery-setting sweep on the same index (1 pass each):")
        print_table(["nprobes", "refine", "ef", "p50 ms", "p95 ms", "ids-only p95", "numpy p95", "recall"],
                    [[r["nprobes"], r["refine_factor"], r["ef"], r.get("p50_ms", "error"), r.get("p95_ms", "-"),
                      r.get("ids_p95_ms", "-"), r.get("numpy_p95_ms", "-"), r.get("recall", r.get("error", ""))]
                     for r in sweep_results])
    print(f"\ndense_search right after the numpy pass ({len(after_numpy['store'])} of {samples} samples): "
          f"p50 / p95 {cold['p50_ms']:.2f} / {cold['p95_ms']:.2f} ms")
    print(f"ratio store_p95 / numpy_p95 = {ratio:.3f}x (graph off: {lance['p95_ms'] / n['p95_ms']:.3f}x; "
          f"LanceDB's chunk_id + score query: {i['p95_ms'] / n['p95_ms']:.3f}x)")
    print(f"goal p95 ≤ {GOAL_P95_MS} ms at recall@{args.k} ≥ {GOAL_RECALL}: {verdict(ok)} "
          f"(p95 {s['p95_ms']:.2f} ms, recall {recall:.3f})")
    finish(NAME, {
        "params": {k: v for k, v in vars(args).items() if k not in ("reopen_probe", "dir")},
        "store_config": config.model_dump(include={"index", "exact_below", "nprobes", "refine_factor", "ef", "graph",
                                                   "graph_connectivity", "graph_expansion"}),
        "vector_index": info.index,
        "store": s, "store_without_vectors": bare, "lancedb_only": lance, "ids_only": i,
        "payload_columns_read": columns,
        "numpy_anchor": n, "store_right_after_numpy": cold, "ratio_p95": round(ratio, 4),
        "ratio_p95_ids_only": round(i["p95_ms"] / n["p95_ms"], 4),
        "recall": round(recall, 4), "recall_ids_only": round(recall_ids, 4),
        "filtered": filtered,
        "build": {"add_chunks_s": round(t_add.seconds, 2), "finalize_s": round(t_finalize.seconds, 2),
                  "vector_index_s": round(index_seconds.get("vector", 0.0), 2),
                  "fts_index_s": round(index_seconds.get("index_text", 0.0), 2),
                  "graph_s": round(index_seconds.get("graph", 0.0), 2)},
        "memory": {"peak_rss_mb": round(peak_build, 1), "reopened": reopen},
        "sweep": sweep_results,
        "goal": {"p95_ms_max": GOAL_P95_MS, "recall_min": GOAL_RECALL}, "verdict": verdict(ok),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
