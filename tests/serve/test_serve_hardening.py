"""The server as an attacker tries it (issue 21's hardening): huge and slow requests, too many connections and a
forged X-Forwarded-For against the real uvicorn server on 127.0.0.1 (started here with the same configuration as
`adaptlab serve`, on the fake generator); authentication before parsing, failed-auth and fair-share limits,
hung-up clients, context overflow, citation paths, error params, embeddings usage and private SQLite files in
process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from test_serve_app import KEY, GatedGenerator, _error, ask, ask_about_solar_panels, client, make_app, run

from adaptlab.config import GeneratorConfig
from adaptlab.errors import ContextLengthError
from adaptlab.models.llama_cpp import LlamaCppGenerator
from adaptlab.serve.api_errors import openai_param
from adaptlab.serve.guard import server_config
from adaptlab.serve.schemas import ChatCompletionRequest
from adaptlab.serve.security import hash_key
from adaptlab.testing.fakes import FakeGenerator

# ------------------------------------------------------------------------------ a real server on 127.0.0.1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def real_server(tmp_path, **serve) -> Iterator[int]:
    """create_app behind uvicorn with `adaptlab serve`'s own configuration (serve.guard.server_config), in a
    thread; yields the port."""
    port = _free_port()
    app = make_app(tmp_path, serve={"port": port, **serve})
    server = uvicorn.Server(server_config(app, app.state.adaptlab.settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed (s); fails if it is still
    open after `within_s`."""
    started = time.monotonic()
    sock.settimeout(0.1)
    received = b""
    while time.monotonic() - started < within_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received, time.monotonic() - started
        if not chunk:
            return received, time.monotonic() - started
        received += chunk
    pytest.fail(f"the connection is still open after {within_s} s (received {received[:200]!r})")


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_huge_header_gets_431_and_the_connection_is_closed(tmp_path):
    with real_server(tmp_path, max_header_bytes=16_384) as port:
        with connect(port) as sock:  # a whole 1 MB header, as sent in one go
            with contextlib.suppress(ConnectionError):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
            response, _ = read_until_closed(sock, 5)
        assert status_of(response) == 431 and b"serve.max_header_bytes" in response
        with connect(port) as sock:  # an unterminated one: the server stops reading after the limit
            sent = 0
            with contextlib.suppress(ConnectionError):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
                while sent < 64_000_000:
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            assert sent < 64_000_000  # the server hung up long before
            read_until_closed(sock, 5)
        # A normal request still gets through.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_slow_headers_and_a_body_never_sent_are_cut_at_the_request_timeout(tmp_path):
    with real_server(tmp_path, request_timeout_s=1.0) as port:
        with connect(port) as sock:  # a header byte at a time
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            sock.settimeout(0.3)
            response = b""
            with contextlib.suppress(ConnectionError):
                while time.monotonic() - started < 5:
                    sock.sendall(b"X")
                    try:
                        response += sock.recv(65536)
                    except TimeoutError:
                        continue
                    if response:
                        break
            assert response and status_of(response) == 408 and b"serve.request_timeout_s" in response
            assert time.monotonic() - started < 3

        with connect(port) as sock:  # a declared body that never comes
            body = json.dumps(ask()).encode()
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            response, closed_after = read_until_closed(sock, 5)
            assert status_of(response) == 408 and closed_after < 3

        with connect(port) as sock:  # a connection that never sends anything
            response, closed_after = read_until_closed(sock, 5)
            assert status_of(response) == 408 and closed_after < 3


def test_the_request_timeout_leaves_kept_alive_connections_and_big_bodies_alone(tmp_path):
    with real_server(tmp_path, request_timeout_s=1.0) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/healthz").status_code == 200
            time.sleep(1.5)  # idle between requests is uvicorn's keep-alive (5 s), not the request timeout
            assert http.get("/healthz").status_code == 200
            texts = ["word " * 200] * 200  # a 200 kB body, over several reads
            response = http.post("/v1/embeddings", json={"model": "adaptlab-embedding", "input": texts})
            assert response.status_code == 200 and len(response.json()["data"]) == 200


def test_connections_beyond_max_connections_get_503_at_once(tmp_path):
    with real_server(tmp_path, max_connections=2, request_timeout_s=30) as port:
        held = [connect(port), connect(port)]
        time.sleep(0.2)
        with connect(port) as third:
            response, closed_after = read_until_closed(third, 5)
        assert status_of(response) == 503 and b"serve.max_connections" in response and closed_after < 1
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path):
    def statuses(port: int) -> list[int]:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            return [http.get("/v1/models", headers={"X-Forwarded-For": f"not-an-ip-{i}" if i % 2 else
                                                    f"10.0.0.{i}"}).status_code for i in range(30)]

    with real_server(tmp_path / "direct", rate_limit="10/minute") as port:
        assert statuses(port) == [200] * 10 + [429] * 20
        limited = httpx.get(f"http://127.0.0.1:{port}/v1/models")
        assert "for this client address" in _error(limited)["message"]
    # Behind a configured proxy (here: loopback), each forwarded client has its own limit.
    with real_server(tmp_path / "proxied", rate_limit="10/minute", trusted_proxies=["127.0.0.0/8"]) as port:
        assert statuses(port) == [200] * 30


