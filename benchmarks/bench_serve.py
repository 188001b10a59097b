"""Loopback load test of `adaptlab serve`: cache-hit throughput and latency, hits while the generator is busy,
and backpressure under a flood of misses; the hit runs once more with streaming clients (`"stream": true`, each
response's server-sent events read to [DONE], time to first token measured).

Measured: the real `adaptlab serve` process (llama.cpp SmolLM2 + MiniLM, a semantic-cache strategy wrapping
`prompt`, an API key), driven by adaptlab.serve.loadgen (raw HTTP/1.1 keep-alive, so the client is not the
bottleneck). Anchor: the same uvicorn (httptools + uvloop) in its own process serving a bare ASGI function that
returns the very bytes of one real hit (for a streaming request: the events of one real streamed hit, as
text/event-stream) — the floor of HTTP on this machine; ratio = ours / anchor.

    .venv/bin/python benchmarks/bench_serve.py [--quick] [--total N] [--concurrency N] [--questions N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, print_table, verdict  # noqa: E402

NAME = "bench_serve"
GOAL_HIT_RPS = 1000.0
KEY = "bench-key-0123456789"
ANCHOR_APP = textwrap.dedent('''
    import sys, uvicorn
    BODY, EVENTS = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
    HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    EVENT_HEADERS = [(b"content-type", b"text/event-stream"), (b"content-length", str(len(EVENTS)).encode())]
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        request = b""
        while True:
            message = await receive()
            request += message.get("body", b"")
            if not message.get("more_body"):
                break
        stream = b'"stream": true' in request
        await send({"type": "http.response.start", "status": 200, "headers": EVENT_HEADERS if stream else HEADERS})
        await send({"type": "http.response.body", "body": EVENTS if stream else BODY})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
''')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 requests, 5 warmed questions")
    parser.add_argument("--total", type=int, default=10_000, help="requests per hit run")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent keep-alive clients")
    parser.add_argument("--questions", type=int, default=20, help="distinct warmed questions")
    parser.add_argument("--flood", type=int, default=40, help="concurrent distinct misses in the overload run")
    args = parser.parse_args()
    if args.quick:
        args.total, args.questions, args.flood = 2_000, 5, 20
    return args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, path: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"no answer on port {port} after {timeout_s} s")


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def chat_request(question: str, stream: bool = False):
    from adaptlab.serve.loadgen import LoadRequest

    body = json.dumps({"model": "adaptlab-cached", "messages": [{"role": "user", "content": question}],
                       **({"stream": True} if stream else {})}).encode()
    return LoadRequest("POST", "/v1/chat/completions", body,
                       (("Content-Type", "application/json"), ("Authorization", f"Bearer {KEY}")))


def row(name: str, result, anchor=None) -> list:
    ratio = result.throughput_rps / anchor.throughput_rps if anchor else None
    ttft = [result.ttft_p50_ms, result.ttft_p95_ms] if result.stream else ["—", "—"]
    return [name, result.requests, result.errors, round(result.throughput_rps), result.p50_ms, result.p95_ms,
            result.p99_ms, *ttft, ratio if ratio is not None else "—"]


def main() -> None:
    args = parse_args()
    from adaptlab.serve.loadgen import run_load_sync

    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    port, anchor_port = free_port(), free_port()
    (folder / "adaptlab.toml").write_text(textwrap.dedent(f'''
        home = "{folder / 'home'}"
        [strategies.cached]
        kind = "cached"
        wraps = "prompt"
        [serve]
        port = {port}
        strategies = ["cached", "prompt"]
    '''), encoding="utf-8")
    env = {**os.environ, "ADAPTLAB_API_KEYS": KEY, "HF_HUB_OFFLINE": "1"}
    adaptlab = str(Path(sys.executable).with_name("adaptlab"))
    server = subprocess.Popen([adaptlab, "serve", "--config", str(folder / "adaptlab.toml")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    anchor = None
    try:
        wait_ready(port, "/healthz", server)
        questions = [f"What is the capital of country number {i}?" for i in range(args.questions)]
        hits = [chat_request(q) for q in questions]
        started = time.perf_counter()
        warm = run_load_sync("127.0.0.1", port, hits, total=len(hits), concurrency=1, timeout_s=120,
                             count_headers=["x-adaptlab-cache"])
        warm_s = time.perf_counter() - started
        rss_before, _ = rss_mb(server.pid)

        import httpx

        one_hit = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=hits[0].body,
                             headers=dict(hits[0].headers)).content
        (folder / "hit.json").write_bytes(one_hit)
        stream_hits = [chat_request(q, stream=True) for q in questions]
        one_stream = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=stream_hits[0].body,
                                headers=dict(stream_hits[0].headers)).content
        (folder / "hit.events").write_bytes(one_stream)
        anchor = subprocess.Popen([sys.executable, "-c", ANCHOR_APP, str(anchor_port), str(folder / "hit.json"),
                                   str(folder / "hit.events")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(anchor_port, "/", anchor)

        anchor_run = run_load_sync("127.0.0.1", anchor_port, hits, total=args.total, concurrency=args.concurrency)
        hit_run = run_load_sync("127.0.0.1", port, hits, total=args.total, concurrency=args.concurrency,
                                count_headers=["x-adaptlab-cache"])
        # Streaming clients: a hit streams at once (its whole text in one event), read to [DONE].
        anchor_stream = run_load_sync("127.0.0.1", anchor_port, stream_hits, total=args.total,
                                      concurrency=args.concurrency, stream=True)
        stream_run = run_load_sync("127.0.0.1", port, stream_hits, total=args.total, concurrency=args.concurrency,
                                   count_headers=["x-adaptlab-cache"], stream=True)
        rss_after, rss_peak = rss_mb(server.pid)

        # Hits while the generator is busy: a background stream of distinct misses keeps it generating.
        misses = [chat_request(f"Name a famous landmark in city number {i}.") for i in range(8)]
        background: dict = {}
        thread = threading.Thread(target=lambda: background.setdefault("run", run_load_sync(
            "127.0.0.1", port, misses, total=len(misses), concurrency=2, timeout_s=300, expect_status=(200, 429))))
        thread.start()
        time.sleep(1.0)
        busy_run = run_load_sync("127.0.0.1", port, hits, total=max(args.total // 4, 500),
                                 concurrency=args.concurrency, count_headers=["x-adaptlab-cache"])
        busy_stream = run_load_sync("127.0.0.1", port, stream_hits, total=max(args.total // 4, 500),
                                    concurrency=args.concurrency, count_headers=["x-adaptlab-cache"], stream=True)
        busy_still = thread.is_alive()  # the misses were still generating when the streamed run ended
        thread.join()

        # Overload: more distinct misses at once than the generation queue holds.
        flood = [chat_request(f"Describe the history of town number {i} in detail.") for i in range(args.flood)]
        flood_run = run_load_sync("127.0.0.1", port, flood, total=len(flood), concurrency=len(flood),
                                  timeout_s=600, expect_status=(200, 429), count_headers=["retry-after"])
    finally:
        server.terminate()
        if anchor is not None:
            anchor.terminate()
        server.wait(timeout=30)
    stderr = server.stderr.read() if server.stderr else ""

    rows = [row("anchor: bare uvicorn, same bytes", anchor_run),
            row("cache hits", hit_run, anchor_run),
            row("cache hits, generator busy", busy_run, anchor_run),
            row("anchor, streamed: bare uvicorn, same events", anchor_stream),
            row("cache hits, streamed", stream_run, anchor_stream),
            row("cache hits, streamed, generator busy", busy_stream, anchor_stream),
            row(f"flood: {args.flood} distinct misses", flood_run)]
    print(f"\nadaptlab serve on 127.0.0.1, {args.concurrency} keep-alive clients, {args.total:,} requests per hit "
          f"run over {args.questions} warmed questions (warming: {warm_s:.1f} s)\n")
    print_table(["run", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "TTFT p50 ms", "TTFT p95 ms",
                 "ratio vs anchor"], rows)
    hit_counts = hit_run.header_counts.get("x-adaptlab-cache", {})
    refused = flood_run.status_counts.get(429, 0)
    print(f"\nhits answered from the cache: {hit_counts}, streamed: "
          f"{stream_run.header_counts.get('x-adaptlab-cache', {})}; busy-run background misses: "
          f"{background['run'].status_counts if 'run' in background else '—'} (still generating when the streamed "
          f"busy run ended: {'yes' if busy_still else 'no'})")
    for name, result in (("streamed hits", stream_run), ("streamed hits, generator busy", busy_stream)):
        if result.stream_errors or result.transport_errors:
            print(f"{name}: stream errors {result.stream_errors}, transport errors {result.transport_errors}")
    print(f"flood: {flood_run.status_counts} (429s carried Retry-After: "
          f"{sum(flood_run.header_counts.get('retry-after', {}).values())})")
    print(f"server RSS: {rss_before:.0f} MB before the hit run, {rss_after:.0f} MB after, peak {rss_peak:.0f} MB")
    ok_plain = hit_run.errors == 0 and hit_run.throughput_rps >= GOAL_HIT_RPS
    ok_stream = stream_run.errors == 0 and stream_run.throughput_rps >= GOAL_HIT_RPS
    ok = ok_plain and ok_stream
    print(f"{verdict(ok_plain)}: {hit_run.throughput_rps:,.0f} cache hits/s with {hit_run.errors} errors "
          f"(goal ≥ {GOAL_HIT_RPS:,.0f}/s, 0 errors)")
    print(f"{verdict(ok_stream)}: {stream_run.throughput_rps:,.0f} streamed cache hits/s with {stream_run.errors} "
          f"errors, time to first token p50 {stream_run.ttft_p50_ms:.2f} ms / p95 {stream_run.ttft_p95_ms:.2f} ms "
          f"(goal ≥ {GOAL_HIT_RPS:,.0f}/s, 0 errors)")
    if stderr.strip():
        print("server stderr:\n" + stderr[-2000:])
    finish(NAME, {
        "goal_hit_rps": GOAL_HIT_RPS, "pass": ok, "pass_plain": ok_plain, "pass_stream": ok_stream,
        "concurrency": args.concurrency, "total": args.total,
        "anchor": anchor_run.as_dict(), "hits": hit_run.as_dict(), "hits_generator_busy": busy_run.as_dict(),
        "anchor_stream": anchor_stream.as_dict(), "hits_stream": stream_run.as_dict(),
        "hits_stream_generator_busy": busy_stream.as_dict(),
        "flood": flood_run.as_dict(), "flood_refused": refused, "warm": warm.as_dict(),
        "server_rss_mb": {"before": rss_before, "after": rss_after, "peak": rss_peak},
    })


if __name__ == "__main__":
    main()
