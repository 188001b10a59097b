"""A small HTTP/1.1 load generator for loopback benchmarks of an HTTP server (stdlib asyncio only).

Python HTTP clients such as httpx top out around a thousand requests a second on one core, so a benchmark
driven by them measures the client rather than the server. This one writes pre-encoded request bytes over
raw asyncio streams with keep-alive connections and parses only what it must (status line, headers, body
framing), which keeps the generator's own cost per request small.

Model: `concurrency` workers, each with its own keep-alive connection, each sending one request and reading
the whole response before the next (no pipelining). Request i uses `requests[i % len(requests)]` until `total`
requests have been sent in all.

Streaming clients (`stream=True`, `--stream`): each response that is an event stream is read as its server-sent
events arrive, to `data: [DONE]`; the time to the first event carrying text (time to first token) is measured,
and a stream that ends without [DONE] or carries an `error` event counts as an error.

    python -m adaptlab.serve.loadgen --url http://127.0.0.1:8000/v1/chat/completions --body-file q.json \\
        --header 'Authorization: Bearer k' --total 10000 --concurrency 50 --count-header x-adaptlab-cache [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["LoadRequest", "LoadResult", "main", "run_load", "run_load_sync"]


@dataclass(frozen=True)
class LoadRequest:
    """One request to send. `Host`, `Content-Length` and `Connection: keep-alive` are added unless given in
    `headers` (names compared case-insensitively)."""

    method: str  # "POST" / "GET"
    path: str  # "/v1/chat/completions"
    body: bytes = b""
    # Extra headers, e.g. (("Authorization", "Bearer k"), ("Content-Type", "application/json")).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LoadResult:
    """What one run measured.

    `requests` counts responses received (any status); a request that failed on a transport error is not in
    it but is in `errors`. Latency percentiles (nearest rank, milliseconds from writing the request to
    reading the last body byte) are over the received responses, and 0.0 when there were none.
    """

    requests: int  # completed requests (any status)
    errors: int  # transport errors (refused/reset, timeouts, malformed responses) + statuses not expected
    status_counts: dict[int, int]
    seconds: float  # wall time of the whole run
    throughput_rps: float  # requests / seconds
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # For each header name in `count_headers` (keyed as the caller spelled it): value -> count, over the
    # responses that carried the header, e.g. {"x-adaptlab-cache": {"hit": 9990, "miss": 10}}.
    header_counts: dict[str, dict[str, int]]
    # Transport errors by exception class name (e.g. {"ConnectionRefusedError": 3}): why `errors` is not 0
    # when the status counts do not explain it.
    transport_errors: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0  # response body bytes read (after de-chunking), summed over all responses
    # Streaming clients only (run_load(stream=True)): time to first token, from writing the request to reading
    # the first event that carries text, nearest rank over the streams that carried text (0.0 when none did);
    # expected 2xx responses that failed as streams, by reason ("no [DONE]", "error event", "not an event
    # stream", "malformed event"), each also counted in `errors`.
    stream: bool = False
    streams: int = 0  # expected-status responses read as event streams
    ttft_p50_ms: float = 0.0
    ttft_p95_ms: float = 0.0
    ttft_max_ms: float = 0.0
    stream_errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# Errors that mean "this request failed, the connection is unusable": count one error and reconnect.
# (TimeoutError and ConnectionError are OSErrors; IncompleteReadError is an EOFError; a readline or readuntil
# past the stream limit raises ValueError or LimitOverrunError; malformed framing raises ValueError.)
_TRANSPORT_ERRORS = (OSError, EOFError, ValueError, asyncio.LimitOverrunError)

_NO_BODY_STATUSES = frozenset({204, 304})


class _MalformedResponse(ValueError):
    pass


@dataclass
class _Tally:
    """Counters shared by the workers (one event loop thread, so no locking)."""

    next_index: int = 0
    errors: int = 0
    body_bytes: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    transport_errors: Counter = field(default_factory=Counter)
    headers: dict[str, Counter] = field(default_factory=dict)
    first_tokens: list[float] = field(default_factory=list)
    streams: int = 0
    stream_errors: Counter = field(default_factory=Counter)


class _EventStream:
    """One response's server-sent events, read as they arrive: when the first piece of text came, whether the
    stream ended with [DONE], and the first problem seen."""

    __slots__ = ("buffer", "done", "first_token", "is_events", "problem")

    def __init__(self) -> None:
        self.buffer = b""
        self.first_token: float | None = None  # perf_counter() when the first event with text was read
        self.done = False
        self.is_events = False  # the response was text/event-stream (set by _read_response)
        self.problem = ""

    def feed(self, data: bytes) -> None:
        # Normalised after joining, so a CRLF split across two reads is still seen as one line end.
        self.buffer = (self.buffer + data).replace(b"\r\n", b"\n")
        while (end := self.buffer.find(b"\n\n")) >= 0:
            event, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._data(line[5:].strip())

    def _data(self, data: bytes) -> None:
        if data == b"[DONE]":
            self.done = True
            return
        # JSON is parsed only until the first text (and for a possible error event): the loop stays cheap.
        if self.first_token is not None and b'"error"' not in data:
            return
        try:
            payload = json.loads(data)
        except ValueError:
            self.problem = self.problem or "malformed event"
            return
        if not isinstance(payload, dict):
            self.problem = self.problem or "malformed event"
        elif "error" in payload:
            self.problem = self.problem or "error event"
        elif self.first_token is None and any(
                isinstance(choice, dict) and isinstance(choice.get("delta"), dict) and choice["delta"].get("content")
                for choice in payload.get("choices") or ()):
            self.first_token = time.perf_counter()


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _encode_request(request: LoadRequest, host_header: str) -> bytes:
    """The request's bytes, built once per LoadRequest so the hot loop only writes them."""
    given = {name.lower() for name, _ in request.headers}
    lines = [f"{request.method} {request.path} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {host_header}")
    # A body-less GET/HEAD carries no Content-Length (some servers reject one); anything else always does.
    if "content-length" not in given and "transfer-encoding" not in given and (
            request.body or request.method.upper() not in ("GET", "HEAD")):
        lines.append(f"Content-Length: {len(request.body)}")
    if "connection" not in given:
        lines.append("Connection: keep-alive")
    for name, value in request.headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def _read_chunked(reader: asyncio.StreamReader, events: _EventStream | None = None) -> int:
    """Read a chunked body (including the trailer section); return its de-chunked length. `events` is fed each
    chunk as it arrives."""
    size_total = 0
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        size = int(line.split(b";", 1)[0].strip(), 16)  # chunk extensions after ';' are ignored
        if size < 0:
            raise _MalformedResponse("negative chunk size")
        if size == 0:
            while True:  # trailer fields, then the empty line that ends the message
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    raise asyncio.IncompleteReadError(line, None)
                if line in (b"\r\n", b"\n"):
                    return size_total
        data = await reader.readexactly(size + 2)
        if not data.endswith(b"\r\n"):
            raise _MalformedResponse("chunk not followed by CRLF")
        if events is not None:
            events.feed(data[:-2])
        size_total += size


