"""Token streaming: time to first token against the whole answer's time, adaptlab's stream against llama.cpp's
own, and the same answers streamed through `adaptlab serve`.

Setup (not timed): a project in a temporary home with generator.max_tokens = --max-tokens (64), the bundled
SmolLM2 GGUF, greedy decoding, and the built-in `prompt` strategy (its own system prompt: "Answer the question in
as few words as possible…"). The questions ask the model to talk at length, so every answer runs to max_tokens;
the completion tokens each answer actually had are reported.

  (a) time to first token (TTFT: from the call to the first piece of text) / the whole answer's time, of
      `strategy.stream(question)` — goal: TTFT ≤ 0.10 × the whole answer's time (ratio of the medians);
  (b) measured = `strategy.stream(question)` read to its final Answer; anchor = the bare llama-cpp-python stream
      `project.generator.llama.create_chat_completion(messages=strategy.messages_for(question), stream=True, ...)`
      with the same Llama instance, messages, max_tokens, temperature, seed and repeat_penalty, read to its end
      (its TTFT: the first chunk with text) — goal: total time ≤ 1.10× (ratio of the medians); TTFT ratio shown;
  (c) `adaptlab serve` in its own process on 127.0.0.1 (same config, strategy `prompt`, an API key), streamed with
      the official openai client (`stream=True`, the request's start to the first chunk with text, and to the
      stream's end) against the in-process `strategy.stream` of (b) on the same questions.

The state of llama.cpp's KV cache decides TTFT (it holds the prompt prefix of the previous request), so each
timed call starts from one of two states, the same for both sides:
  prefix — the previous question's prompt is in the cache, so the common prefix (chat template and system prompt)
           is reused and only the new question is evaluated: what a server answering different questions has.
           Before each in-process call, the previous repetition's question is answered with max_tokens 1 (not
           timed); the server gets the questions in the same order.
  cold   — `Llama.reset()` before each call: the whole prompt is evaluated (a one-shot `adaptlab ask`).
Per repetition the two sides alternate their order; one warm-up round runs first. Medians and p95 over the
repetitions.

    .venv/bin/python benchmarks/bench_stream.py            # 8 repetitions per mode, server included
    .venv/bin/python benchmarks/bench_stream.py --quick    # 3 repetitions
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, percentile, print_table, set_threads, verdict  # noqa: E402

NAME = "bench_stream"
GOAL_TTFT_SHARE = 0.10  # first token within 10 % of the whole answer's time
GOAL_RATIO = 1.10  # adaptlab's stream / llama.cpp's own stream, total time
KEY = "bench-stream-key-0123456789"
QUESTIONS = [
    "Tell me a long story about a dragon who learns to bake bread, with many details.",
    "Write a detailed essay about the history of the bicycle.",
    "Describe, step by step and in detail, how to plant a vegetable garden.",
    "Explain in a long paragraph why the ocean is salty.",
    "Write a long letter to a friend about your summer holiday by the sea.",
    "Describe in detail a busy day in the life of a city bus driver.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repetitions per mode (CI smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per mode (default 8; --quick 3)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads, here and in the server (default 1)")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per answer at most (default 64)")
    parser.add_argument("--no-server", action="store_true", help="skip (c), the `adaptlab serve` comparison")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 8
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"adaptlab serve exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"adaptlab serve did not answer on port {port} within {timeout_s} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-stream-") as tmp:
        return measure(args, Path(tmp))


def measure(args: argparse.Namespace, tmp: Path) -> int:
    from adaptlab.config import AdaptlabConfig
    from adaptlab.project import Project
    from adaptlab.strategies.factory import build_strategy
    from adaptlab.types import Answer, TextDelta

    config = AdaptlabConfig()
    config.home = str(tmp / "home")
    config.runtime.threads = args.threads
    config.generator.max_tokens = args.max_tokens
    project = Project(config)
    strategy = build_strategy(project, "prompt")
    llama = project.generator.llama
    messages_for = strategy.messages_for  # the prompt strategy's own messages (not in the Strategy protocol)
    gen = config.generator
    # Every sampling setting the generator passes, so both sides decode the same tokens.
    sampling: dict[str, Any] = {"max_tokens": args.max_tokens, "temperature": gen.temperature, "seed": gen.seed,
                                "repeat_penalty": gen.repeat_penalty}

    def prepare(mode: str, previous: str) -> None:
        """The KV cache state both sides start from (see the module docstring)."""
        llama.reset()
        if mode == "prefix":
            llama.create_chat_completion(messages=messages_for(previous), **{**sampling, "max_tokens": 1})

    def run_ours(question: str) -> dict[str, Any]:
        first = None
        answer: Answer | None = None
        started = time.perf_counter()
        for event in strategy.stream(question):
            if isinstance(event, TextDelta):
                if first is None:
                    first = time.perf_counter() - started
            else:
                answer = event
        total = time.perf_counter() - started
        assert answer is not None
        return {"ttft_ms": (first if first is not None else total) * 1000, "total_ms": total * 1000,
                "text": answer.text, "tokens": answer.usage.completion_tokens, "finish": answer.finish_reason}

    def run_bare(question: str) -> dict[str, Any]:
        messages = messages_for(question)  # built before the timer: the anchor is llama.cpp's stream alone
        first = None
        pieces: list[str] = []
        started = time.perf_counter()
        for chunk in llama.create_chat_completion(messages=messages, stream=True, **sampling):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                if first is None:
                    first = time.perf_counter() - started
                pieces.append(piece)
        total = time.perf_counter() - started
        return {"ttft_ms": (first if first is not None else total) * 1000, "total_ms": total * 1000,
                "text": "".join(pieces).strip(), "pieces": len(pieces)}

    n = len(QUESTIONS)
    print(f"{NAME}: SmolLM2 ({project.generator.name}), prompt strategy, max_tokens={args.max_tokens}, "
          f"threads={args.threads}, {args.repeats} repetitions per mode (+1 warm-up)", file=sys.stderr)

    # (a) and (b): adaptlab's stream against llama.cpp's own, per KV-cache mode.
    modes: dict[str, list[dict[str, Any]]] = {}
    for mode in ("prefix", "cold"):
        rows = []
        for i in range(-1, args.repeats):  # i = -1: the warm-up round, not kept
            question, previous = QUESTIONS[i % n], QUESTIONS[(i - 1) % n]
            sides: dict[str, dict[str, Any]] = {}
            for side in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
                prepare(mode, previous)
                sides[side] = run_ours(question) if side == "ours" else run_bare(question)
            if i < 0:
                continue
            ours, bare = sides["ours"], sides["bare"]
            rows.append({"question": question, "ours": ours, "bare": bare, "same_text": ours["text"] == bare["text"]})
            print(f"  {mode} #{i + 1}: ours TTFT {ours['ttft_ms']:.0f} / total {ours['total_ms']:.0f} ms "
                  f"({ours['tokens']} tok, {ours['finish']}), bare {bare['ttft_ms']:.0f} / {bare['total_ms']:.0f} ms",
                  file=sys.stderr)
        modes[mode] = rows

    # (c): the same stream through `adaptlab serve` and the openai client.
    server_rows: list[dict[str, Any]] = []
    server_error = ""
    if not args.no_server:
        server_rows, server_error = run_server(args, tmp, run_ours, prepare)

    summary: dict[str, Any] = {}
    table = []
    for mode, rows in modes.items():
        def col(side: str, key: str, rows: list[dict[str, Any]] = rows) -> list[float]:
            return [r[side][key] for r in rows]

        ours_ttft, ours_total = col("ours", "ttft_ms"), col("ours", "total_ms")
        bare_ttft, bare_total = col("bare", "ttft_ms"), col("bare", "total_ms")
        share = percentile(ours_ttft, 50) / percentile(ours_total, 50)
        total_ratio = percentile(ours_total, 50) / percentile(bare_total, 50)
        ttft_ratio = percentile(ours_ttft, 50) / percentile(bare_ttft, 50)
        tokens = sorted(int(r["ours"]["tokens"]) for r in rows)
        summary[mode] = {
            "ours": {"ttft_ms": stats(ours_ttft), "total_ms": stats(ours_total)},
            "bare": {"ttft_ms": stats(bare_ttft), "total_ms": stats(bare_total)},
            "ttft_share": round(share, 4),
            "ttft_share_per_answer": stats([r["ours"]["ttft_ms"] / r["ours"]["total_ms"] for r in rows]),
            "bare_ttft_share": round(percentile(bare_ttft, 50) / percentile(bare_total, 50), 4),
            "total_ratio": round(total_ratio, 4), "ttft_ratio": round(ttft_ratio, 4),
            "completion_tokens": {"min": tokens[0], "median": tokens[len(tokens) // 2], "max": tokens[-1]},
            "same_text": sum(r["same_text"] for r in rows), "answers": len(rows),
            "ttft_verdict": verdict(share <= GOAL_TTFT_SHARE), "overhead_verdict": verdict(total_ratio <= GOAL_RATIO),
        }
        for side, ttft, total in (("adaptlab stream", ours_ttft, ours_total), ("bare llama.cpp", bare_ttft,
                                                                                bare_total)):
            table.append([mode, side, percentile(ttft, 50), percentile(ttft, 95), percentile(total, 50),
                          percentile(total, 95), percentile(ttft, 50) / percentile(total, 50)])

    if server_rows:
        s_ttft = [r["server"]["ttft_ms"] for r in server_rows]
        s_total = [r["server"]["total_ms"] for r in server_rows]
        i_ttft = [r["ours"]["ttft_ms"] for r in server_rows]
        i_total = [r["ours"]["total_ms"] for r in server_rows]
        tokens = sorted(int(r["server"]["tokens"]) for r in server_rows)
        summary["server"] = {
            "server": {"ttft_ms": stats(s_ttft), "total_ms": stats(s_total)},
            "in_process": {"ttft_ms": stats(i_ttft), "total_ms": stats(i_total)},
            "ttft_ratio": round(percentile(s_ttft, 50) / percentile(i_ttft, 50), 4),
            "total_ratio": round(percentile(s_total, 50) / percentile(i_total, 50), 4),
            "ttft_share": round(percentile(s_ttft, 50) / percentile(s_total, 50), 4),
            "ttft_overhead_ms": stats([r["server"]["ttft_ms"] - r["ours"]["ttft_ms"] for r in server_rows]),
            "total_overhead_ms": stats([r["server"]["total_ms"] - r["ours"]["total_ms"] for r in server_rows]),
            "completion_tokens": {"min": tokens[0], "median": tokens[len(tokens) // 2], "max": tokens[-1]},
            "same_text": sum(r["same_text"] for r in server_rows), "answers": len(server_rows),
        }
        for side, ttft, total in (("adaptlab serve + openai client", s_ttft, s_total),
                                  ("in-process stream", i_ttft, i_total)):
            table.append(["server", side, percentile(ttft, 50), percentile(ttft, 95), percentile(total, 50),
                          percentile(total, 95), percentile(ttft, 50) / percentile(total, 50)])

    print()
    print_table(["mode", "stream", "TTFT p50 ms", "TTFT p95 ms", "total p50 ms", "total p95 ms", "TTFT / total"],
                table)
    print()
    for mode in modes:
        m = summary[mode]
        print(f"{mode}: completion tokens {m['completion_tokens']}, same text {m['same_text']}/{m['answers']}; "
              f"TTFT / total = {m['ttft_share']:.3f} (bare llama.cpp {m['bare_ttft_share']:.3f}): goal ≤ "
              f"{GOAL_TTFT_SHARE}: {m['ttft_verdict']}; adaptlab / bare total {m['total_ratio']:.3f}x "
              f"(TTFT {m['ttft_ratio']:.3f}x): goal ≤ {GOAL_RATIO}x: {m['overhead_verdict']}")
    if "server" in summary:
        s = summary["server"]
        print(f"server: completion tokens {s['completion_tokens']}, same text as in process {s['same_text']}/"
              f"{s['answers']}; server / in-process TTFT {s['ttft_ratio']:.3f}x (+{s['ttft_overhead_ms']['p50']:.1f}"
              f" ms p50), total {s['total_ratio']:.3f}x (+{s['total_overhead_ms']['p50']:.1f} ms p50); "
              f"TTFT / total through the server {s['ttft_share']:.3f}")
    elif server_error:
        print(f"server: not measured — {server_error}")

    finish(NAME, {
        "params": {"repeats": args.repeats, "threads": args.threads, **sampling, "quick": args.quick,
                   "questions": QUESTIONS, "model": project.generator.name},
        **summary,
        "server_error": server_error,
        "rows": {mode: [{"question": r["question"], "same_text": r["same_text"],
                         **{f"{side}_{k}": (round(v, 2) if isinstance(v, float) else v)
                            for side in ("ours", "bare") for k, v in r[side].items() if k != "text"}}
                        for r in rows] for mode, rows in modes.items()},
        "server_rows": [{"question": r["question"], "same_text": r["same_text"],
                         **{f"{side}_{k}": (round(v, 2) if isinstance(v, float) else v)
                            for side in ("server", "ours") for k, v in r[side].items() if k != "text"}}
                        for r in server_rows],
        "goal": {"ttft_share_max": GOAL_TTFT_SHARE, "total_ratio_max": GOAL_RATIO},
        "verdict": {mode: {"ttft": summary[mode]["ttft_verdict"], "overhead": summary[mode]["overhead_verdict"]}
                    for mode in modes},
    })
    return 0


def run_server(args: argparse.Namespace, tmp: Path, run_ours, prepare) -> tuple[list[dict[str, Any]], str]:
    """(c): `adaptlab serve` on the same settings, each question streamed through the openai client, interleaved
    with the in-process stream of the same question (prefix mode: the server's cache holds the previous question)."""
    import openai

    port = free_port()
    config_path = tmp / "adaptlab.toml"
    config_path.write_text(textwrap.dedent(f'''
        home = "{tmp / 'home'}"
        [runtime]
        threads = {args.threads}
        [generator]
        max_tokens = {args.max_tokens}
        [serve]
        port = {port}
        strategies = ["prompt"]
    '''), encoding="utf-8")
    log = tmp / "serve.log"
    env = {**os.environ, "ADAPTLAB_API_KEYS": KEY, "HF_HUB_OFFLINE": "1"}
    adaptlab = str(Path(sys.executable).with_name("adaptlab"))
    with open(log, "w", encoding="utf-8") as log_handle:
        server = subprocess.Popen([adaptlab, "serve", "--config", str(config_path)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log_handle)
    try:
        wait_ready(port, server, log)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=300)

        def run_server_stream(question: str) -> dict[str, Any]:
            first = None
            pieces: list[str] = []
            tokens = 0
            started = time.perf_counter()
            stream = client.chat.completions.create(model="adaptlab-prompt", stream=True,
                                                    messages=[{"role": "user", "content": question}])
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if first is None:
                        first = time.perf_counter() - started
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
            total = time.perf_counter() - started
            return {"ttft_ms": (first if first is not None else total) * 1000, "total_ms": total * 1000,
                    "text": "".join(pieces), "tokens": tokens}

        n = len(QUESTIONS)
        rows = []
        for i in range(-1, args.repeats):
            question, previous = QUESTIONS[i % n], QUESTIONS[(i - 1) % n]
            sides: dict[str, dict[str, Any]] = {}
            for side in (("server", "ours") if i % 2 == 0 else ("ours", "server")):
                if side == "server":
                    sides[side] = run_server_stream(question)
                else:
                    prepare("prefix", previous)
                    sides[side] = run_ours(question)
            if i < 0:
                continue
            rows.append({"question": question, **sides, "same_text": sides["server"]["text"] == sides["ours"]["text"]})
            print(f"  server #{i + 1}: serve TTFT {sides['server']['ttft_ms']:.0f} / total "
                  f"{sides['server']['total_ms']:.0f} ms ({sides['server']['tokens']} tok), in process "
                  f"{sides['ours']['ttft_ms']:.0f} / {sides['ours']['total_ms']:.0f} ms", file=sys.stderr)
        return rows, ""
    except (openai.OpenAIError, OSError) as exc:
        return [], f"{type(exc).__name__}: {exc}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
