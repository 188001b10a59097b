"""The scale-out path: two server replicas share one real Redis for the answer cache and the rate limit."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from adaptlab.config import AdaptlabConfig
from adaptlab.project import Project
from adaptlab.serve.app import create_app
from adaptlab.testing.fakes import FakeGenerator


def replica(tmp_path, name: str, redis_url: str, prefix: str, generator: FakeGenerator):
    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path / name), "embedder": {"backend": "hash"},
        "cache": {"backend": "redis", "redis_url": redis_url, "redis_prefix": prefix},
        "strategies": {"cached": {"kind": "cached", "wraps": "prompt"}},
        "serve": {"strategies": ["cached"], "rate_limit": "4/minute", "rate_limit_storage": redis_url},
    })
    project = Project(config, generator=generator)
    return create_app(config, project=project)


def test_replicas_share_cache_and_rate_limit(tmp_path, redis_url, monkeypatch):
    key = f"key-{uuid.uuid4().hex}"  # a fresh caller: the limiter's counters live in the shared Redis
    monkeypatch.setenv("ADAPTLAB_API_KEYS", key)
    prefix = f"test:{uuid.uuid4().hex}:"
    generator_a, generator_b = FakeGenerator("From replica A."), FakeGenerator("From replica B.")
    app_a = replica(tmp_path, "a", redis_url, prefix, generator_a)
    app_b = replica(tmp_path, "b", redis_url, prefix, generator_b)
    body = {"model": "adaptlab-cached", "messages": [{"role": "user", "content": "Who wrote Hamlet?"}]}

    async def go():
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_a), base_url="http://a",
                                     headers=headers) as a, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app_b), base_url="http://b",
                                  headers=headers) as b:
            first = await a.post("/v1/chat/completions", json=body)
            second = await b.post("/v1/chat/completions", json=body)
            rest = [(await client.get("/v1/models")).status_code for client in (a, b, a)]
            return first, second, rest

    first, second, rest = asyncio.run(go())
    assert first.headers["x-adaptlab-cache"] == "miss"
    # Replica B answers from the entry replica A stored: its own generator is never asked.
    assert second.headers["x-adaptlab-cache"] == "hit" and second.json()["choices"][0]["message"]["content"] == \
        "From replica A." and generator_b.calls == []
    # 4 per minute across both replicas: requests 3 and 4 pass, the fifth is refused wherever it lands.
    assert rest == [200, 200, 429]
