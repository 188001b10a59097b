"""The /admin routes: LoRA adapters added to and removed from a running server.

POST /admin/adapters {"name", "adapter", "like"} serves `adapter` as model <prefix><name>: a fine-tuned strategy
with the settings of the configured strategy `like`, on the shared base of its generator (models/adapters.py).
DELETE /admin/adapters/{name} stops serving it and frees its adapter; GET /admin/adapters lists the fine-tuned
models served, with whether their adapter is loaded now. Additions live as long as the process.

Admin keys are separate from the client keys: they come from $<serve.admin_keys_env> only, a client key is no
admin key, and without admin keys the routes do not exist (404, like any unknown path).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from adaptlab.config import (
    FinetunedRagStrategyConfig,
    FinetunedStrategyConfig,
    PromptStrategyConfig,
    RagStrategyConfig,
    StrategyConfig,
)
from adaptlab.errors import AdaptlabError, BackendError, ModelNotFoundError
from adaptlab.models.adapters import lora_problem
from adaptlab.serve.api_errors import ApiError
from adaptlab.serve.security import LimitedKeys, load_admin_keys
from adaptlab.serve.service import EMBEDDING_MODEL, build_served_model

if TYPE_CHECKING:
    from adaptlab.serve.app import ServerState

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ADMIN_ERRORS = {status: {"description": text} for status, text in {
    400: "Bad input: the message names the field and the fix", 401: "Missing or invalid admin key",
    404: "No adapter of that name was added", 429: "Too many failed admin authentications"}.items()}


class AdapterRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # refused by the route, with the field's name (pydantic's says none)

    name: str = Field(description="Served as model <serve.model_prefix><name>: letters, digits, '.', '_', '-'.")
    adapter: str = Field(description="Path of the GGUF LoRA adapter on the server (`adaptlab export` writes one); "
                         "relative paths are relative to the project folder.")
    like: str = Field("prompt", description="The configured strategy whose settings (prompt, generator, retrieval) "
                      "the new model takes: 'prompt', or a fine-tuned (or rag) strategy's name.")


class AdapterInfo(BaseModel):
    name: str
    model: str = Field(description="The model id clients send.")
    adapter: str
    kind: str
    generator: str = Field(description="Its [generators.NAME] ('' is [generator]): the base it is applied on.")
    like: str | None = Field(description="The strategy it copies (null for one from adaptlab.toml).")
    source: Literal["admin", "config"]
    loaded: bool = Field(description="Whether the adapter is in memory now (else it loads on its next request).")


class AdapterList(BaseModel):
    object: Literal["list"] = "list"
    max_loaded_adapters: int
    data: list[AdapterInfo]


class AdapterDeleted(BaseModel):
    name: str
    model: str
    deleted: bool = True
    unloaded: bool = Field(description="Whether its adapter was in memory (and is now freed).")


@dataclass(frozen=True)
class _Added:
    name: str
    model: str
    adapter: Path
    like: str
    section: FinetunedStrategyConfig | FinetunedRagStrategyConfig


def install_admin(app: FastAPI, state: ServerState) -> None:
    """Add the /admin routes to `app` when admin keys are configured ($<serve.admin_keys_env>); else nothing."""
    keys = load_admin_keys(state.settings)
    if not keys.enabled:
        return
    registry = _Registry(app, state)
    # A missing or wrong admin key is 401 and counts toward serve.auth_failure_limit per address, apart from the
    # client keys' count (failed client authentications do not block an admin, nor the other way).
    gate = LimitedKeys(keys, state.settings, state.metrics, kind="admin",
                       invalid_key=f"Missing or invalid admin key — send 'Authorization: Bearer <key>' with a key "
                                   f"listed in ${state.settings.admin_keys_env} (client API keys are not admin keys).")
    router = APIRouter(route_class=_admin_route(gate), prefix="/admin", tags=["admin"])

    @router.get("/adapters", response_model=AdapterList, responses={s: _ADMIN_ERRORS[s] for s in (401, 429)})
    async def list_adapters() -> AdapterList:
        return registry.listing()

    @router.post("/adapters", response_model=AdapterInfo, status_code=201,
                 responses={s: _ADMIN_ERRORS[s] for s in (400, 401, 429)})
    async def add_adapter(body: AdapterRequest) -> AdapterInfo:
        return await registry.add(body)

    @router.delete("/adapters/{name}", response_model=AdapterDeleted,
                   responses={s: _ADMIN_ERRORS[s] for s in (400, 401, 404, 429)})
    async def remove_adapter(name: str) -> AdapterDeleted:
        return await registry.remove(name)

    app.include_router(router)


# ------------------------------------------------------------------------------------------------ who


def _admin_route(gate: LimitedKeys) -> type[APIRoute]:
    class AdminRoute(APIRoute):
        """The admin key is checked before the body is read or parsed (as the client routes do)."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def admitted(request: Request) -> Response:
                gate.identify(request.headers.get("authorization"),
                              request.client.host if request.client else "unknown")
                return await handler(request)

            return admitted

    return AdminRoute


# ------------------------------------------------------------------------------------------------ what


