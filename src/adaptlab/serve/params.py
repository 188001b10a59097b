"""A chat request's own parameters → how the strategy answers it: the client's sampling where the strategy applies
it and serve.locked_parameters allows it, the rest listed as ignored; the tenant whose cache entries it may see.

Why every sent field is accounted for: a client that set `temperature` must be able to tell whether it changed the
answer. The response lists what was applied (`adaptlab.overridden_parameters`, and `as_evaluated` is false: this
answer is not the configuration the harness measured) and what was not (`adaptlab.ignored_parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adaptlab.config import ServeConfig
from adaptlab.serve import schemas
from adaptlab.serve.api_errors import ApiError
from adaptlab.strategies.base import AskOptions, Strategy
from adaptlab.types import Sampling

# Fields that shape the request itself, never the answer's sampling.
_REQUEST_FIELDS = {"model", "messages", "stream", "stream_options", "n", "user"}
# Request field → the Sampling field it sets.
_SAMPLING_OF = {"max_tokens": "max_tokens", "max_completion_tokens": "max_tokens", "temperature": "temperature",
                "top_p": "top_p", "stop": "stop", "response_format": "json_schema"}


@dataclass(frozen=True)
class ClientParameters:
    options: AskOptions  # what the strategy is asked to apply (sampling, tenant)
    seed: int | None  # the client's seed (as the harness's --repeats) unless locked
    overridden: list[str]  # client fields applied: the answer is not the evaluated configuration
    ignored: list[str]  # client fields accepted and not applied

    @property
    def as_evaluated(self) -> bool:
        return not self.overridden


def client_parameters(body: schemas.ChatCompletionRequest, strategy: Strategy, settings: ServeConfig,
                      tenant: str) -> ClientParameters:
    # A field sent as null is as good as absent; unknown fields (model_extra) are all reported.
    sent = {name for name in body.model_fields_set if getattr(body, name) is not None} | set(body.model_extra or {})
    locked = set(settings.locked_parameters)
    applied = strategy.sampling_applied
    values: dict[str, Any] = {}
    overridden: list[str] = []
    ignored: list[str] = []
    for name in sorted(sent - _REQUEST_FIELDS):
        target = _SAMPLING_OF.get(name)
        if name == "seed":
            (ignored if "seed" in locked else []).append(name)
            continue
        locked_name = "max_tokens" if name == "max_completion_tokens" else name
        if target is None or locked_name in locked or target not in applied:
            ignored.append(name)
            continue
        value = _sampling_value(name, getattr(body, name))
        if value is None:  # response_format {"type": "text"}: what the strategy does anyway
            continue
        values[target] = value
        overridden.append(name)
    seed = None if "seed" in locked else body.seed
    return ClientParameters(AskOptions(sampling=Sampling(**values), tenant=tenant), seed, overridden, ignored)


def _sampling_value(name: str, value: Any) -> Any:
    if name == "stop":
        return (value,) if isinstance(value, str) else tuple(value)
    if name == "response_format":
        return _json_schema(value)
    return value


def _json_schema(response_format: schemas.ResponseFormat) -> dict[str, Any] | None:
    """OpenAI's response_format → the JSON schema decoding is constrained to (None: plain text)."""
    if isinstance(response_format, schemas.TextFormat):
        return None
    if isinstance(response_format, schemas.JsonObjectFormat):
        return {"type": "object"}
    import jsonschema

    schema = response_format.json_schema.schema_
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ApiError(400, f"response_format.json_schema.schema is not a valid JSON Schema: {exc.message}",
                       code="invalid_response_format", param="response_format") from None
    return schema
