"""Answer-cache lookup latency: exact hits on SQLite and Redis, semantic hits with the real MiniLM embedder.

  exact   = AnswerCache.lookup(semantic=False) for a cached question (normalise, hash, read, JSON-decode);
            anchor: the raw read by primary key on the same backend (sqlite3 SELECT / redis HMGET).
            Goal: p99 ≤ 1 ms on the embedded (SQLite) backend.
  semantic= AnswerCache.lookup(semantic=True) for a paraphrase of a cached question (exact miss, embed the
            question, nearest among --entries cached vectors, guard, read): the embedding dominates;
            anchor: the raw embedder on the same question. Reports p50/p95 and the ratio.
Redis: --redis-url, else a redis-server started here on a free loopback port (skipped if none is installed).

    .venv/bin/python benchmarks/bench_cache.py            # 10,000 entries, 2,000 exact / 300 semantic lookups
    .venv/bin/python benchmarks/bench_cache.py --quick
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, percentile, print_table, set_threads, verdict

set_threads(1)

NAME = "bench_cache"
GOAL_EXACT_P99_MS = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 entries, fewer lookups")
    parser.add_argument("--entries", type=int, default=None, help="cached answers (default 10000; --quick 1000)")
    parser.add_argument("--lookups", type=int, default=None, help="timed exact lookups (default 2000)")
    parser.add_argument("--semantic-lookups", type=int, default=None, help="timed semantic lookups (default 300)")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of starting one")
    args = parser.parse_args()
    args.entries = args.entries or (1000 if args.quick else 10_000)
    args.lookups = args.lookups or (500 if args.quick else 2000)
    args.semantic_lookups = args.semantic_lookups or (100 if args.quick else 300)
    return args


def fill(cache, context: str, count: int, vectors) -> list[str]:
    """`count` cached answers of realistic size (a RAG answer with two citations' worth of JSON)."""
    from adaptlab.cache.entry import CacheEntry, SourceRef
    from adaptlab.cache.keys import exact_key

    questions = [f"What is the recommended dose of drug {i} for adults with condition {i % 97}?" for i in
                 range(count)]
    now = time.time()
    for i, question in enumerate(questions):
        cache.backend.put(CacheEntry(
            key=exact_key(context, question), context=context, question=question,
            answer={"text": "The recommended dose is 5 mg twice daily [1]. " * 4, "refused": False, "model": "m",
                    "usage": [600, 80], "citations": [], "retrieved": [], "search_results": []},
            created_at=now, expires_at=now + 86400, sources=(SourceRef(f"hash{i % 50}", f"/docs/{i % 50}.txt"),),
            embedding=None if vectors is None else vectors[i], prompt_tokens=600, completion_tokens=80))
    return questions


def time_calls(call, items) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


def exact_rows(label: str, cache, raw_read, context: str, questions: list[str], lookups: int) -> list:
    import random

    from adaptlab.cache.keys import exact_key

    rng = random.Random(0)
    picks = [rng.choice(questions) for _ in range(lookups)]
    for question in picks[:100]:  # warm caches (page cache, connection)
        cache.lookup(context, question, semantic=False, threshold=1, guard=False)
    measured = time_calls(lambda q: cache.lookup(context, q, semantic=False, threshold=1, guard=False), picks)
    anchor = time_calls(lambda q: raw_read(exact_key(context, q)), picks)
    assert all(cache.lookup(context, q, semantic=False, threshold=1, guard=False).status == "exact"
               for q in picks[:50])
    return [label, percentile(measured, 50), percentile(measured, 99), percentile(anchor, 50),
            percentile(anchor, 99), percentile(measured, 99) / max(percentile(anchor, 99), 1e-9)]


def start_redis(folder: Path):
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return server, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    args = parse_args()
    from adaptlab.cache.answer_cache import AnswerCache
    from adaptlab.cache.redis_backend import RedisCacheBackend
    from adaptlab.cache.sqlite_backend import SqliteCacheBackend
    from adaptlab.embed.minilm import MiniLMEmbedder

    folder = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    context = "bench-context"
    rows = []

    sqlite_cache = AnswerCache(SqliteCacheBackend(folder / "cache.db"))
    questions = fill(sqlite_cache, context, args.entries, None)
    raw = sqlite_cache.backend._conn  # the anchor reads through the very same connection
    rows.append(exact_rows("sqlite exact", sqlite_cache, lambda key: raw.execute(
        "SELECT * FROM entries WHERE key = ?", (key,)).fetchone(), context, questions, args.lookups))

    server, url = (None, args.redis_url) if args.redis_url else start_redis(folder)
    if url:
        prefix = f"bench:{uuid.uuid4().hex}:"
        redis_cache = AnswerCache(RedisCacheBackend(url, prefix))
        fill(redis_cache, context, args.entries, None)
        client = redis_cache.backend._redis
        rows.append(exact_rows("redis exact", redis_cache, lambda key: client.hgetall(prefix + "e:" + key),
                               context, questions, args.lookups))
        redis_cache.clear()
    if server is not None:
        server.terminate()

    embedder = MiniLMEmbedder()
    semantic_cache = AnswerCache(SqliteCacheBackend(folder / "semantic.db"), embedder=embedder)
    cached_questions = [f"What is the recommended dose of drug {i} for adults with condition {i % 97}?"
                        for i in range(args.entries)]
    vectors = embedder.embed(cached_questions)
    fill(semantic_cache, "semantic", args.entries, vectors)
    paraphrases = [f"For adults with condition {i % 97}, what dose of drug {i} is recommended"
                   for i in range(args.semantic_lookups)]
    semantic_cache.lookup("semantic", paraphrases[0], semantic=True, threshold=0.8, guard=True)  # load index
    statuses = []
    measured = time_calls(lambda q: statuses.append(semantic_cache.lookup(
        "semantic", q, semantic=True, threshold=0.8, guard=True).status), paraphrases)
    anchor = time_calls(lambda q: embedder.embed([q]), paraphrases)
    hit_rate = statuses.count("semantic") / len(statuses)
    rows.append([f"sqlite semantic ({args.entries:,} vectors)", percentile(measured, 50), percentile(measured, 95),
                 percentile(anchor, 50), percentile(anchor, 95),
                 percentile(measured, 95) / max(percentile(anchor, 95), 1e-9)])

    print(f"\n{args.entries:,} cached entries; exact: {args.lookups:,} lookups; semantic: "
          f"{args.semantic_lookups} paraphrase lookups (hit rate {hit_rate:.0%}); 1 thread\n")
    print_table(["lookup", "p50 ms", "p99/p95 ms", "anchor p50 ms", "anchor p99/p95 ms", "ratio"], rows)
    print("\nexact rows: p99, anchor = raw read by key; semantic row: p95, anchor = raw MiniLM embed")
    sqlite_p99 = rows[0][2]
    ok = sqlite_p99 <= GOAL_EXACT_P99_MS
    print(f"{verdict(ok)}: SQLite exact lookup p99 {sqlite_p99:.3f} ms (goal ≤ {GOAL_EXACT_P99_MS} ms)")
    finish(NAME, {
        "entries": args.entries, "goal_exact_p99_ms": GOAL_EXACT_P99_MS, "pass": ok,
        "semantic_hit_rate": hit_rate,
        "rows": [dict(zip(["lookup", "p50_ms", "tail_ms", "anchor_p50_ms", "anchor_tail_ms", "ratio"], r))
                 for r in rows],
    })
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
