"""Eval throughput against an OpenAI-compatible endpoint: answers in flight at once vs one at a time.

  measured = wall time of `evaluate` (the prompt strategy, N cases) with --concurrency C
  anchor   = the same eval with --concurrency 1, in the same run, against the same endpoint

Part 1 is an endpoint with a fixed latency per answer (adaptlab.testing.endpoint: real HTTP on 127.0.0.1, 0.5 s
by default — a hosted model's pace): the speedup should approach C. Part 2 is llama-cpp-python's own server
(`llama_cpp.server`) on the bundled GGUF, which computes one answer at a time on this machine's cores: the ratio
shows what concurrency buys against a local server with one slot (about nothing — the cores are the limit).
Both parts check that the concurrent run gave the same answers and scores as the sequential one.

    .venv/bin/python benchmarks/bench_eval_concurrency.py [--cases 64] [--latency 0.5] [--concurrency 16]
        [--server-cases 8] [--no-server]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, print_table, set_threads, verdict  # noqa: E402

GOAL_SPEEDUP = 12.0


def write_cases(path: Path, n: int) -> Path:
    rows = [{"id": f"c{i:03d}", "question": f"In one sentence, what is fact number {i} about bridges?",
             "answers": [f"fact {i}"]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_eval(base_url: str, model: str, cases: Path, home: Path, concurrency: int):
    from adaptlab.config import AdaptlabConfig, GeneratorConfig
    from adaptlab.embed.hash import HashEmbedder
    from adaptlab.eval.session import EvalRequest, evaluate
    from adaptlab.models.openai_compat import OpenAIGenerator
    from adaptlab.project import Project

    generator_config = GeneratorConfig(backend="openai", base_url=base_url, model=model, timeout_s=300)
    config = AdaptlabConfig(home=str(home), generator=generator_config)
    config.tracking.enabled = False
    project = Project(config, generator=OpenAIGenerator(generator_config), embedder=HashEmbedder(64))
    started = time.perf_counter()
    report = evaluate(project, EvalRequest(["prompt"], cases, out_dir=home / f"out-{concurrency}",
                                           concurrency=concurrency))
    seconds = time.perf_counter() - started
    answers = [(r.case_id, r.answer, {m: v for m, v in r.scores.items() if m != "latency_ms"})
               for r in report.runs[0].results]
    return seconds, answers


def endpoint_part(args: argparse.Namespace, root: Path) -> dict:
    from adaptlab.testing.endpoint import FlakyEndpoint

    cases = write_cases(root / "cases.jsonl", args.cases)
    with FlakyEndpoint(latency_s=args.latency) as endpoint:
        sequential, answers_1 = run_eval(endpoint.base_url, "fixed-latency", cases, root / "seq", 1)
        concurrent, answers_c = run_eval(endpoint.base_url, "fixed-latency", cases, root / "con", args.concurrency)
        in_flight = endpoint.stats.max_in_flight
    speedup = sequential / concurrent
    print(f"Part 1: endpoint with {args.latency:g} s per answer, {args.cases} cases\n")
    print_table(["run", "seconds", "answers/s", "vs anchor"],
                [[f"--concurrency {args.concurrency}", concurrent, args.cases / concurrent, f"{speedup:.2f}x"],
                 ["anchor: --concurrency 1", sequential, args.cases / sequential, "1.00x"]])
    same = answers_1 == answers_c
    print(f"\nmost requests in flight: {in_flight}; identical answers and scores: {same}")
    print(f"{verdict(speedup >= GOAL_SPEEDUP and same)}: speedup ≥ {GOAL_SPEEDUP:.0f}x with identical scores")
    return {"cases": args.cases, "latency_s": args.latency, "concurrency": args.concurrency,
            "sequential_s": round(sequential, 2), "concurrent_s": round(concurrent, 2), "speedup": round(speedup, 2),
            "identical": same, "max_in_flight": in_flight, "goal_met": speedup >= GOAL_SPEEDUP and same}


def server_part(args: argparse.Namespace, root: Path) -> dict:
    from adaptlab.models.registry import default_gguf_path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()),
                                "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads",
                                str(args.threads), "--model_alias", "smollm2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("llama_cpp.server did not start (pip install -e '.[test]')") from None
                time.sleep(0.5)
        cases = write_cases(root / "server-cases.jsonl", args.server_cases)
        sequential, answers_1 = run_eval(base_url, "smollm2", cases, root / "srv-seq", 1)
        concurrent, answers_c = run_eval(base_url, "smollm2", cases, root / "srv-con", 4)
    finally:
        process.terminate()
        process.wait(timeout=30)
    ratio = sequential / concurrent
    print(f"\nPart 2: llama_cpp.server on the bundled GGUF ({args.threads} thread(s)), {args.server_cases} cases\n")
    print_table(["run", "seconds", "vs anchor"], [["--concurrency 4", concurrent, f"{ratio:.2f}x"],
                                                  ["anchor: --concurrency 1", sequential, "1.00x"]])
    print(f"\nidentical answers: {answers_1 == answers_c}")
    return {"cases": args.server_cases, "sequential_s": round(sequential, 2), "concurrent_s": round(concurrent, 2),
            "ratio": round(ratio, 2), "identical": answers_1 == answers_c}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--server-cases", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-server", action="store_true", help="Skip part 2 (llama_cpp.server).")
    args = parser.parse_args()
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result = {"endpoint": endpoint_part(args, root)}
        if not args.no_server:
            result["llama_server"] = server_part(args, root)
    finish("bench_eval_concurrency", {**result, "goal_met": result["endpoint"]["goal_met"]})


if __name__ == "__main__":
    main()
