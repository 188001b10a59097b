"""`create_app(config)`: the OpenAI-compatible FastAPI app in front of the configured strategies.

Routes: POST /v1/chat/completions (JSON or SSE stream), GET /v1/models, POST /v1/embeddings, GET /metrics
(Prometheus), GET|HEAD /healthz. Every /v1 route and /metrics need an API key when keys are configured, checked
before the body is read. The sockets' own limits (connections, header size, time to send a request) are in
serve/guard.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from adaptlab.config import AdaptlabConfig, ServeConfig
from adaptlab.errors import AdaptlabError, BackendError, ConfigError, ContextLengthError
from adaptlab.project import Project
from adaptlab.serve import schemas
from adaptlab.serve.admin import install_admin
from adaptlab.serve.api_errors import ApiError, error_response, install_handlers
from adaptlab.serve.metrics import ServerMetrics
from adaptlab.serve.params import ClientParameters, client_parameters
from adaptlab.serve.security import Gatekeeper
from adaptlab.serve.service import Answering, Catalog, Pricer, ServedModel, build_catalog, make_pricer
from adaptlab.serve.work import Caller, ClientGone, LaneFull
from adaptlab.strategies.base import AnswerEvent, with_standalone
from adaptlab.types import Answer, Citation, Standalone, TextDelta, Turn

ERROR_RESPONSES = {status: {"model": schemas.ErrorBody, "description": text} for status, text in {
    400: "Malformed request", 401: "Missing or invalid API key", 404: "Unknown model", 413: "Body too large",
    429: "Rate limit or queue full (see Retry-After)", 500: "Internal error", 503: "An upstream is unavailable",
}.items()}
SSE_EVENT = {"type": "object", "properties": {"data": {"type": "string"}, "event": {"type": "string"},
                                              "id": {"type": "string"}, "retry": {"type": "integer"}}}


class LockedEmbedder:
    """The project's embedder behind a lock: the lookup lane, the embeddings route and retrieval inside
    generation call it from different threads, and Hugging Face tokenizers are not safe to share that way."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._inner.embed(texts)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self._inner.count_tokens(text)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        with self._lock:
            return self._inner.token_offsets(text)

    def __getattr__(self, name: str):  # name, dimension and anything else read-only
        return getattr(self._inner, name)


@dataclass
class ServerState:
    settings: ServeConfig
    catalog: Catalog
    answering: Answering
    pricer: Pricer
    metrics: ServerMetrics
    gate: Gatekeeper
    project: Project
    project_dir: Path  # citations show their paths relative to it (serve.citation_paths)
    started: int


