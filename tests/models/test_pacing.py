"""How calls to an endpoint are retried and paced: which errors are retried, how long each wait is (the server's
Retry-After when it gives one), and the per-endpoint request / token rate limits shared by its callers."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from adaptlab.openai_http import (
    Attempts,
    CallPolicy,
    EndpointPacer,
    call_with_retries,
    pacer_for,
)


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request, json={"error": {"message": "x"}})
    cls = openai.RateLimitError if status == 429 else openai.InternalServerError if status >= 500 else \
        openai.BadRequestError
    return cls("x", response=response, body=None)


def flaky(errors: list[Exception]):
    def send() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"
    return send


def test_retry_after_is_honoured_and_every_retry_counted() -> None:
    waits: list[float] = []
    attempts = Attempts()
    errors = [status_error(429, {"retry-after": "2"}), status_error(503, {"retry-after-ms": "250"}),
              openai.APITimeoutError(request=httpx.Request("POST", "http://127.0.0.1"))]
    assert call_with_retries(flaky(errors), CallPolicy(max_retries=5, backoff_s=0.5), attempts, waits.append) == "ok"
    assert attempts.retries == 3 and waits[:2] == [2.0, 0.25]
    assert 0 <= waits[2] <= 0.5 * 2 ** 2  # no Retry-After: exponential backoff with full jitter
    assert attempts.waited_s == pytest.approx(sum(waits))


def test_client_errors_are_not_retried_and_retries_stop_at_the_limit() -> None:
    attempts = Attempts()
    with pytest.raises(openai.BadRequestError):
        call_with_retries(flaky([status_error(400)]), CallPolicy(max_retries=5), attempts, lambda _: None)
    assert attempts.retries == 0
    attempts = Attempts()
    with pytest.raises(openai.RateLimitError):
        call_with_retries(flaky([status_error(429)] * 4), CallPolicy(max_retries=2), attempts, lambda _: None)
    assert attempts.retries == 2


def test_an_http_date_retry_after_and_a_huge_one_are_bounded() -> None:
    waits: list[float] = []
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    errors = [status_error(429, {"retry-after": future}), status_error(429, {"retry-after": "86400"})]
    call_with_retries(flaky(errors), CallPolicy(max_retries=3), Attempts(), waits.append)
    assert 25 <= waits[0] <= 31 and waits[1] == 60.0  # capped: a day-long wait is not a retry


def test_the_request_limit_makes_callers_wait_for_the_window() -> None:
    pacer = EndpointPacer(requests_per_minute=3, tokens_per_minute=0)
    slept: list[float] = []
    assert [pacer.acquire(10, slept.append) for _ in range(3)] == [0.0, 0.0, 0.0]
    # The fourth request in the same minute waits until the window has room; the fake sleep cannot advance the
    # clock, so stop it after the first wait.

    def stop(seconds: float) -> None:
        slept.append(seconds)
        raise TimeoutError

    with pytest.raises(TimeoutError):
        pacer.acquire(10, stop)
    assert 50 <= slept[0] <= 60


def test_the_token_limit_counts_tokens_and_endpoints_share_one_pacer() -> None:
    pacer = EndpointPacer(requests_per_minute=0, tokens_per_minute=1000)
    assert pacer.acquire(600) == 0.0
    with pytest.raises(TimeoutError):
        pacer.acquire(600, lambda _: (_ for _ in ()).throw(TimeoutError))
    policy = CallPolicy(requests_per_minute=10)
    assert pacer_for("http://h/v1", policy) is pacer_for("http://h/v1/", policy)
    assert pacer_for("http://h/v1", CallPolicy()) is None