async def _read_response(reader: asyncio.StreamReader, is_head: bool,
                         count_headers: Sequence[tuple[str, bytes]], tally: _Tally,
                         events: _EventStream | None = None) -> tuple[int, bool]:
    """Read one whole response; return (status, keep the connection open). With `events`, an event-stream body
    is fed to it as it arrives."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise _MalformedResponse(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        # 1xx interim responses (other than 101) are followed by the real one on the same connection.
        if status < 100 or status > 999:
            raise _MalformedResponse(f"bad status {status}")
        if status >= 200 or status == 101:
            break
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise _MalformedResponse(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()

    connection = headers.get(b"connection", b"").lower()
    if parts[0] == b"HTTP/1.0":
        keep_alive = b"keep-alive" in connection
    else:
        keep_alive = b"close" not in connection

    if events is not None and headers.get(b"content-type", b"").lower().startswith(b"text/event-stream"):
        events.is_events = True
    else:
        events = None
    if is_head or status in _NO_BODY_STATUSES or status < 200:
        body_len = 0
    elif (te := headers.get(b"transfer-encoding")) is not None:
        if te.lower().rsplit(b",", 1)[-1].strip() == b"chunked":
            body_len = await _read_chunked(reader, events)
        else:  # another final coding: the body ends when the server closes
            body_len = await _read_to_eof(reader, events)
            keep_alive = False
    elif (cl := headers.get(b"content-length")) is not None:
        length = int(cl)
        if length < 0:
            raise _MalformedResponse("negative Content-Length")
        if length:
            data = await reader.readexactly(length)
            if events is not None:
                events.feed(data)
        body_len = length
    else:
        # No framing: the body runs to EOF (HTTP/1.1 §6.3), whatever the Connection header says.
        body_len = await _read_to_eof(reader, events)
        keep_alive = False

    tally.body_bytes += body_len
    for counted_name, key in count_headers:
        counted_value = headers.get(key)
        if counted_value is not None:
            tally.headers[counted_name][counted_value.decode("latin-1")] += 1
    return status, keep_alive


async def _read_to_eof(reader: asyncio.StreamReader, events: _EventStream | None) -> int:
    if events is None:
        return len(await reader.read())
    size = 0
    while data := await reader.read(65536):  # piece by piece, so the first event's time is its arrival
        events.feed(data)
        size += len(data)
    return size


def _check_stream(events: _EventStream, start: float, tally: _Tally) -> None:
    """Count one expected-status response of a streaming run: its time to first token, or why it failed."""
    if not events.is_events:
        problem = "not an event stream"
    else:
        tally.streams += 1
        problem = events.problem or ("" if events.done else "no [DONE]")
        if events.first_token is not None:
            tally.first_tokens.append(events.first_token - start)
    if problem:
        tally.errors += 1
        tally.stream_errors[problem] += 1


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def _worker(host: str, port: int, encoded: Sequence[tuple[bytes, bool]], total: int,
                  expect_status: Collection[int], count_headers: Sequence[tuple[str, bytes]], timeout_s: float,
                  tally: _Tally, stream: bool = False) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    n = len(encoded)
    perf = time.perf_counter
    latencies = tally.latencies
    try:
        while tally.next_index < total:
            index = tally.next_index
            tally.next_index += 1
            data, is_head = encoded[index % n]
            events = _EventStream() if stream else None
            try:
                # One deadline for connect + write + read, so a silent server cannot hang the run.
                async with asyncio.timeout(timeout_s):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    start = perf()
                    writer.write(data)
                    await writer.drain()
                    status, keep_alive = await _read_response(reader, is_head, count_headers, tally, events)
                    latencies.append(perf() - start)
            except _TRANSPORT_ERRORS as exc:
                # The connection is in an unknown state (half-read response, reset, ...): drop it and
                # reconnect for the next request. A refused connect lands here too, once per request.
                tally.errors += 1
                tally.transport_errors[type(exc).__name__] += 1
                await _close(writer)
                reader = writer = None
                continue
            tally.statuses[status] += 1
            if status not in expect_status:
                tally.errors += 1
            elif events is not None and 200 <= status < 300:  # an expected refusal (429) carries no stream
                _check_stream(events, start, tally)
            if not keep_alive:  # the server said Connection: close (or sent an EOF-delimited body)
                await _close(writer)
                reader = writer = None
    finally:
        await _close(writer)


async def run_load(host: str, port: int, requests: Sequence[LoadRequest], *, total: int, concurrency: int,
                   expect_status: Collection[int] = (200,), count_headers: Sequence[str] = (),
                   timeout_s: float = 30.0, stream: bool = False) -> LoadResult:
    """Send `total` requests to host:port from `concurrency` keep-alive connections and measure them.

    Request i is `requests[i % len(requests)]`. A request that fails on a transport error (refused, reset,
    timeout after `timeout_s` seconds for connect + send + receive, malformed response) counts as one error
    and its worker reconnects for the next one; a response whose status is not in `expect_status` counts in
    `status_counts` and in `errors`. `count_headers` names response headers (case-insensitive) whose values
    are tallied in `header_counts`.

    stream: read each expected 2xx response as server-sent events (the requests must ask for a stream, e.g.
    `"stream": true` in a chat completion's body): time to first token, and one that is not an event stream,
    ends without `data: [DONE]` or carries an error event counts as an error.
    """
    if not requests:
        raise ValueError("requests must not be empty")
    if total < 0:
        raise ValueError("total must be >= 0")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    host_header = _host_header(host, port)
    encoded = [(_encode_request(r, host_header), r.method.upper() == "HEAD") for r in requests]
    expected = frozenset(expect_status)
    counted = [(name, name.strip().lower().encode("latin-1")) for name in count_headers]
    tally = _Tally(headers={name: Counter() for name, _ in counted})

    workers = min(concurrency, total)
    start = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, encoded, total, expected, counted, timeout_s, tally, stream)
                           for _ in range(workers)))
    seconds = time.perf_counter() - start

    latencies = sorted(tally.latencies)
    first_tokens = sorted(tally.first_tokens)
    completed = len(latencies)
    return LoadResult(
        requests=completed,
        errors=tally.errors,
        status_counts=dict(sorted(tally.statuses.items())),
        seconds=seconds,
        throughput_rps=completed / seconds if seconds > 0 else 0.0,
        p50_ms=_percentile(latencies, 50) * 1000.0,
        p95_ms=_percentile(latencies, 95) * 1000.0,
        p99_ms=_percentile(latencies, 99) * 1000.0,
        max_ms=(latencies[-1] * 1000.0) if latencies else 0.0,
        header_counts={name: dict(counter.most_common()) for name, counter in tally.headers.items()},
        transport_errors=dict(tally.transport_errors.most_common()),
        body_bytes=tally.body_bytes,
        stream=stream,
        streams=tally.streams,
        ttft_p50_ms=_percentile(first_tokens, 50) * 1000.0,
        ttft_p95_ms=_percentile(first_tokens, 95) * 1000.0,
        ttft_max_ms=(first_tokens[-1] * 1000.0) if first_tokens else 0.0,
        stream_errors=dict(sorted(tally.stream_errors.items())),
    )


def run_load_sync(host: str, port: int, requests: Sequence[LoadRequest], *, total: int, concurrency: int,
                  expect_status: Collection[int] = (200,), count_headers: Sequence[str] = (),
                  timeout_s: float = 30.0, stream: bool = False) -> LoadResult:
    """`run_load` in a fresh event loop (not callable from inside a running loop)."""
    return asyncio.run(run_load(host, port, requests, total=total, concurrency=concurrency,
                                expect_status=expect_status, count_headers=count_headers, timeout_s=timeout_s,
                                stream=stream))


def format_summary(result: LoadResult) -> str:
    """A few human-readable lines about one run."""
    lines = [
        (f"{result.requests} responses in {result.seconds:.2f} s: {result.throughput_rps:,.0f} req/s, "
         f"{result.errors} errors"),
        (f"latency ms: p50 {result.p50_ms:.2f}  p95 {result.p95_ms:.2f}  p99 {result.p99_ms:.2f}  "
         f"max {result.max_ms:.2f}"),
        "status: " + (" ".join(f"{s}={n}" for s, n in result.status_counts.items()) or "-"),
    ]
    if result.stream:
        lines.insert(2, f"time to first token ms: p50 {result.ttft_p50_ms:.2f}  p95 {result.ttft_p95_ms:.2f}  "
                        f"max {result.ttft_max_ms:.2f}  ({result.streams} event streams)")
        if result.stream_errors:
            lines.append("stream errors: " + " ".join(f"{k}={n}" for k, n in result.stream_errors.items()))
    if result.transport_errors:
        lines.append("transport errors: " + " ".join(f"{k}={n}" for k, n in result.transport_errors.items()))
    for name, values in result.header_counts.items():
        lines.append(f"{name}: " + (" ".join(f"{v}={n}" for v, n in values.items()) or "-"))
    return "\n".join(lines)


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adaptlab.serve.loadgen",
        description="HTTP/1.1 keep-alive load generator for loopback benchmarks (plain http only).")
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/v1/chat/completions")
    parser.add_argument("--method", help="default: POST with --body-file, else GET")
    parser.add_argument("--body-file", type=Path, help="request body; Content-Type defaults to application/json")
    parser.add_argument("--header", action="append", default=[], type=_parse_header, metavar="'NAME: VALUE'",
                        help="extra request header (repeatable)")
    parser.add_argument("--total", type=int, default=1000, help="requests to send in all (default 1000)")
    parser.add_argument("--concurrency", type=int, default=10, help="connections/workers (default 10)")
    parser.add_argument("--count-header", action="append", default=[], metavar="NAME",
                        help="tally this response header's values (repeatable)")
    parser.add_argument("--expect-status", action="append", type=int, metavar="CODE",
                        help="statuses that are not errors (repeatable; default 200)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--stream", action="store_true",
                        help="streaming clients: set \"stream\": true in the JSON body and read each response's "
                        "events to [DONE], measuring time to first token")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error("--url must be http://host[:port]/path (no TLS)")
    try:
        port = url.port or 80
    except ValueError as exc:
        parser.error(str(exc))
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    body = args.body_file.read_bytes() if args.body_file else b""
    if args.stream and body:
        try:
            payload = json.loads(body)
        except ValueError:
            parser.error("--stream needs a JSON object as --body-file")
        if not isinstance(payload, dict):
            parser.error("--stream needs a JSON object as --body-file")
        body = json.dumps({**payload, "stream": True}).encode()
    headers = list(args.header)
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    method = (args.method or ("POST" if args.body_file else "GET")).upper()
    request = LoadRequest(method=method, path=path, body=body, headers=tuple(headers))
    try:
        result = run_load_sync(url.hostname, port, [request], total=args.total, concurrency=args.concurrency,
                               expect_status=tuple(args.expect_status or (200,)),
                               count_headers=args.count_header, timeout_s=args.timeout, stream=args.stream)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(result.as_dict(), indent=2) if args.json else format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
