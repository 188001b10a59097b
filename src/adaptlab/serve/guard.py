"""The server's sockets: how many connections it holds, how big and how slow a request may be, and whose
X-Forwarded-For it believes — enforced in the HTTP protocol, before any request reaches the app.

uvicorn's own settings cover part of this: `proxy_headers` / `forwarded_allow_ips` (X-Forwarded-For only from
serve.trusted_proxies). They do not cover the rest with its C parser (httptools): no header size limit (a 32 MB
header was answered), no time limit on receiving a request (a client sending a byte every few seconds, or
declaring a body it never sends, held its connection for good), and `limit_concurrency` refuses only once a
request's headers have arrived — too late for a client that never finishes them. `guarded_protocol` adds those
three to uvicorn's httptools protocol.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from adaptlab.config import ServeConfig


def server_config(app: Any, settings: ServeConfig, *, access_log: bool = False) -> Config:
    """The uvicorn configuration `adaptlab serve` runs `app` with (the tests start the same one)."""
    trusted = list(settings.trusted_proxies)
    return Config(
        app, host=settings.host, port=settings.port, http=guarded_protocol(settings), access_log=access_log,
        log_level="warning",
        ws="none",  # no WebSocket routes: an upgrade request stays plain HTTP, under the limits below
        # Without trusted proxies the middleware is left out: uvicorn's default would believe 127.0.0.1.
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
    )


def guarded_protocol(settings: ServeConfig) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with serve.max_connections, max_header_bytes and request_timeout_s
    enforced (uvicorn builds one protocol object per connection from the class it is given)."""

    class GuardedProtocol(_Guarded):
        max_connections = settings.max_connections
        max_header_bytes = settings.max_header_bytes
        request_timeout_s = settings.request_timeout_s

    return GuardedProtocol


def _raw_response(status: int, message: str, code: str, extra: bytes = b"") -> bytes:
    """A complete error response in OpenAI's shape, written straight to the socket (no app is involved), that
    closes the connection."""
    kind = "service_unavailable" if status == 503 else "invalid_request_error"
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    return (STATUS_LINE[status] + b"content-type: application/json\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\nconnection: close\r\n" + extra + b"\r\n" + body)


class _Guarded(HttpToolsProtocol):
    max_connections: int
    max_header_bytes: int
    request_timeout_s: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None  # armed while a request is being received
        self._head_done = False  # the current request's headers have all arrived
        self._head_bytes = 0  # bytes received for the current request before its headers were complete

    # ----------------------------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(503, f"The server holds its most open connections (serve.max_connections = "
                         f"{self.max_connections}) — retry in a moment.", "too_many_connections",
                         b"retry-after: 1\r\n")
            return
        self._arm()  # a client that connects and sends nothing is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and not self._head_done:
            self._arm()  # the first byte of the next request on a kept-alive connection
        if not self._head_done:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so that a read holding the end of the headers and the start of the body is
        # not counted against the headers; the parser has then buffered at most one read beyond the limit.
        if not self._head_done and self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse(431, f"Request headers too large — at most {self.max_header_bytes} bytes are accepted "
                         f"(serve.max_header_bytes).", "request_header_fields_too_large")

    # ------------------------------------------------------------------------------ parser callbacks

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # Before uvicorn's own handler, which returns early when the app has already answered.
        self._disarm()
        self._head_done = False
        self._head_bytes = 0
        super().on_message_complete()

    # -------------------------------------------------------------------------------------- timeout

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused or self.pipeline:
            self._arm()  # the server itself stopped reading (body not yet read by the app, pipelining)
            return
        self._refuse(408, f"The request was not received within {self.request_timeout_s:g} s "
                     f"(serve.request_timeout_s).", "request_timeout")

    def _refuse(self, status: int, message: str, code: str, extra: bytes = b"") -> None:
        """Answer `status` (unless a response has begun) and close the connection; the app, if it is already
        running for this request, reads a disconnect and its answer is dropped."""
        self._disarm()
        cycle = self.cycle  # this request's once its headers are in, else the previous one on the connection
        answering = cycle is not None and not cycle.response_complete
        if not (answering and (cycle.response_started or not self._head_done)):
            self.transport.write(_raw_response(status, message, code, extra))
        if answering:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
