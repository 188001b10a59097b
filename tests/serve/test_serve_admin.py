"""The /admin routes (serve/admin.py) over real HTTP (httpx's ASGI transport) with real llama.cpp, the bundled
SmolLM2 GGUF and real GGUF LoRA adapters: admin keys apart from client keys, adapters added and removed at run time
on the shared base, the LRU bound seen through GET /admin/adapters, and clear 400s for bad input."""

from __future__ import annotations

import asyncio
import gc

import httpx
import numpy as np
import pytest

from adaptlab.config import AdaptlabConfig
from adaptlab.models.registry import default_gguf_path
from adaptlab.project import Project
from adaptlab.serve.app import create_app
from adaptlab.serve.security import hash_key
from adaptlab.strategies.factory import build_strategy

ADMIN_ENV = "ADAPTLAB_TEST_ADMIN_KEYS"
ADMIN = "al-admin-key-0123456789"
CLIENT = "al-client-key-0123456789"
QUESTION = "What is the capital of France?"


def make_app(tmp_path, lora_gguf, *, admin_keys: str | None, max_loaded: int = 4, failure_limit: str = ""):
    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path / "home"), "embedder": {"backend": "hash"}, "generator": {"max_tokens": 12},
        "strategies": {"ft": {"kind": "finetuned", "adapter": str(lora_gguf(1))}},
        "serve": {"strategies": ["prompt", "ft"], "api_key_hashes": [hash_key(CLIENT)], "admin_keys_env": ADMIN_ENV,
                  "max_loaded_adapters": max_loaded, "auth_failure_limit": failure_limit},
    })
    with pytest.MonkeyPatch.context() as env:  # read once, when create_app installs the routes
        if admin_keys is None:
            env.delenv(ADMIN_ENV, raising=False)
        else:
            env.setenv(ADMIN_ENV, admin_keys)
        return create_app(config, project=Project(config))


def client(app, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers,
                             timeout=120)


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": QUESTION}]}


def separately_answered(tmp_path, lora_gguf, seed: int) -> str:
    """The answer of a fine-tuned strategy built alone in its own project (its own base, one adapter)."""
    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path / f"alone-{seed}"), "embedder": {"backend": "hash"}, "generator": {"max_tokens": 12},
        "strategies": {"alone": {"kind": "finetuned", "adapter": str(lora_gguf(seed))}}})
    return build_strategy(Project(config), "alone").answer(QUESTION).text


def test_without_admin_keys_the_admin_routes_do_not_exist(tmp_path, lora_gguf) -> None:
    app = make_app(tmp_path, lora_gguf, admin_keys=None)

    async def go():
        async with client(app, CLIENT) as http:
            return [await http.get("/admin/adapters"), await http.delete("/admin/adapters/ft"),
                    await http.post("/admin/adapters", json={"name": "x", "adapter": "a.gguf"}),
                    await http.get("/nothing-here")]

    *admin, unknown = asyncio.run(go())
    for response in admin:  # exactly what any unknown path answers
        assert (response.status_code, response.json()) == (404, unknown.json())


def test_admin_keys_are_checked_and_are_not_client_keys(tmp_path, lora_gguf) -> None:
    app = make_app(tmp_path, lora_gguf, admin_keys=f" {ADMIN} ,al-second-admin-key")

    async def go():
        results = {}
        for label, key in (("none", None), ("wrong", "al-wrong"), ("client", CLIENT), ("admin", ADMIN),
                           ("second", "al-second-admin-key")):
            async with client(app, key) as http:
                results[label] = await http.get("/admin/adapters")
                # The body is not parsed before the key is checked: a keyless bad body is 401, not 400.
                results[label + "-post"] = await http.post("/admin/adapters", content=b"{bad",
                                                           headers={"Content-Type": "application/json"})
        async with client(app, ADMIN) as http:
            results["admin-as-client"] = await http.get("/v1/models")
        return results

    results = asyncio.run(go())
    for label in ("none", "wrong", "client"):
        assert results[label].status_code == results[label + "-post"].status_code == 401, label
        assert results[label].json()["error"]["code"] == "invalid_api_key"
        assert ADMIN_ENV in results[label].json()["error"]["message"]
    assert results["admin"].status_code == results["second"].status_code == 200
    assert results["admin-post"].status_code == 400  # admitted, then the body is parsed
    assert results["admin-as-client"].status_code == 401  # an admin key is no client key
    listing = results["admin"].json()
    assert listing["max_loaded_adapters"] == 4
    assert [(e["name"], e["model"], e["source"], e["loaded"]) for e in listing["data"]] == [
        ("ft", "adaptlab-ft", "config", True)]


def test_failed_admin_keys_are_limited_per_address_apart_from_client_keys(tmp_path, lora_gguf) -> None:
    app = make_app(tmp_path, lora_gguf, admin_keys=ADMIN, failure_limit="2/minute")

    async def go():
        async with client(app, "al-wrong") as wrong, client(app, ADMIN) as admin, client(app, CLIENT) as user:
            return ([(await wrong.get("/admin/adapters")).status_code for _ in range(3)],
                    await admin.get("/admin/adapters"), (await user.get("/v1/models")).status_code)

    wrong, admin, user = asyncio.run(go())
    assert wrong == [401, 401, 429]
    assert admin.status_code == 429 and admin.json()["error"]["code"] == "too_many_auth_failures"  # a right key too
    assert user == 200  # the client routes count their own failures


