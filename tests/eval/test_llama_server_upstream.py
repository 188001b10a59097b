"""An eval against a real OpenAI-compatible server process: llama-cpp-python's own server (`llama_cpp.server`)
on the bundled GGUF, started on 127.0.0.1, called by adaptlab's 'openai' generator with several answers in
flight. The server answers one request at a time; every case comes back, with the server's own token counts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_project

from adaptlab.config import GeneratorConfig
from adaptlab.eval.session import EvalRequest, evaluate
from adaptlab.models.openai_compat import OpenAIGenerator
from adaptlab.models.registry import default_gguf_path
from adaptlab.testing.fakes import HashEmbedder

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra (sse-starlette, "
                    "starlette-context, pydantic-settings) is installed by scripts/setup.sh")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--n_threads", os.environ.get("ADAPTLAB_TEST_THREADS", "1"),
             "--model_alias", "smollm2"], stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_eval_against_llama_cpps_own_server_answers_every_case(llama_server: str, tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    questions = ["What is the capital of France?", "Name a primary colour.", "How many legs does a cat have?",
                 "What do bees make?", "What is 2 + 2?", "Which planet do we live on?"]
    cases.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answers": ["x"]}) + "\n"
                             for i, q in enumerate(questions)), encoding="utf-8")
    generator = OpenAIGenerator(GeneratorConfig(backend="openai", base_url=llama_server, model="smollm2",
                                                timeout_s=120))
    project = make_project(tmp_path / "home", embedder=HashEmbedder(64), generator=generator,
                           tracking={"enabled": False})
    report = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "o", concurrency=3))
    results = report.runs[0].results
    assert [r.case_id for r in results] == [f"q{i}" for i in range(6)]
    assert all(r.error is None and r.answer.strip() for r in results)
    assert all(r.prompt_tokens > 10 and r.completion_tokens > 0 for r in results)  # the server's own counts
    # Greedy decoding: the same case asked again gets the same answer, in flight with others or alone.
    again = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "p", concurrency=1))
    assert [r.answer for r in again.runs[0].results] == [r.answer for r in results]