class _Registry:
    """The adapters added at run time, and how they join and leave the catalog (one change at a time)."""

    def __init__(self, app: FastAPI, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.added: dict[str, _Added] = {}
        self.changing = asyncio.Lock()

    async def add(self, body: AdapterRequest) -> AdapterInfo:
        async with self.changing:
            project, prefix = self.state.project, self.state.settings.model_prefix
            extra = next(iter(body.model_extra or {}), None)
            if extra is not None:
                raise _bad(extra, f"{extra!r} is not a field of this request — send name, adapter and like.")
            name = body.name.strip()
            if not _NAME.match(name):
                raise _bad("name", f"name = {body.name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting "
                                   f"with a letter or digit (the model is served as '{prefix}<name>').")
            if name in project.config.strategies or prefix + name in self.state.catalog.models \
                    or name == EMBEDDING_MODEL:
                raise _bad("name", f"name = {name!r} is taken: {prefix + name!r} is already served or configured "
                                   f"([strategies.{name}]) — choose another name, or DELETE /admin/adapters/{name} "
                                   f"first if it was added here.")
            adapter = self._adapter_path(body.adapter)
            section = self._section_like(body.like, adapter)
            try:
                # Builds the strategy and loads the adapter on the shared base (waiting for a running generation).
                served = await run_in_threadpool(build_served_model, project, name, section)
            except AdaptlabError as exc:
                # Loaded for nothing if the adapter did fit but the rest failed (a rag strategy without its index).
                await run_in_threadpool(project.unload_adapter, section.generator, adapter)
                if isinstance(exc, BackendError | ModelNotFoundError):
                    raise _bad("adapter", f"adapter = {body.adapter!r}: {exc}") from None
                raise _bad("like", f"A strategy like {body.like!r} cannot be built with this adapter: {exc}") from None
            self.state.catalog.add(served)
            self.added[name] = _Added(name, served.id, adapter, body.like, section)
            self.app.openapi_schema = None  # the served model ids are in the schema
            return self._info(self.added[name])

    async def remove(self, name: str) -> AdapterDeleted:
        async with self.changing:
            added = self.added.get(name)
            if added is None:
                if name in self.state.project.config.strategies:
                    raise _bad("name", f"{name!r} is configured in adaptlab.toml ([strategies.{name}]), not added "
                                       f"here — remove it there and restart the server.")
                raise ApiError(404, f"No adapter named {name!r} was added — GET /admin/adapters lists them.",
                               code="adapter_not_found", param="name")
            self.state.catalog.remove(added.model)
            del self.added[name]
            self.app.openapi_schema = None
            # A request already answering with it finishes first (the base's lock); a later use would load it again.
            unloaded = await run_in_threadpool(self.state.project.unload_adapter, added.section.generator,
                                               added.adapter)
            return AdapterDeleted(name=name, model=added.model, unloaded=unloaded)

    def listing(self) -> AdapterList:
        config = self.state.project.config
        entries: list[AdapterInfo] = []
        for model in self.state.catalog.models.values():
            added = self.added.get(model.strategy_name)
            if added is not None and added.model == model.id:
                entries.append(self._info(added))
                continue
            section = config.strategies.get(model.strategy_name)
            if isinstance(section, FinetunedStrategyConfig | FinetunedRagStrategyConfig) and section.adapter \
                    and self.state.project.generator_settings(section.generator).backend == "llama_cpp":
                adapter = config.resolve_path(section.adapter)
                entries.append(AdapterInfo(
                    name=model.strategy_name, model=model.id, adapter=str(adapter), kind=model.kind,
                    generator=section.generator, like=None, source="config",
                    loaded=self.state.project.adapter_loaded(section.generator, adapter)))
        return AdapterList(max_loaded_adapters=self.state.settings.max_loaded_adapters,
                           data=sorted(entries, key=lambda entry: entry.model))

    def _info(self, added: _Added) -> AdapterInfo:
        return AdapterInfo(name=added.name, model=added.model, adapter=str(added.adapter), kind=added.section.kind,
                           generator=added.section.generator, like=added.like, source="admin",
                           loaded=self.state.project.adapter_loaded(added.section.generator, added.adapter))

    def _adapter_path(self, raw: str) -> Path:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = self.state.project_dir / path
        if not raw.strip() or not path.is_file():
            raise _bad("adapter", f"adapter = {raw!r}: no file at {path} — give the path of a GGUF LoRA adapter on "
                                  f"the server (relative paths start at the project folder {self.state.project_dir}); "
                                  f"`adaptlab export` writes one.")
        problem = lora_problem(path)
        if problem:
            raise _bad("adapter", f"adapter = {raw!r}: {problem} — give a GGUF LoRA adapter written by `adaptlab "
                                  f"export` (or `adaptlab train ... --export`).")
        return path.resolve()

    def _section_like(self, like: str, adapter: Path) -> FinetunedStrategyConfig | FinetunedRagStrategyConfig:
        """The settings of the strategy `like` names, as a fine-tuned strategy with `adapter`."""
        project = self.state.project
        source: StrategyConfig | None = project.config.strategies.get(like)
        if source is None and like in self.added:
            source = self.added[like].section
        usable = sorted(n for n, s in project.config.strategies.items()
                        if isinstance(s, PromptStrategyConfig | RagStrategyConfig))
        if not isinstance(source, PromptStrategyConfig | RagStrategyConfig):
            problem = "names no strategy" if source is None else f"is a {source.kind} strategy"
            raise _bad("like", f"like = {like!r} {problem} — use 'prompt' or one of the configured strategies of "
                               f"kind prompt, finetuned, rag or finetuned_rag: {', '.join(usable)}.")
        fields = source.model_dump(exclude={"kind", "adapter", "served_model"})
        target = FinetunedStrategyConfig if isinstance(source, PromptStrategyConfig) else FinetunedRagStrategyConfig
        section = target.model_validate({**fields, "adapter": str(adapter)})
        backend = project.generator_settings(section.generator).backend
        if backend != "llama_cpp":
            raise _bad("like", f"like = {like!r} answers with generator {section.generator or '[generator]'!r}, whose "
                               f"backend is {backend!r}: an adapter file is loaded by llama.cpp — name a strategy on a "
                               f"llama_cpp generator.")
        return section


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, message, code="invalid_adapter_request", param=param)