def create_app(config: AdaptlabConfig, *, project: Project | None = None) -> FastAPI:
    """The server for `config`. `project` lets tests pass components built elsewhere (a fake generator)."""
    project = project or Project(config)
    settings = config.serve
    project = project.with_parts(embedder=LockedEmbedder(project.embedder))  # before any strategy captures it
    project.logger.start_batching()  # every answer and cache hit is logged; one commit each would cost more
    metrics = ServerMetrics()
    state = ServerState(
        settings=settings, catalog=build_catalog(project),
        answering=Answering(settings, llama_cpp=config.generator.backend == "llama_cpp"),
        pricer=make_pricer(config), metrics=metrics, gate=Gatekeeper(settings, metrics), project=project,
        project_dir=config.project_dir().resolve(), started=int(time.time()),
    )
    if settings.tenant == "key" and not state.gate.keys.enabled:
        raise ConfigError(f"serve.tenant = 'key' scopes the answer cache per API key, but no key is configured — "
                          f"add keys (serve.api_key_hashes or ${settings.api_keys_env}), or use tenant = 'header' "
                          f"or 'none'.")
    state.metrics.watch_lane("generation", lambda: state.answering.generation.depth)
    state.metrics.watch_lane("lookup", lambda: state.answering.lookup.depth)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.answering.shutdown()
        project.logger.flush()

    app = FastAPI(title="adaptlab", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible API serving the strategies adaptlab evaluated, as evaluated.")
    app.state.adaptlab = state
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: counts the 413s too
    _add_routes(app, state)
    install_admin(app, state)  # /admin routes, only when admin keys are set ($serve.admin_keys_env)
    # FastAPI's documented way to customise the schema is to replace the method; mypy forbids that in general.
    app.openapi = lambda: _openapi(app, state.catalog, settings, state.project.embedder.dimension)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, catalog: Catalog, settings: ServeConfig, dimension: int) -> dict:
    """FastAPI's schema with this server's own limits: the model ids it serves, the most messages and texts it
    takes, its embedding size — so clients (and schemathesis) see exactly what is accepted."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema["components"]["schemas"]
        chat, embed = components["ChatCompletionRequest"]["properties"], components["EmbeddingRequest"]["properties"]
        chat["model"]["enum"] = sorted(catalog.models)
        chat["messages"]["maxItems"] = settings.max_messages
        for option in components["UserMessage"]["properties"]["content"]["anyOf"]:
            if option.get("type") == "string":
                option["maxLength"] = settings.max_question_chars
        embed["model"]["enum"] = [catalog.embedding_model]
        for option in embed["input"]["anyOf"]:
            if option.get("type") == "array":
                option["maxItems"] = settings.max_embedding_inputs
        embed["dimensions"] = {"anyOf": [{"type": "integer", "enum": [dimension]}, {"type": "null"}],
                               "description": embed["dimensions"].get("description", "")}
        app.openapi_schema = schema
    return app.openapi_schema


# ------------------------------------------------------------------------------------------- middleware


class MetricsMiddleware:
    """Counts and times every response (errors included) by route template, model and cache status."""

    def __init__(self, app, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            path = route.path if route is not None else "unmatched"
            labels = scope.get("state", {})
            model = labels.get("metric_model", "")
            self.metrics.requests.labels(path, model, str(status)).inc()
            self.metrics.latency.labels(path, model, labels.get("metric_cache", "none")).observe(
                time.perf_counter() - started)


class _BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing passes it on as a 413 instead of calling it a parse error.
    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimitMiddleware:
    """413 in OpenAI's error shape for a body over the limit, judged by Content-Length before anything is
    read, and by counting the bytes of a chunked body as they arrive (never buffering more than the limit).
    (Starlette's own limit answers in plain text, which the openai client cannot read.)"""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(413, f"Request body too large — at most {self.max_bytes} bytes are accepted "
                                   f"(serve.max_body_bytes).", code="request_too_large")
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if started:
                raise
            await too_large(scope, receive, send)


# ------------------------------------------------------------------------------------- who is calling