def test_trusted_proxies_must_be_addresses(tmp_path):
    from adaptlab.config import AdaptlabConfig

    with pytest.raises(ValueError, match=r"trusted_proxies\[1\] = 'proxy.local'.*CIDR"):
        AdaptlabConfig.model_validate({"serve": {"trusted_proxies": ["10.0.0.0/8", "proxy.local"]}})


# ------------------------------------------------------------------------------------ in process (ASGI)


def test_keys_are_checked_before_the_body_is_parsed(tmp_path):
    app = make_app(tmp_path, serve={"api_key_hashes": [hash_key(KEY)]})

    async def go():
        async with client(app) as http:
            return await http.post("/v1/chat/completions", content=b"{bad",
                                   headers={"content-type": "application/json"})

    response = run(go())
    assert response.status_code == 401 and _error(response)["code"] == "invalid_api_key"


def test_failed_authentications_are_limited_per_address(tmp_path):
    app = make_app(tmp_path, serve={"api_key_hashes": [hash_key(KEY)]})  # the default: 20/minute

    def at(address: str, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 5000)),
                                 base_url="http://test", headers={"Authorization": f"Bearer {key}"})

    async def go():
        async with at("10.0.0.1", "guess") as guesser, at("10.0.0.1", KEY) as neighbour, \
                at("10.0.0.2", KEY) as other:
            guesses = [(await guesser.get("/v1/models")).status_code for _ in range(80)]
            return guesses, await neighbour.get("/v1/models"), await other.get("/v1/models")

    guesses, neighbour, other = run(go())
    assert guesses == [401] * 20 + [429] * 60
    # While the address is blocked even the right key is refused (so a right guess cannot be told apart).
    assert neighbour.status_code == 429 and _error(neighbour)["code"] == "too_many_auth_failures"
    assert int(neighbour.headers["retry-after"]) >= 1 and "serve.auth_failure_limit" in _error(neighbour)["message"]
    assert other.status_code == 200


def test_one_caller_gets_a_fair_share_of_the_generation_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTLAB_API_KEYS", "key-a,key-b")
    generator = GatedGenerator()
    app = make_app(tmp_path, generator=generator, serve={"max_queue": 4})  # share: 1 worker + 4 // 2 = 3

    async def go():
        async with client(app, Authorization="Bearer key-a") as a, client(app, Authorization="Bearer key-b") as b:
            mine = [asyncio.create_task(a.post("/v1/chat/completions", json=ask(f"question {i}")))
                    for i in range(3)]
            await asyncio.to_thread(generator.started.wait, 10)
            await asyncio.sleep(0.05)
            over = await a.post("/v1/chat/completions", json=ask("question 3"))
            theirs = asyncio.create_task(b.post("/v1/chat/completions", json=ask("question b")))
            await asyncio.sleep(0.05)
            queued = app.state.adaptlab.answering.generation.depth
            generator.gate.set()
            return over, queued, [await t for t in mine], await theirs

    over, queued, mine, theirs = run(go())
    assert over.status_code == 429 and _error(over)["code"] == "queue_full"
    assert "serve.max_queue_per_caller" in _error(over)["message"]
    assert queued == 4  # three of a's and b's, though the lane (5) still had room for a's fourth
    assert [r.status_code for r in mine] == [200, 200, 200] and theirs.status_code == 200


