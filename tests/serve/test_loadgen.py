"""The loopback load generator against a tiny stdlib asyncio HTTP server: counting, framing, reconnects, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from adaptlab.serve.loadgen import LoadRequest, _percentile, format_summary, main, run_load, run_load_sync

SSE_EVENTS = [b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n', b"data: [DONE]\n\n"]
SSE_BODY = b"".join(SSE_EVENTS)
# A chat completion stream as `adaptlab serve` sends it: the role, text after a pause, the end after another.
CHAT_ROLE = b'data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}\n\n'
CHAT_TEXT = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\r\n\r\n'
CHAT_END = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
CHAT_ERROR = b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
FIRST_TOKEN_S, REST_S = 0.03, 0.12


@dataclass
class StubServer:
    """A minimal HTTP/1.1 server on its own event-loop thread; counts connections and requests per path."""

    port: int = 0
    connections: int = 0
    paths: Counter = field(default_factory=Counter)
    auth: Counter = field(default_factory=Counter)
    last_body: bytes = b""

    def reset(self) -> None:
        self.connections = 0
        self.paths.clear()
        self.auth.clear()
        self.last_body = b""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head[:-4].decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.paths[path] += 1
                self.auth[headers.get("authorization", "")] += 1
                self.last_body = body
                if path == "/ok":
                    payload = b'{"ok": true, "echo": "' + body + b'"}'
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Kind: a\r\n"
                                 b"X-Body-Len: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(payload))
                                 + payload)
                elif path == "/head" and method == "HEAD":  # a Content-Length but no body
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
                elif path == "/chunked":
                    out = [(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            b"Transfer-Encoding: chunked\r\nX-Kind: b\r\n\r\n")]
                    for i, event in enumerate(SSE_EVENTS):
                        ext = b";ext=1" if i == 0 else b""  # a chunk extension, which must be ignored
                        out.append(b"%x%s\r\n%s\r\n" % (len(event), ext, event))
                    out.append(b"0\r\nX-Trailer: t\r\n\r\n")
                    for part in out:  # in separate writes so the client sees partial chunks
                        writer.write(part)
                        await writer.drain()
                elif path.startswith("/chat"):  # an event stream in timed pieces, cut mid-event
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                    pieces = [CHAT_ROLE, CHAT_TEXT[:20], CHAT_TEXT[20:-1], CHAT_TEXT[-1:]]
                    delays = [0.0, FIRST_TOKEN_S, 0.0, 0.0]
                    if path == "/chat":
                        pieces, delays = pieces + [CHAT_END], delays + [REST_S]
                    elif path == "/chat-error":  # fails after the first piece, as OpenAI does: no [DONE]
                        pieces, delays = pieces + [CHAT_ERROR], delays + [0.0]
                    for piece, delay in zip(pieces, delays):  # path "/chat-cut": ends without [DONE]
                        await asyncio.sleep(delay)
                        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        await writer.drain()
                    writer.write(b"0\r\n\r\n")
                elif path == "/fail":
                    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom")
                elif path == "/close":
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
                    return
                elif path == "/close-eof":  # no framing at all: the body ends at EOF
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
                    await writer.drain()
                    return
                elif path == "/garbage":
                    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                elif path == "/hang":
                    await asyncio.sleep(3600)
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture(scope="module")
def server() -> Iterator[StubServer]:
    state = StubServer()
    ready = threading.Event()
    holder: dict = {}

    async def serve() -> None:
        tasks: set[asyncio.Task] = set()

        async def tracked(reader, writer):
            task = asyncio.current_task()
            tasks.add(task)
            try:
                await state.handle(reader, writer)
            finally:
                tasks.discard(task)

        srv = await asyncio.start_server(tracked, "127.0.0.1", 0)
        state.port = srv.sockets[0].getsockname()[1]
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await holder["stop"].wait()
        srv.close()
        for task in list(tasks):  # e.g. the /hang handlers
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    yield state
    holder["loop"].call_soon_threadsafe(holder["stop"].set)
    thread.join(5)


@pytest.fixture
def srv(server: StubServer) -> StubServer:
    server.reset()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keep_alive_counts_headers_and_bodies(srv: StubServer) -> None:
    req = LoadRequest("POST", "/ok", body=b"hello", headers=(("Authorization", "Bearer k"),))
    result = run_load_sync("127.0.0.1", srv.port, [req], total=200, concurrency=8,
                           count_headers=["X-Kind", "x-body-len", "x-absent"], timeout_s=2)
    assert result.requests == 200 and result.errors == 0
    assert result.status_counts == {200: 200}
    assert result.throughput_rps > 0 and result.seconds > 0
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms <= result.max_ms
    assert result.header_counts == {"X-Kind": {"a": 200}, "x-body-len": {"5": 200}, "x-absent": {}}
    assert result.body_bytes == 200 * len(b'{"ok": true, "echo": "hello"}')
    assert srv.connections == 8  # one keep-alive connection per worker, reused
    assert srv.paths == {"/ok": 200} and srv.auth == {"Bearer k": 200}
    assert result.transport_errors == {}
    assert json.loads(json.dumps(result.as_dict()))["requests"] == 200


def test_chunked_event_stream_bodies(srv: StubServer) -> None:
    result = run_load_sync("127.0.0.1", srv.port, [LoadRequest("GET", "/chunked")], total=60, concurrency=4,
                           count_headers=["x-kind"], timeout_s=2)
    assert result.requests == 60 and result.errors == 0
    assert result.body_bytes == 60 * len(SSE_BODY)  # de-chunked, extension and trailer skipped
    assert result.header_counts == {"x-kind": {"b": 60}}
    assert srv.connections == 4  # the chunked framing left every connection usable


def test_streaming_clients_measure_time_to_first_token(srv: StubServer) -> None:
    result = run_load_sync("127.0.0.1", srv.port, [LoadRequest("POST", "/chat", b'{"stream": true}')], total=8,
                           concurrency=4, timeout_s=5, stream=True)
    assert result.stream and result.requests == 8 and result.errors == 0 and result.streams == 8
    assert result.stream_errors == {}
    # The first token arrives after the role and the pause before the text, well before the stream ends.
    assert FIRST_TOKEN_S * 1000 <= result.ttft_p50_ms <= result.ttft_p95_ms <= result.ttft_max_ms
    assert result.ttft_max_ms < result.p50_ms - REST_S * 1000 / 2
    assert srv.connections == 4  # the streams were read to their end: connections reused
    summary = format_summary(result)
    assert "time to first token ms: p50" in summary and "(8 event streams)" in summary

    plain = run_load_sync("127.0.0.1", srv.port, [LoadRequest("GET", "/ok")], total=2, concurrency=1, timeout_s=2)
    assert not plain.stream and plain.ttft_p50_ms == 0.0 and "first token" not in format_summary(plain)


def test_streaming_errors_are_counted_by_reason(srv: StubServer) -> None:
    requests = [LoadRequest("GET", "/chat-error"), LoadRequest("GET", "/chat-cut"), LoadRequest("GET", "/ok"),
                LoadRequest("GET", "/chunked"), LoadRequest("GET", "/missing"), LoadRequest("GET", "/fail")]
    result = run_load_sync("127.0.0.1", srv.port, requests, total=12, concurrency=3, expect_status=(200, 404),
                           timeout_s=5, stream=True)
    assert result.requests == 12 and result.status_counts == {200: 8, 404: 2, 500: 2}
    # A JSON 200 is no stream; an event stream without text (/chunked) is fine but has no first token; an
    # expected 404 is not read as a stream; the 500s are errors by status only.
    assert result.stream_errors == {"error event": 2, "no [DONE]": 2, "not an event stream": 2}
    assert result.errors == 6 + 2
    assert result.streams == 6  # /chat-error, /chat-cut, /chunked
    assert result.ttft_p50_ms >= FIRST_TOKEN_S * 1000  # the two failed streams did carry text
    assert "stream errors: error event=2 no [DONE]=2 not an event stream=2" in format_summary(result)


def test_round_robin_and_unexpected_statuses(srv: StubServer) -> None:
    requests = [LoadRequest("GET", "/ok"), LoadRequest("GET", "/fail"), LoadRequest("GET", "/chunked"),
                LoadRequest("GET", "/missing")]
    result = run_load_sync("127.0.0.1", srv.port, requests, total=40, concurrency=3,
                           expect_status=(200, 404), count_headers=["x-kind"], timeout_s=2)
    assert result.requests == 40
    assert result.status_counts == {200: 20, 404: 10, 500: 10}
    assert result.errors == 10  # only the 500s; 404 was expected here
    assert result.header_counts == {"x-kind": {"a": 10, "b": 10}}
    assert srv.paths == {"/ok": 10, "/fail": 10, "/chunked": 10, "/missing": 10}


def test_reconnects_after_connection_close(srv: StubServer) -> None:
    requests = [LoadRequest("GET", "/close"), LoadRequest("GET", "/close-eof")]
    result = run_load_sync("127.0.0.1", srv.port, requests, total=30, concurrency=3, timeout_s=2)
    assert result.requests == 30 and result.errors == 0 and result.status_counts == {200: 30}
    assert result.body_bytes == 15 * len(b"ok") + 15 * len(b"until-eof")
    assert srv.connections == 30  # a fresh connection for every request


def test_head_reads_no_body(srv: StubServer) -> None:
    requests = [LoadRequest("HEAD", "/head"), LoadRequest("GET", "/ok")]
    result = run_load_sync("127.0.0.1", srv.port, requests, total=20, concurrency=2, timeout_s=2)
    assert result.requests == 20 and result.errors == 0 and result.status_counts == {200: 20}
    assert srv.connections == 2


def test_malformed_response_and_timeout_are_errors(srv: StubServer) -> None:
    started = time.monotonic()
    result = run_load_sync("127.0.0.1", srv.port, [LoadRequest("GET", "/garbage"), LoadRequest("GET", "/hang")],
                           total=4, concurrency=2, timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert result.requests == 0 and result.errors == 4 and result.status_counts == {}
    assert result.transport_errors == {"_MalformedResponse": 2, "TimeoutError": 2}
    assert result.p50_ms == result.max_ms == 0.0 and result.throughput_rps == 0.0


def test_refused_port_counts_every_request_without_hanging() -> None:
    started = time.monotonic()
    result = run_load_sync("127.0.0.1", free_port(), [LoadRequest("GET", "/")], total=50, concurrency=5,
                           timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert result.errors == 50 and result.requests == 0
    assert result.transport_errors == {"ConnectionRefusedError": 50}


def test_run_load_inside_a_running_loop(srv: StubServer) -> None:
    async def go():
        return await run_load("127.0.0.1", srv.port, [LoadRequest("GET", "/ok")], total=10, concurrency=20)

    result = asyncio.run(go())
    assert result.requests == 10 and srv.connections == 10  # no more workers than requests


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_load_sync("127.0.0.1", 1, [], total=1, concurrency=1)
    with pytest.raises(ValueError):
        run_load_sync("127.0.0.1", 1, [LoadRequest("GET", "/")], total=1, concurrency=0)
    with pytest.raises(ValueError):
        run_load_sync("127.0.0.1", 1, [LoadRequest("GET", "/", headers=(("X", "a\r\nb"),))], total=1,
                      concurrency=1)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 50) == 50.0
    assert _percentile(values, 95) == 95.0
    assert _percentile(values, 99) == 99.0
    assert _percentile(values, 100) == 100.0
    assert _percentile([7.0], 50) == 7.0
    assert _percentile([], 50) == 0.0
    assert _percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_cli_json_and_summary(srv: StubServer, tmp_path, capsys) -> None:
    body = tmp_path / "q.json"
    body.write_bytes(b"abc")
    url = f"http://127.0.0.1:{srv.port}/ok"
    assert main(["--url", url, "--body-file", str(body), "--header", "Authorization: Bearer k",
                 "--total", "20", "--concurrency", "4", "--count-header", "x-body-len", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == 20 and out["errors"] == 0
    assert out["status_counts"] == {"200": 20} and out["header_counts"] == {"x-body-len": {"3": 20}}
    assert srv.auth == {"Bearer k": 20}

    assert main(["--url", url, "--total", "5", "--concurrency", "2", "--count-header", "x-kind"]) == 0
    text = capsys.readouterr().out
    assert "5 responses" in text and "status: 200=5" in text and "x-kind: a=5" in text


def test_cli_stream_sets_stream_in_the_body(srv: StubServer, tmp_path, capsys) -> None:
    body = tmp_path / "q.json"
    body.write_text('{"model": "m", "messages": []}')
    url = f"http://127.0.0.1:{srv.port}/chat"
    assert main(["--url", url, "--body-file", str(body), "--stream", "--total", "4", "--concurrency", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stream"] is True and out["streams"] == 4 and out["errors"] == 0 and out["ttft_p50_ms"] > 0
    assert json.loads(srv.last_body) == {"model": "m", "messages": [], "stream": True}
    body.write_text("[1]")
    with pytest.raises(SystemExit):
        main(["--url", url, "--body-file", str(body), "--stream"])
