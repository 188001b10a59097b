"""Every error the server returns, in OpenAI's JSON shape with the status code the `openai` client maps to its
exception classes (400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 429 RateLimitError ...)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("adaptlab.serve")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
          422: "invalid_request_error", 429: "rate_limit_error", 503: "service_unavailable"}


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
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # OpenAI answers malformed bodies with 400 (not FastAPI's 422); name the first bad field.
        errors = exc.errors()
        first = errors[0] if errors else {}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(location) or None
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
