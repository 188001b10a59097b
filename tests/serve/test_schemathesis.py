"""The OpenAPI schema is the contract: schemathesis generates schema-valid and schema-violating requests for
every operation and checks each response (status codes documented, bodies and SSE events match the schema,
no 5xx, valid data accepted, invalid data rejected).

schemathesis' pytest plugin does not run on pytest 9 yet, so the operations are driven through its Python API
(the same generation and checks as `schemathesis run`)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from adaptlab.config import AdaptlabConfig
from adaptlab.project import Project
from adaptlab.serve.app import create_app
from adaptlab.testing.fakes import FakeGenerator

OPERATIONS = ["GET /healthz", "GET /metrics", "GET /v1/models", "POST /v1/chat/completions", "POST /v1/embeddings"]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path_factory.mktemp("schemathesis-home")), "embedder": {"backend": "hash"},
        "strategies": {"cached": {"kind": "cached", "wraps": "prompt", "mode": "exact"}},
        "serve": {"max_queue": 64, "max_messages": 8},
    })
    project = Project(config, generator=FakeGenerator("A short answer."))
    app = create_app(config, project=project)
    return schemathesis.openapi.from_asgi("/openapi.json", app), app


def test_schema_lists_every_route(api_schema):
    schema, _ = api_schema
    assert sorted(result.ok().label for result in schema.get_all_operations()) == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_schema(api_schema, label, mode):
    schema, app = api_schema
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().label == label)
    calls = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        calls.append(case.call_and_validate().status_code)

    try:
        check()
    except Unsatisfiable:
        # A GET without parameters or body has nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE and label.startswith("GET")
        return
    assert calls
    if mode is GenerationMode.POSITIVE:
        assert 200 in calls  # valid requests were answered, not just rejected
    else:
        assert all(400 <= status < 500 for status in calls)