class GuardedRoute(APIRoute):
    """A route that needs a key: the caller is admitted (key, failed-auth and rate limits) before its body is
    read or parsed — FastAPI parses the body before it runs any dependency, so a keyless `{bad` would get 400
    instead of 401. The caller's id is left in request.state.caller."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            state: ServerState = request.app.state.adaptlab
            address = request.client.host if request.client else "unknown"
            request.state.caller = state.gate.admit(request.headers.get("authorization"), address)
            return await handler(request)

        return guarded


def _caller(request: Request) -> Caller:
    """Who asks (for the generation queue's fair share), and how to tell that they hung up."""

    async def gone() -> None:
        # The body has been read: the next message is the disconnect (or the end of the response).
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return Caller(request.state.caller, gone)


def _model(request: Request, model_id: str, *, want_embedding: bool = False) -> ServedModel | None:
    state: ServerState = request.app.state.adaptlab
    catalog = state.catalog
    if want_embedding and model_id == catalog.embedding_model:
        request.state.metric_model = model_id
        return None
    served = None if want_embedding else catalog.models.get(model_id)
    if served is None:
        known = [catalog.embedding_model] if want_embedding else sorted(catalog.models)
        shown = model_id if len(model_id) <= 80 else model_id[:80] + "…"
        raise ApiError(404, f"The model {shown!r} does not exist here — use one of: {', '.join(known)}.",
                       code="model_not_found", param="model")
    request.state.metric_model = model_id
    return served


# ---------------------------------------------------------------------------------------------- routes


def _add_routes(app: FastAPI, state: ServerState) -> None:
    settings = state.settings

    # HEAD too: load balancers and uptime checks probe with it (kept out of the schema: it has no body to
    # describe, and one route with both methods would give two operations one id).
    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", response_model=schemas.Health, tags=["operations"])
    async def healthz() -> schemas.Health:
        cache = "none"
        if any(m.kind == "cached" for m in state.catalog.models.values()):
            cache = "up" if state.project.cache.available else "down"
        return schemas.Health(models=sorted(state.catalog.models), cache=cache,
                              generation_queue=state.answering.generation.depth)

    guarded = APIRouter(route_class=GuardedRoute)

    @guarded.get("/metrics", response_class=Response, tags=["operations"], responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
        **{s: ERROR_RESPONSES[s] for s in (401, 429)}})
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @guarded.get("/v1/models", response_model=schemas.ModelList, tags=["openai"],
                 responses={s: ERROR_RESPONSES[s] for s in (401, 429)})
    async def list_models() -> schemas.ModelList:
        cards = [schemas.ModelCard(id=m.id, created=state.started, kind=m.kind)
                 for m in state.catalog.models.values()]
        cards.append(schemas.ModelCard(id=state.catalog.embedding_model, created=state.started, kind="embedding"))
        return schemas.ModelList(data=cards)

    @guarded.post("/v1/chat/completions", tags=["openai"], response_model=schemas.ChatCompletion, responses={
        200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
              "description": "A chat.completion, or with stream=true server-sent events whose data are "
                             "chat.completion.chunk JSON objects, then [DONE]"},
        **{s: ERROR_RESPONSES[s] for s in (400, 401, 404, 413, 429, 500, 503)}})
    async def chat_completions(body: schemas.ChatCompletionRequest, request: Request) -> Response:
        served = _model(request, body.model)
        assert served is not None
        question = _question(body, settings)
        received = time.perf_counter()
        params = client_parameters(body, served.strategy, settings, _tenant(request, settings))
        history = _history(body)
        condensed: Standalone | None = None
        if history:  # a follow-up: retrieval and the cache key see the standalone question, never the bare one
            with _work_errors(state):
                condensed = await state.answering.generation.run(
                    lambda: served.strategy.standalone(question, history), _caller(request))
            question = condensed.question
        with _work_errors(state):
            probe = await state.answering.probe(served, question, params.options)
        if body.stream and (probe is None or probe.hit is None):
            with _work_errors(state):
                events = state.answering.stream(served, question, seed=params.seed, options=params.options,
                                                caller=_caller(request), probe=probe)
                # Whatever fails before the first piece (a full queue, a prompt over the context window) is
                # still an HTTP error status; later failures can only be an event in the stream.
                first = await anext(events)
            status = "miss" if probe is not None else "none"  # "none": no cache, or bypassed by the sampling
            return StreamingResponse(
                _stream_events(state, served, body, params, first, events, received, condensed),
                media_type="text/event-stream", headers={"X-Adaptlab-Cache": status, "Cache-Control": "no-cache",
                                                         "X-Adaptlab-Strategy": served.strategy_name})
        with _work_errors(state):
            answer = await state.answering.answer(served, question, seed=params.seed, options=params.options,
                                                  caller=_caller(request), probe=probe)
        answer = with_standalone(answer, condensed)
        request.state.metric_cache = answer.cache_status
        cost, extension, usage = _finish(state, served, answer, params)
        headers = {"X-Adaptlab-Cache": answer.cache_status, "X-Adaptlab-Cost-USD": f"{cost:.8f}",
                   "X-Adaptlab-Strategy": served.strategy_name}
        if body.stream:
            # A cache hit: every event is known now, so they go as one body — a StreamingResponse would send
            # each separately (half the hit rate, bench_serve.py) for a client that gets them at once anyway.
            state.metrics.first_token.labels(served.id).observe(time.perf_counter() - received)
            return Response(b"".join(_sse_events(served, body, answer, extension, usage)),
                            media_type="text/event-stream",
                            headers={**headers, "Cache-Control": "no-cache"})
        completion = schemas.ChatCompletion(
            id=_completion_id(), created=int(time.time()), model=served.id, system_fingerprint=served.fingerprint,
            choices=[schemas.Choice(index=0, message=schemas.AssistantMessage(content=answer.text),
                                    finish_reason=_finish_reason(answer))],
            usage=usage, adaptlab=extension)
        return JSONResponse(completion.model_dump(mode="json"), headers=headers)

    @guarded.post("/v1/embeddings", response_model=schemas.EmbeddingList, tags=["openai"],
                  responses={s: ERROR_RESPONSES[s] for s in (400, 401, 404, 413, 429, 500)})
    async def embeddings(body: schemas.EmbeddingRequest, request: Request) -> schemas.EmbeddingList:
        _model(request, body.model, want_embedding=True)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if len(texts) > settings.max_embedding_inputs:
            raise ApiError(400, f"input holds {len(texts)} texts; send 1 to {settings.max_embedding_inputs} "
                           f"(serve.max_embedding_inputs).", code="invalid_input", param="input")
        # Blank texts were refused by the schema (NonBlank); no strip() check here: it would also refuse
        # control characters such as \x1e, which the schema allows.
        embedder = state.project.embedder
        if body.dimensions is not None and body.dimensions != embedder.dimension:
            raise ApiError(400, f"dimensions = {body.dimensions}, but {body.model} makes {embedder.dimension}-d "
                           f"vectors — leave dimensions out.", code="invalid_dimensions", param="dimensions")
        with _work_errors(state):
            # Usage counts what the model reads: it truncates each text at its max_tokens.
            vectors, tokens = await state.answering.lookup.run(lambda: (embedder.embed(texts), sum(
                min(embedder.count_tokens(t), embedder.max_tokens) for t in texts)))
        items = [schemas.EmbeddingItem(index=i, embedding=_encode(vector, body.encoding_format))
                 for i, vector in enumerate(np.asarray(vectors, dtype=np.float32))]
        return schemas.EmbeddingList(data=items, model=body.model,
                                     usage=schemas.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

    app.include_router(guarded)


# -------------------------------------------------------------------------------------------- helpers


def _question(body: schemas.ChatCompletionRequest, settings: ServeConfig) -> str:
    """The last user message: the strategy puts its own system prompt, examples and sources around it."""
    if len(body.messages) > settings.max_messages:
        raise ApiError(400, f"{len(body.messages)} messages; at most {settings.max_messages} are accepted "
                       f"(serve.max_messages).", code="too_many_messages", param="messages")
    # The request model guarantees a user message with non-blank text (schemas.UserMessage).
    last = next(m for m in reversed(body.messages) if isinstance(m, schemas.UserMessage))
    text = last.content if isinstance(last.content, str) else "\n".join(part.text for part in last.content)
    if len(text) > settings.max_question_chars:
        raise ApiError(400, f"The question is {len(text)} characters; at most {settings.max_question_chars} "
                       f"are answered (serve.max_question_chars).", code="question_too_long", param="messages")
    # Python's strip() also drops control characters (\x1e) that the schema's pattern counts as text.
    return text.strip() or text


def _history(body: schemas.ChatCompletionRequest) -> list[Turn]:
    """The user and assistant messages before the question, as the conversation the question follows (system,
    developer and tool messages are not the conversation: the strategy keeps its own instructions)."""
    last_user = max(i for i, m in enumerate(body.messages) if isinstance(m, schemas.UserMessage))
    turns: list[Turn] = []
    for message in body.messages[:last_user]:
        if message.role not in ("user", "assistant") or message.content is None:
            continue
        content = message.content if isinstance(message.content, str) else "\n".join(p.text for p in message.content)
        if content.strip():
            turns.append(Turn(role="user" if message.role == "user" else "assistant", content=content))
    return turns  # at most serve.max_messages; the strategy reads its last [conversation] max_turns


def _tenant(request: Request, settings: ServeConfig) -> str:
    """Whose cached answers this request may be served (serve.tenant)."""
    if settings.tenant == "key":
        return str(request.state.caller)  # "key:<digest>": keys are required with tenant = "key" (create_app)
    if settings.tenant == "header":
        tenant = request.headers.get(settings.tenant_header, "").strip()
        if not tenant:
            raise ApiError(400, f"This server scopes its answer cache per tenant: send the {settings.tenant_header} "
                           f"header (serve.tenant_header).", code="missing_tenant", param=settings.tenant_header)
        return tenant
    return ""


def _finish_reason(answer: Answer) -> Literal["stop", "length"]:
    return "length" if answer.finish_reason == "length" else "stop"


@contextmanager
def _work_errors(state: ServerState) -> Iterator[None]:
    """Turn what can go wrong while answering into API errors: a full lane, an upstream down, our own errors."""
    try:
        yield
    except LaneFull as exc:
        retry = {"Retry-After": str(exc.retry_after_s)}
        if exc.share is not None:
            state.metrics.rejected.labels(f"{exc.lane}_queue_share").inc()
            raise ApiError(429, f"Your share of the {exc.lane} queue is full: at most {exc.share} of your requests "
                           f"may wait or run at once (serve.max_queue_per_caller) — retry after "
                           f"{exc.retry_after_s} s.", code="queue_full", headers=retry) from None
        state.metrics.rejected.labels(f"{exc.lane}_queue_full").inc()
        raise ApiError(429, f"The server is busy: the {exc.lane} queue is full — retry after {exc.retry_after_s} "
                       f"s.", code="queue_full", headers=retry) from None
    except ClientGone:
        # Nobody reads this answer; the status (nginx's "client closed request") shows in the metrics.
        state.metrics.rejected.labels("client_gone").inc()
        raise ApiError(499, "The client closed the connection before generation started.",
                       code="client_closed_request") from None
    except ContextLengthError as exc:
        raise ApiError(400, f"{exc.detail} — send a shorter question (the strategy adds its own instructions "
                       f"and sources to it).", code="context_length_exceeded", param="messages") from None
    except BackendError as exc:
        raise ApiError(503, str(exc), code="upstream_unavailable") from None
    except AdaptlabError as exc:
        raise ApiError(500, str(exc), code="internal_error") from None


def _count(state: ServerState, served: ServedModel, answer: Answer, cost: float) -> None:
    metrics = state.metrics
    if served.kind == "cached":
        metrics.cache_result(served.id, answer.cache_status)
    if answer.cache_status == "hit":
        return
    metrics.tokens.labels(served.id, "prompt").inc(answer.usage.prompt_tokens)
    metrics.tokens.labels(served.id, "completion").inc(answer.usage.completion_tokens)
    if cost:
        metrics.cost.labels(served.id).inc(cost)


def _extension(state: ServerState, served: ServedModel, answer: Answer, cost: float,
               params: ClientParameters) -> schemas.AdaptlabExtension:
    citations = [_citation(c, state.settings.citation_paths, state.project_dir) for c in answer.citations]
    return schemas.AdaptlabExtension(
        strategy=served.strategy_name, cache=answer.cache_status, refused=answer.refused, citations=citations,
        cost_usd=cost, latency_ms=round(answer.latency_ms, 3), system_fingerprint=served.fingerprint,
        ignored_parameters=params.ignored, overridden_parameters=params.overridden,
        as_evaluated=params.as_evaluated, standalone_question=answer.standalone_question)


def _citation(citation: Citation, paths: str, project_dir: Path) -> schemas.CitationOut:
    """A citation as clients see it: its path relative to the project, or its name only — the server's own
    folders are not the clients' business (serve.citation_paths)."""
    shown = PurePath(citation.path)
    if paths == "absolute" or (paths == "relative" and not shown.is_absolute()):
        path = citation.path
    elif paths == "relative" and shown.is_relative_to(project_dir):
        path = shown.relative_to(project_dir).as_posix()
    else:  # "name", or a file outside the project folder
        path = shown.name
    return schemas.CitationOut.model_validate(citation, from_attributes=True).model_copy(update={"path": path})


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _finish(state: ServerState, served: ServedModel, answer: Answer,
            params: ClientParameters) -> tuple[float, schemas.AdaptlabExtension, schemas.Usage]:
    """What follows a whole answer, streamed or not: its price, the metrics, the adaptlab extension, the usage."""
    cost = state.pricer.cost(answer)
    _count(state, served, answer, cost)
    extension = _extension(state, served, answer, cost, params)
    usage = schemas.Usage(prompt_tokens=answer.usage.prompt_tokens, completion_tokens=answer.usage.completion_tokens,
                          total_tokens=answer.usage.prompt_tokens + answer.usage.completion_tokens)
    return cost, extension, usage


class _Chunks:
    """The chat.completion.chunk events of one answer (one id, one creation time)."""

    def __init__(self, served: ServedModel) -> None:
        self._served = served
        self._id, self._created = _completion_id(), int(time.time())

    def event(self, choices: list[schemas.ChunkChoice], **extra: Any) -> bytes:
        chunk = schemas.ChatCompletionChunk(id=self._id, created=self._created, model=self._served.id,
                                            system_fingerprint=self._served.fingerprint, choices=choices, **extra)
        return b"data: " + json.dumps(chunk.model_dump(mode="json", exclude_none=True)).encode() + b"\n\n"

    def role(self) -> bytes:
        return self.event([schemas.ChunkChoice(index=0, delta=schemas.DeltaMessage(role="assistant", content=""))])

    def text(self, text: str) -> bytes:
        return self.event([schemas.ChunkChoice(index=0, delta=schemas.DeltaMessage(content=text))])

    def end(self, answer: Answer, extension: schemas.AdaptlabExtension, usage: schemas.Usage,
            body: schemas.ChatCompletionRequest) -> list[bytes]:
        """The finish reason with the usage and the adaptlab extension, OpenAI's usage-only chunk when asked
        (stream_options.include_usage), [DONE]."""
        finish = self.event([schemas.ChunkChoice(index=0, delta=schemas.DeltaMessage(),
                                                 finish_reason=_finish_reason(answer))],
                            usage=usage, adaptlab=extension)
        asked = body.stream_options is not None and body.stream_options.include_usage
        usage_only = [self.event([], usage=usage)] if asked else []
        return [finish, *usage_only, b"data: [DONE]\n\n"]


def _sse_events(served: ServedModel, body: schemas.ChatCompletionRequest, answer: Answer,
                extension: schemas.AdaptlabExtension, usage: schemas.Usage) -> list[bytes]:
    """A whole answer's events (a cache hit), the same a streamed one ends up sending."""
    chunks = _Chunks(served)
    return [chunks.role(), *([chunks.text(answer.text)] if answer.text else []),
            *chunks.end(answer, extension, usage, body)]


async def _stream_events(state: ServerState, served: ServedModel, body: schemas.ChatCompletionRequest,
                         params: ClientParameters, first: AnswerEvent, rest: AsyncGenerator[AnswerEvent, None],
                         received: float, condensed: Standalone | None) -> AsyncIterator[bytes]:
    """Server-sent events: the role, each piece of text as the strategy produces it, then the end (_Chunks.end)
    with what is known only once the answer is whole (citations, cache status, cost). A failure after the first
    piece is an `error` event, as OpenAI sends it (the openai client raises it)."""
    chunks = _Chunks(served)

    async def events() -> AsyncIterator[AnswerEvent]:
        yield first
        async for item in rest:
            yield item

    yield chunks.role()
    answer: Answer | None = None
    first_piece = True
    try:
        with _work_errors(state):
            async for item in events():
                if isinstance(item, TextDelta):
                    if first_piece:
                        state.metrics.first_token.labels(served.id).observe(time.perf_counter() - received)
                        first_piece = False
                    yield chunks.text(item.text)
                else:
                    answer = with_standalone(item, condensed)
    except ApiError as exc:
        body_json = {"error": {"message": exc.message, "type": "server_error", "param": exc.param, "code": exc.code}}
        yield b"data: " + json.dumps(body_json).encode() + b"\n\n"
        return
    finally:
        await rest.aclose()  # the client hung up (or it failed): stop the generation
    assert answer is not None  # a strategy's stream ends with its Answer
    if first_piece:  # an empty answer: its first "token" is the end
        state.metrics.first_token.labels(served.id).observe(time.perf_counter() - received)
    _, extension, usage = _finish(state, served, answer, params)
    for end in chunks.end(answer, extension, usage, body):
        yield end


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
