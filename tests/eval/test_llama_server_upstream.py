"""An eval against a real OpenAI-compatible server process: llama-cpp-python's own server (`llama_cpp.server`)
on the bundled GGUF, started on 127.0.0.1, called by adaptlab's 'openai' generator with several answers in
flight. The server answers one request at a time; every case comes back, streamed, with its time to first token."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project

from adaptlab.config import GeneratorConfig
from adaptlab.eval.session import EvalRequest, evaluate
from adaptlab.models.openai_compat import OpenAIGenerator
from adaptlab.testing.fakes import HashEmbedder


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
    assert all(r.error is None and r.answer.strip() for r in results), [(r.error, r.answer) for r in results]
    # Counted: this server sends no usage in streams (the harness streams every answer), so these are estimates.
    assert all(r.prompt_tokens > 10 and r.completion_tokens > 0 for r in results)
    assert all(r.first_token_ms is not None and 0 < r.first_token_ms <= r.latency_ms for r in results)
    # Greedy decoding: the same case asked again gets the same answer, in flight with others or alone.
    again = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "p", concurrency=1))
    assert [r.answer for r in again.runs[0].results] == [r.answer for r in results]
