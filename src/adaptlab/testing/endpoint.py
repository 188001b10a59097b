"""A small OpenAI-compatible chat endpoint on 127.0.0.1 for tests and benchmarks: real HTTP over TCP, a fixed
latency per answer, answers that depend only on the request (so any concurrency gives the same answers), and
fault injection — a share of requests answered 429 (with Retry-After), 500, or held past the client's timeout.

    with FlakyEndpoint(latency_s=0.5, faults=Faults(rate_limited=0.1)) as endpoint:
        config.generator.base_url = endpoint.base_url
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Faults:
    """Shares of requests (0..1) that fail, chosen by request number so a run is reproducible: each retry is a
    new request, so a retried request eventually gets through."""

    rate_limited: float = 0.0  # answered 429 with Retry-After
    server_error: float = 0.0  # answered 500
    stalled: float = 0.0  # held for `stall_s` (past the client's timeout), then dropped
    retry_after_s: float = 0.05
    stall_s: float = 3.0


@dataclass
class EndpointStats:
    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    stalled: int = 0
    answered: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def reply_for(messages: list[dict[str, Any]]) -> str:
    """The answer to a conversation: its last user message echoed with a digest of the whole request."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:8]
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"{' '.join(str(last).split()[:12])} [{digest}]"


def _is_nth(number: int, share: float, offset: int) -> bool:
    """True for about `share` of request numbers, spread evenly (not bunched at the start)."""
    if share <= 0:
        return False
    period = max(1, round(1 / share))
    return (number + offset) % period == 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        stats, faults = self.server.stats, self.server.faults
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with stats.lock:
            stats.requests += 1
            number = stats.requests
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if _is_nth(number, faults.rate_limited, 0):
                with stats.lock:
                    stats.rate_limited += 1
                self._send(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}},
                           {"Retry-After": f"{faults.retry_after_s:g}"})
                return
            if _is_nth(number, faults.server_error, 1):
                with stats.lock:
                    stats.server_errors += 1
                self._send(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
                return
            if _is_nth(number, faults.stalled, 2):
                with stats.lock:
                    stats.stalled += 1
                time.sleep(faults.stall_s)
                self.close_connection = True
                return
            time.sleep(self.server.latency_s)
            messages = body.get("messages") or []
            text = (self.server.responder or (lambda m, _: reply_for(m)))(messages, body)
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
            with stats.lock:
                stats.answered += 1
            if body.get("stream"):
                self._stream(number, body, text, prompt_tokens)
                return
            self._send(200, {
                "id": f"chatcmpl-{number}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or "flaky", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())}})
        finally:
            with stats.lock:
                stats.in_flight -= 1


    def _stream(self, number: int, body: dict[str, Any], text: str, prompt_tokens: int) -> None:
        """The reply as OpenAI's server-sent events: one chunk per word, the usage chunk when asked, [DONE]."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")  # the end of the stream is the end of the connection
        self.end_headers()
        self.close_connection = True
        base = {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model") or "flaky"}

        def event(payload: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps({**base, **payload}).encode() + b"\n\n")
            self.wfile.flush()

        event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for position, word in enumerate(text.split(" ")):
            piece = word if position == 0 else " " + word
            event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            completion_tokens = len(text.split())
            event({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                            "total_tokens": prompt_tokens + completion_tokens}})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


# (messages, request body) → the reply's text: a scripted model for tests that need particular answers.
Responder = Callable[[list[dict[str, Any]], dict[str, Any]], str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stats: EndpointStats
    faults: Faults
    latency_s: float
    responder: Responder | None


class FlakyEndpoint:
    def __init__(self, *, latency_s: float = 0.0, faults: Faults | None = None,
                 responder: Responder | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stats = EndpointStats()
        self._server.faults = faults or Faults()
        self._server.latency_s = latency_s
        self._server.responder = responder
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def stats(self) -> EndpointStats:
        return self._server.stats

    def __enter__(self) -> FlakyEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
