"""The `openai` client shared by the OpenAI-compatible generator, embedder and judge, its errors in our words,
and how calls to one endpoint are paced: retries with exponential backoff that honour 429/503 and
`Retry-After`, and request / token rate limits shared by every caller of the endpoint in this process."""

from __future__ import annotations

import email.utils
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from adaptlab.errors import BackendError, ContextLengthError

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import MovingWindowRateLimiter

T = TypeVar("T")
RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# How servers say a prompt is too long: OpenAI and vLLM's code / "maximum context length", llama.cpp server's
# "exceed_context_size_error" / "exceeds the available context size".
_CONTEXT_LENGTH = re.compile(r"context_length_exceeded|exceed_context_size|context (length|window|size)", re.I)
MAX_BACKOFF_S = 60.0


def make_client(base_url: str, api_key_env: str, timeout_s: float, *, max_retries: int = 2):
    import openai

    # Local servers (vLLM, Ollama, llama.cpp) usually need no key, but the client insists on one.
    return openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "not-needed",
                         timeout=timeout_s, max_retries=max_retries)


@dataclass(frozen=True)
class CallPolicy:
    """How calls to one endpoint are retried and paced (the generator's settings)."""

    max_retries: int = 4
    backoff_s: float = 0.5  # first wait; doubles each retry (with jitter), capped at MAX_BACKOFF_S
    requests_per_minute: int = 0  # 0: no limit
    tokens_per_minute: int = 0  # 0: no limit (prompt + completion tokens, the completion at its maximum)


@dataclass
class Attempts:
    """What one call took: its retries (each a 429/5xx/timeout/connection error answered by waiting)."""

    retries: int = 0
    waited_s: float = 0.0


def call_with_retries(send: Callable[[], T], policy: CallPolicy, attempts: Attempts,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """send() until it succeeds or a non-retryable error or the last retry fails. The wait is the server's
    Retry-After when it gives one, else exponential backoff with full jitter."""
    import openai

    while True:
        try:
            return send()
        except (openai.APITimeoutError, openai.APIConnectionError, openai.APIStatusError) as exc:
            status = getattr(exc, "status_code", None)
            if (status is not None and status not in RETRIED_STATUS) or attempts.retries >= policy.max_retries:
                raise
            wait = _retry_after(exc)
            if wait is None:
                wait = random.uniform(0, min(MAX_BACKOFF_S, policy.backoff_s * 2 ** attempts.retries))
            wait = min(max(wait, 0.0), MAX_BACKOFF_S)
            attempts.retries += 1
            attempts.waited_s += wait
            sleep(wait)


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


class EndpointPacer:
    """Request and token rate limits for one endpoint, shared by every generator that calls it in this process
    (a moving window per minute, on the `limits` library). `acquire` blocks until the call fits."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int) -> None:
        from limits import RateLimitItemPerMinute, storage, strategies

        self._limiter: MovingWindowRateLimiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._requests: RateLimitItem | None = (RateLimitItemPerMinute(requests_per_minute)
                                                 if requests_per_minute else None)
        self._tokens: RateLimitItem | None = RateLimitItemPerMinute(tokens_per_minute) if tokens_per_minute else None
        self._lock = threading.Lock()

    def acquire(self, tokens: int, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait for room for one request of `tokens` tokens; returns the seconds waited."""
        waited = 0.0
        if self._tokens is not None:
            tokens = min(tokens, self._tokens.amount)  # a call larger than the whole budget waits for all of it
        while True:
            with self._lock:
                fits = ((self._requests is None or self._limiter.test(self._requests, "requests"))
                        and (self._tokens is None or self._limiter.test(self._tokens, "tokens", cost=tokens)))
                if fits:
                    if self._requests is not None:
                        self._limiter.hit(self._requests, "requests")
                    if self._tokens is not None:
                        self._limiter.hit(self._tokens, "tokens", cost=tokens)
                    return waited
                resets = [self._limiter.get_window_stats(item, key).reset_time
                          for item, key in ((self._requests, "requests"), (self._tokens, "tokens"))
                          if item is not None]
            wait = min(max(min(resets) - time.time(), 0.05), 60.0)
            waited += wait
            sleep(wait)


_PACERS: dict[tuple[str, int, int], EndpointPacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(base_url: str, policy: CallPolicy) -> EndpointPacer | None:
    """The one pacer of an endpoint (None without limits): two generators on the same server share its budget."""
    if not policy.requests_per_minute and not policy.tokens_per_minute:
        return None
    key = (base_url.rstrip("/"), policy.requests_per_minute, policy.tokens_per_minute)
    with _PACERS_LOCK:
        if key not in _PACERS:
            _PACERS[key] = EndpointPacer(policy.requests_per_minute, policy.tokens_per_minute)
        return _PACERS[key]


def bad_reply(server: str, base_url: str, section: str, expected: str, exc: Exception) -> BackendError:
    return BackendError(
        f"{server} at {base_url} did not answer with {expected} ({exc}) — check {section}.base_url "
        f"(an OpenAI-compatible API usually ends in /v1)."
    )


@contextmanager
def translated_errors(server: str, base_url: str, section: str, api_key_env: str, expected: str,
                      attempts: Attempts | None = None) -> Iterator[None]:
    """Turn the client's exceptions into BackendErrors that name the URL and the setting to fix."""
    import openai

    def tried() -> str:  # read when the error arrives: the retries happen inside the block
        return f" (after {attempts.retries} retries)" if attempts is not None and attempts.retries else ""

    try:
        yield
    except openai.APITimeoutError as exc:
        raise BackendError(
            f"The {server.lower()} at {base_url} did not answer in time{tried()} — raise {section}.timeout_s or "
            f"lower the concurrency (--concurrency)."
        ) from exc
    except openai.APIConnectionError as exc:
        raise BackendError(
            f"Cannot reach the {server.lower()} at {base_url}{tried()} ({exc}) — start it or fix {section}.base_url "
            f"in adaptlab.toml."
        ) from exc
    except openai.APIStatusError as exc:
        if exc.status_code == 400 and _CONTEXT_LENGTH.search(f"{exc.code} {exc.message}"):
            raise ContextLengthError(f"{server} at {base_url}: {exc.message}",
                                     f"shorten the prompt or use a model with a longer context than "
                                     f"{section}.model") from exc
        fix = (f"lower the concurrency or set {section}.requests_per_minute / tokens_per_minute"
               if exc.status_code == 429 else f"check {section}.model and the API key in ${api_key_env}")
        raise BackendError(
            f"{server} at {base_url} answered {exc.status_code}{tried()}: {exc.message} — {fix}."
        ) from exc
    except (ValueError, AttributeError, TypeError) as exc:  # a body that is not JSON (an HTML page, a proxy)
        raise bad_reply(server, base_url, section, expected, exc) from exc
