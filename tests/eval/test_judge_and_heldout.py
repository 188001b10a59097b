"""LLM-as-judge against a real local OpenAI-compatible HTTP server (cached verdicts), and the held-out check."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adaptlab.config import JudgeConfig
from adaptlab.errors import BackendError
from adaptlab.eval.cases import EvalCase
from adaptlab.eval.heldout import SeenText, find_overlaps, training_questions
from adaptlab.eval.judge import Judge, parse_verdict


class _JudgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        user = body["messages"][-1]["content"]
        content = self.server.reply(user)  # type: ignore[attr-defined]
        payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def judge_server(monkeypatch) -> Iterator[ThreadingHTTPServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    httpd.requests = []  # type: ignore[attr-defined]
    # A judge that gives 5 when the answer contains "1932", else 2 — and explains in prose around the JSON.
    httpd.reply = lambda user: ('Verdict: {"score": 5, "reason": "matches"}' if "ANSWER:\n1932" in user  # type: ignore[attr-defined]
                                else '{"score": 2, "reason": "wrong year"}')
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_judge_scores_through_the_server_and_never_pays_twice(judge_server, tmp_path: Path) -> None:
    config = JudgeConfig(enabled=True, base_url=f"http://127.0.0.1:{judge_server.server_address[1]}/v1",
                         model="judge-model", timeout_s=5)
    judge = Judge(config, tmp_path / "judge.db")
    assert judge.score("When did it open?", "1932", ["1932"]) == 1.0  # (5 - 1) / 4
    assert judge.score("When did it open?", "1930", ["1932"]) == 0.25  # (2 - 1) / 4
    assert judge.score("When did it open?", "1932", ["1932"]) == 1.0
    assert len(judge_server.requests) == 2 and judge.cache_hits == 1
    request = judge_server.requests[0]
    assert request["model"] == "judge-model" and request["temperature"] == 0
    assert request["messages"][0]["content"] == config.rubric
    # A new process (new Judge on the same cache file) reuses the verdicts too.
    again = Judge(config, tmp_path / "judge.db")
    assert again.score("When did it open?", "1930", ["1932"]) == 0.25 and len(judge_server.requests) == 2
    # Another rubric is another question: it is asked.
    stricter = Judge(config.model_copy(update={"rubric": "Be strict."}), tmp_path / "judge.db")
    stricter.score("When did it open?", "1930", ["1932"])
    assert len(judge_server.requests) == 3


def test_judge_needs_a_model_name(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="eval.judge.model"):
        Judge(JudgeConfig(enabled=True), tmp_path / "j.db")


def test_parse_verdict() -> None:
    assert parse_verdict('{"score": 4, "reason": "ok"}').score == 4.0
    assert parse_verdict("I'd give it a 3 out of 5.").score == 3.0
    assert parse_verdict("no idea").score is None
    assert parse_verdict('{"score": 9}').score is None  # out of range, and no other digit 1-5


def case(case_id: str, question: str) -> EvalCase:
    return EvalCase(case_id=case_id, question=question, answers=("x",))


def test_exact_and_near_duplicates_are_found_and_distinct_questions_are_not() -> None:
    seen = [SeenText("What is the incubation period of COVID-19?", "few-shot"),
            SeenText("How is the virus transmitted between people?", "train.jsonl:4")]
    cases = [case("a", "what is the incubation period of covid-19"),     # exact after normalisation
             case("b", "How is the virus transmitted between the people?"),  # near: the article is dropped → exact
             # 'the' is dropped: 6 shared words, 7 in the union → 6/7
             case("c", "How is this virus transmitted between people?"),
             case("d", "Which vaccine was approved first?")]
    found = {o.case_id: o for o in find_overlaps(cases, seen, threshold=0.7)}
    assert set(found) == {"a", "b", "c"}
    assert found["a"].exact and found["a"].seen.source == "few-shot"
    assert not found["c"].exact and found["c"].similarity == pytest.approx(6 / 7)
    assert set(o.case_id for o in find_overlaps(cases, seen, threshold=0.9)) == {"a", "b"}


def test_training_questions_reads_common_formats(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([
        json.dumps({"question": "q1", "answer": "a"}),
        json.dumps({"prompt": "q2", "completion": "a"}),
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q3"}]}),
        "",
    ]), encoding="utf-8")
    seen = training_questions(path)
    assert [s.text for s in seen] == ["q1", "q2", "q3"]
    assert seen[2].source == "training file train.jsonl:3"
    path.write_text('{"question": "q1"}\nnot json\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"train\.jsonl:2"):
        training_questions(path)