def test_adapters_added_and_removed_at_run_time_share_the_base(tmp_path, lora_gguf) -> None:
    from llama_cpp import Llama

    expected = {seed: separately_answered(tmp_path, lora_gguf, seed) for seed in (1, 2)}
    app = make_app(tmp_path, lora_gguf, admin_keys=ADMIN, max_loaded=1)
    llamas_before = sum(type(o) is Llama for o in gc.get_objects())

    async def go():
        async with client(app, ADMIN) as admin, client(app, CLIENT) as user:
            added = await admin.post("/admin/adapters", json={"name": "tuned2", "adapter": str(lora_gguf(2)),
                                                              "like": "ft"})
            models = {m["id"] for m in (await user.get("/v1/models")).json()["data"]}
            schema_models = (await user.get("/openapi.json")).json()["components"]["schemas"][
                "ChatCompletionRequest"]["properties"]["model"]["enum"]
            answers, states = [], []
            for model in ("adaptlab-ft", "adaptlab-tuned2", "adaptlab-ft", "adaptlab-tuned2"):
                response = await user.post("/v1/chat/completions", json=chat(model))
                assert response.status_code == 200, response.text
                answers.append(response.json()["choices"][0]["message"]["content"])
                listing = (await admin.get("/admin/adapters")).json()["data"]
                states.append({e["name"]: e["loaded"] for e in listing})
            deleted = await admin.delete("/admin/adapters/tuned2")
            after = {
                "models": {m["id"] for m in (await user.get("/v1/models")).json()["data"]},
                "chat": await user.post("/v1/chat/completions", json=chat("adaptlab-tuned2")),
                "listing": (await admin.get("/admin/adapters")).json()["data"],
                "again": await admin.delete("/admin/adapters/tuned2"),
                "configured": await admin.delete("/admin/adapters/ft"),
            }
            return added, models, schema_models, answers, states, deleted, after

    added, models, schema_models, answers, states, deleted, after = asyncio.run(go())
    assert added.status_code == 201, added.text
    info = added.json()
    assert info | {"adapter": ""} == {"name": "tuned2", "model": "adaptlab-tuned2", "adapter": "",
                                      "kind": "finetuned", "generator": "", "like": "ft", "source": "admin",
                                      "loaded": True}
    assert info["adapter"] == str(lora_gguf(2).resolve())
    assert "adaptlab-tuned2" in models and "adaptlab-tuned2" in schema_models
    # Switching adapters on the one base answers as each adapter loaded alone would.
    assert answers == [expected[1], expected[2], expected[1], expected[2]]
    # max_loaded_adapters = 1: each use frees the other adapter (loaded again on its next request).
    assert states == [{"ft": True, "tuned2": False}, {"ft": False, "tuned2": True},
                      {"ft": True, "tuned2": False}, {"ft": False, "tuned2": True}]
    assert sum(type(o) is Llama for o in gc.get_objects()) == llamas_before  # the new model loaded no base
    assert deleted.status_code == 200 and deleted.json() == {"name": "tuned2", "model": "adaptlab-tuned2",
                                                             "deleted": True, "unloaded": True}
    assert "adaptlab-tuned2" not in after["models"]
    assert after["chat"].status_code == 404 and after["chat"].json()["error"]["code"] == "model_not_found"
    assert [e["name"] for e in after["listing"]] == ["ft"]
    assert after["again"].status_code == 404 and after["again"].json()["error"]["code"] == "adapter_not_found"
    assert after["configured"].status_code == 400 and "adaptlab.toml" in after["configured"].json()["error"]["message"]


def _wrong_shape_adapter(path) -> None:
    """A well-formed GGUF LoRA whose tensor does not fit SmolLM2 (llama.cpp refuses it; its metadata is fine)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    writer.add_tensor("blk.0.attn_v.weight.lora_a", np.zeros((8, 100), np.float32))
    writer.add_tensor("blk.0.attn_v.weight.lora_b", np.zeros((192, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_bad_adapter_requests_are_400s_naming_the_field_and_the_fix(tmp_path, lora_gguf) -> None:
    app = make_app(tmp_path, lora_gguf, admin_keys=ADMIN)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf" * 10)
    wrong_shape = tmp_path / "wrong.gguf"
    _wrong_shape_adapter(wrong_shape)
    good = str(lora_gguf(2))
    cases = {
        "missing file": ({"name": "a", "adapter": str(tmp_path / "nope.gguf")}, "adapter", "no file at"),
        "not a gguf": ({"name": "a", "adapter": str(junk)}, "adapter", "not a GGUF file"),
        "a model, not an adapter": ({"name": "a", "adapter": str(default_gguf_path())}, "adapter",
                                    "not a LoRA adapter"),
        "does not fit the base": ({"name": "a", "adapter": str(wrong_shape)}, "adapter", "do not fit this base"),
        "name taken": ({"name": "ft", "adapter": good}, "name", "is taken"),
        "builtin name": ({"name": "rag", "adapter": good}, "name", "is taken"),
        "bad name": ({"name": "a b/c", "adapter": good}, "name", "letters, digits"),
        "unknown like": ({"name": "a", "adapter": good, "like": "nope"}, "like", "names no strategy"),
        "no name": ({"adapter": good}, "name", "Field required"),
        "unknown field": ({"name": "a", "adapter": good, "scale": 2}, "scale", "not a field"),
    }

    async def go():
        async with client(app, ADMIN) as http:
            results = {label: await http.post("/admin/adapters", json=body) for label, (body, _, _) in cases.items()}
            results["listing"] = await http.get("/admin/adapters")
            return results

    results = asyncio.run(go())
    for label, (_, param, words) in cases.items():
        response = results[label]
        assert response.status_code == 400, (label, response.text)
        error = response.json()["error"]
        assert error["param"] == param and words in error["message"], (label, error)
    assert "adaptlab export" in results["a model, not an adapter"].json()["error"]["message"]
    assert "'prompt'" in results["unknown like"].json()["error"]["message"]
    assert [e["name"] for e in results["listing"].json()["data"]] == ["ft"]  # nothing was added
