"""The client's parameters and tenants, in process (httpx.ASGITransport, FakeGenerator): sampling fields reach the
model where the strategy allows and serve.locked_parameters does not forbid, and the response says what changed;
a client's own sampling bypasses the answer cache; each tenant sees only its own cached answers. With the real
model and a real socket: tests/serve/test_serve_socket.py (a JSON schema yields valid JSON)."""

from __future__ import annotations

import json

import pytest
from test_serve_app import ask, client, make_app, run

from adaptlab.errors import ConfigError
from adaptlab.testing.fakes import FakeGenerator

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _post(app, *bodies, headers=None):
    async def go():
        async with client(app, **(headers or {})) as http:
            return [await http.post("/v1/chat/completions", json=body) for body in bodies]

    return run(go())


def test_sampling_parameters_are_applied_and_reported(tmp_path):
    generator = FakeGenerator("Paris is the capital.")
    app = make_app(tmp_path, generator=generator)
    sampling = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 7, "stop": "\n\n", "seed": 3}
    first, again = _post(app, ask(**sampling), ask(**sampling))
    assert first.status_code == again.status_code == 200
    extension = first.json()["adaptlab"]
    assert extension["overridden_parameters"] == ["max_tokens", "stop", "temperature", "top_p"]
    assert extension["as_evaluated"] is False and extension["ignored_parameters"] == []
    options = generator.call_options[0]
    assert (options["temperature"], options["top_p"], options["max_tokens"], options["stop"], options["seed"]) == \
        (0.7, 0.9, 7, ("\n\n",), 3)
    # The cache holds answers of the evaluated settings: a client's own sampling is answered fresh, never stored.
    assert extension["cache"] == "none" and again.json()["adaptlab"]["cache"] == "none"
    assert len(generator.calls) == 2
    plain, hit = _post(app, ask(), ask())
    assert plain.json()["adaptlab"]["as_evaluated"] is True and hit.json()["adaptlab"]["cache"] == "hit"


def test_locked_parameters_keep_the_evaluated_values(tmp_path):
    generator = FakeGenerator("Paris is the capital.")
    app = make_app(tmp_path, generator=generator,
                   serve={"locked_parameters": ["temperature", "max_tokens", "seed"]})
    (response,) = _post(app, ask(temperature=1.5, max_completion_tokens=3, top_p=0.5, seed=9))
    extension = response.json()["adaptlab"]
    assert extension["ignored_parameters"] == ["max_completion_tokens", "seed", "temperature"]
    assert extension["overridden_parameters"] == ["top_p"]
    options = generator.call_options[0]
    assert options["temperature"] is None and options["max_tokens"] != 3 and options["seed"] is None
    assert options["top_p"] == 0.5


@pytest.mark.parametrize("response_format, schema", [
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}, SCHEMA),
    ({"type": "json_object"}, {"type": "object"}),
    ({"type": "text"}, None),
])
def test_response_format_constrains_decoding_to_the_schema(tmp_path, response_format, schema):
    generator = FakeGenerator('{"city": "Paris"}')
    (response,) = _post(make_app(tmp_path, generator=generator), ask(model="adaptlab-prompt",
                                                                     response_format=response_format))
    assert response.status_code == 200
    assert generator.call_options[0]["json_schema"] == schema
    overridden = response.json()["adaptlab"]["overridden_parameters"]
    assert overridden == ([] if schema is None else ["response_format"])


@pytest.mark.parametrize("response_format, code, fix", [
    ({"type": "json_schema"}, "invalid_request", "json_schema"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "no-such-type"}}}, "invalid_response_format",
     "not a valid JSON Schema"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "invalid_request", "schema"),
    ({"type": "yaml"}, "invalid_request", "'text', 'json_object', 'json_schema'"),
])
def test_a_bad_response_format_is_a_400_naming_the_fix(tmp_path, response_format, code, fix):
    (response,) = _post(make_app(tmp_path), ask(response_format=response_format))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["param"].startswith("response_format")
    assert fix in error["message"]


def test_a_strategy_with_its_own_schema_keeps_it(tmp_path):
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    generator = FakeGenerator('{"city": "Paris"}')
    app = make_app(tmp_path, generator=generator,
                   strategies={"extract": {"kind": "prompt", "json_schema_path": str(schema_path)}})
    (response,) = _post(app, ask(model="adaptlab-extract", response_format={"type": "json_object"}))
    assert generator.call_options[0]["json_schema"] == SCHEMA
    assert response.json()["adaptlab"]["ignored_parameters"] == ["response_format"]


def test_tenant_a_cached_answer_is_a_miss_for_tenant_b(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTLAB_API_KEYS", "al-tenant-a-key,al-tenant-b-key")
    generator = FakeGenerator("Paris is the capital.")
    app = make_app(tmp_path, generator=generator, serve={"tenant": "key"})
    a1, a2 = _post(app, ask(), ask(), headers={"Authorization": "Bearer al-tenant-a-key"})
    (b1,) = _post(app, ask(), headers={"Authorization": "Bearer al-tenant-b-key"})
    assert [r.json()["adaptlab"]["cache"] for r in (a1, a2, b1)] == ["miss", "hit", "miss"]
    assert len(generator.calls) == 2


def test_tenant_from_a_trusted_header(tmp_path):
    generator = FakeGenerator("Paris is the capital.")
    app = make_app(tmp_path, generator=generator, serve={"tenant": "header"})
    a1, = _post(app, ask(), headers={"X-Adaptlab-Tenant": "acme"})
    b1, b2 = _post(app, ask(), ask(), headers={"X-Adaptlab-Tenant": "globex"})
    assert [r.json()["adaptlab"]["cache"] for r in (a1, b1, b2)] == ["miss", "miss", "hit"]
    (missing,) = _post(app, ask())
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_tenant"


def test_tenant_per_key_needs_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("ADAPTLAB_API_KEYS", raising=False)
    with pytest.raises(ConfigError, match="no key is configured"):
        make_app(tmp_path, serve={"tenant": "key"})
