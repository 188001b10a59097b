"""Every error the server returns, in OpenAI's JSON shape with the status code the `openai` client maps to its
exception classes (400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 429 RateLimitError ...)."""

from __future__ import annotations

import logging
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

log = logging.getLogger("adaptlab.serve")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 408: "invalid_request_error",
          413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
          431: "invalid_request_error", 499: "invalid_request_error", 503: "service_unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # OpenAI answers malformed bodies with 400 (not FastAPI's 422); name the first bad field as OpenAI does.
        errors = exc.errors()
        first = errors[0] if errors else {}
        location = list(first.get("loc", ()))
        if location[:1] == ["body"]:
            location = location[1:]
        body_field = getattr(request.scope.get("route"), "body_field", None)
        model = body_field.field_info.annotation if body_field is not None else None
        # A JSON syntax error's location is a character offset, not a field.
        param = None if first.get("type") == "json_invalid" else openai_param(location, model)
        message = first.get("msg", "invalid request body")
        where = f"{param}: " if param else ""
        return error_response(400, f"{where}{message}", code="invalid_request", param=param)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: "No such route — the API is under /v1 (GET /v1/models lists the models).",
                    405: "Method not allowed on this route.",
                    413: "Request body too large — see serve.max_body_bytes."}
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        message = messages.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, code=codes.get(exc.status_code),
                              headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error answering %s %s", request.method, request.url.path)
        return error_response(500, f"Internal error ({type(exc).__name__}) — the server log has the details.",
                              code="internal_error")


def openai_param(location: Sequence[str | int], model: Any) -> str | None:
    """OpenAI's name of the field at a pydantic error location: 'messages[0].content' where pydantic says
    ('messages', 0, 'user', 'content', 'constrained-str') — it adds the discriminator tag and the union member
    it tried, which are not fields. Follows `model`'s fields to tell them apart."""
    if model is None:
        return ".".join(str(part) for part in location) or None
    param = ""
    node: Any = model
    for part in location:
        if isinstance(part, int):
            param += f"[{part}]"
            node = next((get_args(m)[0] for m in _members(node) if get_origin(m) is list and get_args(m)), Any)
            continue
        owner = next((m for m in _members(node) if isinstance(m, type) and issubclass(m, BaseModel)
                      and part in m.model_fields), None)
        if owner is None:
            continue  # a union member's label or a discriminator's tag
        param += f".{part}" if param else part
        node = owner.model_fields[part].annotation
    return param or None


def _members(node: Any) -> list[Any]:
    """The types a field may hold: through Annotated, unions and Optional."""
    origin = get_origin(node)
    if origin is Annotated:
        return _members(get_args(node)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(node) for member in _members(arg)]
    return [node]
