"""OpenAIGenerator and OpenAIEmbedder against a real local HTTP server speaking OpenAI's JSON.

The server is the standard library's http.server in a thread on 127.0.0.1 (a free port); the backends use the
real `openai` client, so URL building, headers, JSON parsing, retries and error mapping are all exercised.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from adaptlab.config import EmbedderConfig, GeneratorConfig
from adaptlab.embed.openai_compat import OpenAIEmbedder
from adaptlab.errors import BackendError, ContextLengthError
from adaptlab.models.openai_compat import OpenAIGenerator

DIM = 8
KEY_ENV = "ADAPTLAB_TEST_OPENAI_KEY"
REPLY = "  The answer is 42 [1].  "


@dataclass
class ServerState:
    status: int = 200  # answer every request with this status (200 = normal replies)
    delay_s: float = 0.0
    omit_usage: bool = False
    raw_reply: tuple[str, bytes] | None = None  # (content type, body) sent with 200 instead of a real reply
    error: dict[str, Any] | None = None  # the error body sent with a status other than 200 (default: a bad key)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _vector_for(text: str) -> list[float]:
    """Deterministic, deliberately not normalised (norm > 1) so the client-side normalisation shows."""
    seed = sum(text.encode()) + len(text)
    return [float((seed * (i + 3)) % 17 + 1) for i in range(DIM)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        state.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
        if state.delay_s:
            time.sleep(state.delay_s)
        if state.raw_reply is not None:
            content_type, data = state.raw_reply
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if state.status != 200:
            self._send(state.status, {"error": state.error or {"message": "Incorrect API key provided",
                                                               "type": "invalid_request_error",
                                                               "param": None, "code": "invalid_api_key"}})
            return
        if self.path == "/v1/chat/completions":
            payload: dict[str, Any] = {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": "served-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY},
                             "finish_reason": "stop", "logprobs": None}],
            }
            if not state.omit_usage:
                payload["usage"] = {"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23}
            self._send(200, payload)
        elif self.path == "/v1/embeddings":
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": _vector_for(t)} for i, t in enumerate(texts)]
            data.reverse()  # out of order on purpose: the client must sort by `index`
            tokens = sum(len(t.split()) for t in texts)
            self._send(200, {"object": "list", "data": data, "model": "served-embedder",
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})


@pytest.fixture()
def server() -> Iterator[tuple[str, ServerState]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours *_PROXY variables; the local server must be reached directly.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


def _closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there once the socket is closed


def _gen_config(base_url: str, **overrides: Any) -> GeneratorConfig:
    values: dict[str, Any] = dict(backend="openai", base_url=base_url, model="served-model", api_key_env=KEY_ENV,
                                  timeout_s=5.0, max_tokens=33, temperature=0.0, seed=7)
    values.update(overrides)
    return GeneratorConfig(**values)


def _emb_config(base_url: str, **overrides: Any) -> EmbedderConfig:
    values: dict[str, Any] = dict(backend="openai", base_url=base_url, model="served-embedder", api_key_env=KEY_ENV,
                                  timeout_s=5.0, dimensions=0, batch_size=32)
    values.update(overrides)
    return EmbedderConfig(**values)


# --------------------------------------------------------------------------- generator


def test_generator_returns_text_usage_latency_and_sends_request(server, monkeypatch) -> None:
    base_url, state = server
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    generator = OpenAIGenerator(_gen_config(base_url))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is six times seven?"}]

    generation = generator.chat(messages, stop=["\n\n"])

    assert generation.text == REPLY.strip()
    assert generation.usage.prompt_tokens == 17
    assert generation.usage.completion_tokens == 6
    assert generation.usage.total_tokens == 23
    assert generation.latency_ms > 0
    assert generation.model == "served-model"
    assert generation.finish_reason == "stop"

    assert len(state.requests) == 1
    request = state.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["model"] == "served-model"
    assert body["messages"] == messages
    assert body["max_tokens"] == 33  # config default when the call gives none
    assert body["temperature"] == 0.0
    assert body["seed"] == 7
    assert body["stop"] == ["\n\n"]


def test_generator_call_arguments_override_config(server) -> None:
    base_url, state = server
    generator = OpenAIGenerator(_gen_config(base_url))
    generator.chat([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0.9)
    body = state.requests[0]["body"]
    assert body["max_tokens"] == 5
    assert body["temperature"] == 0.9


def test_generator_without_key_env_sends_placeholder_key(server) -> None:
    base_url, state = server
    OpenAIGenerator(_gen_config(base_url)).chat([{"role": "user", "content": "hi"}])
    assert state.requests[0]["authorization"] == "Bearer not-needed"


def test_generator_estimates_usage_when_server_reports_none(server) -> None:
    base_url, state = server
    state.omit_usage = True
    generator = OpenAIGenerator(_gen_config(base_url))
    messages = [{"role": "user", "content": "x" * 40}]
    generation = generator.chat(messages)
    assert generation.usage.prompt_tokens == 40 // 4 + 4
    assert generation.usage.completion_tokens == len(REPLY) // 4


def test_generator_server_down_names_the_url(monkeypatch) -> None:
    url = _closed_port_url()
    generator = OpenAIGenerator(_gen_config(url, timeout_s=2.0))
    started = time.perf_counter()
    with pytest.raises(BackendError) as info:
        generator.chat([{"role": "user", "content": "hi"}])
    message = str(info.value)
    assert url in message
    assert "generator.base_url" in message
    assert time.perf_counter() - started < 15  # retries are bounded; nothing hangs


def test_generator_401_mentions_the_key_variable(server, monkeypatch) -> None:
    base_url, state = server
    state.status = 401
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with pytest.raises(BackendError) as info:
        OpenAIGenerator(_gen_config(base_url)).chat([{"role": "user", "content": "hi"}])
    message = str(info.value)
    assert "401" in message
    assert f"${KEY_ENV}" in message
    assert base_url in message
    assert len(state.requests) == 1  # 401 is not retried
    assert "sk-wrong" not in message  # the key itself is never echoed


@pytest.mark.parametrize("error", [
    {"message": "This model's maximum context length is 2048 tokens. However, you requested 6036 tokens.",
     "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"},  # OpenAI, vLLM
    {"message": "the request exceeds the available context size, try increasing it", "code": 400,
     "type": "exceed_context_size_error"},  # llama.cpp's llama-server
])
def test_generator_context_overflow_is_its_own_error(server, error) -> None:
    base_url, state = server
    state.status, state.error = 400, error
    with pytest.raises(ContextLengthError, match="context") as info:
        OpenAIGenerator(_gen_config(base_url)).chat([{"role": "user", "content": "hi"}])
    assert base_url in info.value.detail and len(state.requests) == 1  # a 400 is not retried


def test_generator_timeout_is_a_backend_error(server) -> None:
    base_url, state = server
    state.delay_s = 1.0
    generator = OpenAIGenerator(_gen_config(base_url, timeout_s=0.2))
    with pytest.raises(BackendError) as info:
        generator.chat([{"role": "user", "content": "hi"}])
    assert base_url in str(info.value)


BAD_REPLIES = {
    "html page": ("text/html", b"<html><body>Welcome to the dashboard</body></html>"),
    "broken json": ("application/json", b"{not json"),
    "empty json": ("application/json", b"{}"),
    "no choices/data": ("application/json", json.dumps({"object": "list", "choices": [], "data": []}).encode()),
}


@pytest.mark.parametrize("reply", BAD_REPLIES.values(), ids=BAD_REPLIES.keys())
def test_generator_bad_reply_is_a_backend_error(server, reply) -> None:
    # E.g. base_url pointing at a web UI instead of the API: a clear error, not an AttributeError traceback.
    base_url, state = server
    state.raw_reply = reply
    with pytest.raises(BackendError) as info:
        OpenAIGenerator(_gen_config(base_url)).chat([{"role": "user", "content": "hi"}])
    assert base_url in str(info.value)
    assert "generator.base_url" in str(info.value)


# --------------------------------------------------------------------------- embedder


def test_embedder_probes_dimension_once_and_normalises(server, monkeypatch) -> None:
    base_url, state = server
    monkeypatch.setenv(KEY_ENV, "sk-embed")
    embedder = OpenAIEmbedder(_emb_config(base_url, dimensions=0))
    assert embedder.dimension == DIM
    assert len(state.requests) == 1  # the probe
    assert state.requests[0]["path"] == "/v1/embeddings"
    assert state.requests[0]["authorization"] == "Bearer sk-embed"
    assert state.requests[0]["body"]["model"] == "served-embedder"

    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # Rows follow the input order although the server listed them reversed.
    for row, text in zip(vectors, texts):
        expected = np.asarray(_vector_for(text), dtype=np.float32)
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), rtol=1e-5)
    assert len(state.requests) == 2
    assert embedder.usage_tokens == 2 + (2 + 1 + 3)  # probe ("dimension probe") + the three texts


def test_embedder_with_configured_dimension_does_not_probe_and_batches(server) -> None:
    base_url, state = server
    embedder = OpenAIEmbedder(_emb_config(base_url, dimensions=DIM, batch_size=2))
    assert embedder.dimension == DIM
    assert state.requests == []
    texts = [f"text number {i}" for i in range(5)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (5, DIM)
    assert [len(r["body"]["input"]) for r in state.requests] == [2, 2, 1]
    assert [t for r in state.requests for t in r["body"]["input"]] == texts
    expected = np.asarray([_vector_for(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-5)
    assert embedder.embed([]).shape == (0, DIM)
    assert len(state.requests) == 3  # no request for an empty list


def test_embedder_dimension_mismatch_is_refused(server) -> None:
    base_url, _ = server
    embedder = OpenAIEmbedder(_emb_config(base_url, dimensions=DIM * 2))
    with pytest.raises(BackendError, match="embedder.dimensions"):
        embedder.embed(["hello"])


def test_embedder_server_down_names_the_url() -> None:
    url = _closed_port_url()
    with pytest.raises(BackendError) as info:
        OpenAIEmbedder(_emb_config(url, dimensions=0, timeout_s=2.0))  # the probe fails at construction
    assert url in str(info.value)
    assert "embedder.base_url" in str(info.value)


def test_embedder_401_mentions_the_key_variable(server) -> None:
    base_url, state = server
    state.status = 401
    embedder = OpenAIEmbedder(_emb_config(base_url, dimensions=DIM))
    with pytest.raises(BackendError) as info:
        embedder.embed(["hello"])
    assert "401" in str(info.value)
    assert f"${KEY_ENV}" in str(info.value)


@pytest.mark.parametrize("reply", BAD_REPLIES.values(), ids=BAD_REPLIES.keys())
def test_embedder_bad_reply_is_a_backend_error(server, reply) -> None:
    base_url, state = server
    state.raw_reply = reply
    embedder = OpenAIEmbedder(_emb_config(base_url, dimensions=DIM))
    with pytest.raises(BackendError) as info:
        embedder.embed(["hello", "world"])
    assert base_url in str(info.value)
    assert "embedder.base_url" in str(info.value)


def test_embedder_token_helpers() -> None:
    # Constructed with a fixed dimension so no server is needed.
    embedder = OpenAIEmbedder(_emb_config("http://127.0.0.1:9/v1", dimensions=DIM))
    text = "  one two\tthree\nfour "
    offsets = embedder.token_offsets(text)
    assert [text[a:b] for a, b in offsets] == ["one", "two", "three", "four"]
    assert embedder.count_tokens("abcdefgh") == 2
    assert embedder.count_tokens("") == 1
    assert embedder.name == "openai:served-embedder"  # the model, not the URL: moving the server is fine