def test_a_request_whose_client_hung_up_is_not_generated(tmp_path):
    generator = GatedGenerator()
    app = make_app(tmp_path, generator=generator)

    async def call(question: str, hang_up: asyncio.Event | None) -> int:
        """One request straight through ASGI; after its body, receive() reports a disconnect once `hang_up`
        is set (as uvicorn does when the socket closes)."""
        body = json.dumps(ask(question)).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000), "server": ("test", 80),
                 "headers": [(b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        sent_body = False
        done = asyncio.Event()
        status = 0

        async def receive():
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            waits = [asyncio.ensure_future(done.wait())]
            if hang_up is not None:
                waits.append(asyncio.ensure_future(hang_up.wait()))
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            return {"type": "http.disconnect"}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body"):
                done.set()

        await app(scope, receive, send)
        return status

    async def go():
        hang_up = asyncio.Event()
        running = asyncio.create_task(call("the running one", None))
        await asyncio.to_thread(generator.started.wait, 10)
        waiting = asyncio.create_task(call("the abandoned one", hang_up))
        await asyncio.sleep(0.05)
        hang_up.set()
        abandoned = await asyncio.wait_for(waiting, 5)  # answered at once, while the first still runs
        depth = app.state.adaptlab.answering.generation.depth
        generator.gate.set()
        return await running, abandoned, depth

    running, abandoned, depth = run(go())
    assert running == 200 and abandoned == 499 and depth == 1
    asked = [call[-1]["content"] for call in generator.calls]
    assert any("the running one" in text for text in asked)
    assert not any("the abandoned one" in text for text in asked)


class OverflowGenerator(FakeGenerator):
    def chat(self, messages, **options):
        raise ContextLengthError("Requested tokens (6036) exceed context window of 2048",
                                 "shorten the prompt or raise generator.n_ctx")


def test_a_prompt_over_the_context_window_is_a_400(tmp_path):
    async def go():
        async with client(make_app(tmp_path, generator=OverflowGenerator())) as http:
            return await http.post("/v1/chat/completions", json=ask(model="adaptlab-prompt"))

    response = run(go())
    error = _error(response)
    assert response.status_code == 400 and error["code"] == "context_length_exceeded"
    assert "exceed context window of 2048" in error["message"] and error["param"] == "messages"


def test_llama_cpp_reports_context_overflow_as_its_own_error():
    class OverfullLlama:
        def create_chat_completion(self, **_):
            raise ValueError("Requested tokens (6036) exceed context window of 2048")

    generator = LlamaCppGenerator.__new__(LlamaCppGenerator)  # the model itself is not needed
    generator._config = GeneratorConfig()
    generator._llm = OverfullLlama()
    with pytest.raises(ContextLengthError, match="exceed context window.*generator.n_ctx") as info:
        generator.chat([{"role": "user", "content": "x"}])
    assert info.value.detail == "Requested tokens (6036) exceed context window of 2048"


@pytest.mark.parametrize(("setting", "expected"), [
    (None, "docs/solar.txt"), ("absolute", "ABSOLUTE"), ("name", "solar.txt")])
def test_citations_show_paths_relative_to_the_project(tmp_path, setting, expected):
    (tmp_path / "adaptlab.toml").write_text("", encoding="utf-8")
    response = ask_about_solar_panels(tmp_path, serve={"citation_paths": setting} if setting else {},
                                      source_path=str(tmp_path / "adaptlab.toml"))
    citation = response.json()["adaptlab"]["citations"][0]
    absolute = str((tmp_path / "docs" / "solar.txt").resolve())
    assert citation["path"] == (absolute if expected == "ABSOLUTE" else expected)


def test_validation_errors_name_the_field_as_openai_does(tmp_path):
    async def go():
        async with client(make_app(tmp_path)) as http:
            post = http.post
            return [_error(await post("/v1/chat/completions", json=body))["param"] for body in (
                {"model": "adaptlab-prompt", "messages": [{"role": "user", "content": "  "}]},
                {"model": "adaptlab-prompt", "messages": [{"role": "system", "content": "x"},
                                                           {"role": "user", "content": [{"type": "text",
                                                                                         "text": " "}]}]},
                {"model": "adaptlab-prompt", "messages": [{"role": "user", "content": "q"}], "stop": 3},
                {"messages": [{"role": "user", "content": "q"}]},
            )] + [_error(await post("/v1/chat/completions", content=b"{bad",
                                    headers={"content-type": "application/json"}))["param"]]

    assert run(go()) == ["messages[0].content", "messages[1].content", "stop", "model", None]
    # Deeper: the text of a content part (pydantic: the tag, then the union member it tried).
    assert openai_param(("messages", 1, "user", "content", "list[TextPart]", 0, "text"),
                        ChatCompletionRequest) == "messages[1].content[0].text"


def test_embeddings_usage_counts_only_what_the_model_reads(tmp_path):
    async def go():
        async with client(make_app(tmp_path)) as http:
            return (await http.post("/v1/embeddings", json={"model": "adaptlab-embedding",
                                                            "input": ["word " * 300, "two words"]})).json()

    body = run(go())
    assert body["usage"]["prompt_tokens"] == 256 + 2  # the hash embedder reads 256 tokens, like MiniLM


def test_head_healthz(tmp_path):
    async def go():
        async with client(make_app(tmp_path)) as http:
            return await http.head("/healthz")

    response = run(go())
    assert response.status_code == 200 and response.content == b""


def test_answer_cache_and_call_log_are_private_files(tmp_path):
    previous = os.umask(0o022)  # the usual umask, which makes files 0644
    try:
        async def go():
            async with client(make_app(tmp_path)) as http:
                assert (await http.post("/v1/chat/completions", json=ask())).status_code == 200

        run(go())
    finally:
        os.umask(previous)
    home = tmp_path / "home"
    files = [path for path in home.iterdir() if path.name.startswith(("cache.db", "logs.db"))]
    assert {path.name for path in files} >= {"cache.db", "cache.db-wal", "cache.db-shm", "logs.db", "logs.db-wal",
                                             "logs.db-shm"}
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files} == \
        {path.name: "0o600" for path in files}
