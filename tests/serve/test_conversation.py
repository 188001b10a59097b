"""Follow-up questions (strategies/conversation.py): made standalone from the conversation before retrieval and
the cache key — by the strategy's model or by the rule — in serve (a two-turn conversation retrieves for the
standalone question; a bare follow-up is never served the cached answer of the conversation's) and in the
harness (multi-turn cases are answered and scored as serve answers them)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from conftest import make_project

from adaptlab.config import ConversationConfig
from adaptlab.eval.cases import load_cases
from adaptlab.eval.session import EvalRequest, evaluate
from adaptlab.models.base import ChatMessage
from adaptlab.strategies.conversation import REWRITE_PROMPT, FollowUpCondenser
from adaptlab.testing.fakes import FakeGenerator, HashEmbedder
from adaptlab.types import Generation, Turn, Usage

HISTORY = (Turn("user", "What do bees make?"), Turn("assistant", "Bees make honey."))


class RewritingGenerator(FakeGenerator):
    """Rewrites a follow-up like a model would (for the condense prompt), else answers with a fixed text."""

    def __init__(self, rewrite: str, answer: str = "An answer.") -> None:
        super().__init__(answer)
        self._rewrite = rewrite

    def chat(self, messages: Sequence[ChatMessage], **options) -> Generation:
        if messages[0]["content"] == REWRITE_PROMPT:
            self.calls.append(list(messages))
            self.call_options.append(options)
            return Generation(self._rewrite, Usage(40, 9), 1.0, self.name, "stop")
        return super().chat(messages, **options)


def test_the_rule_and_the_model_make_a_follow_up_standalone():
    question = "Where do they keep it?"
    rule = FollowUpCondenser(ConversationConfig(condense="rule"), FakeGenerator())
    assert rule.standalone(question, HISTORY).question == "What do bees make? Where do they keep it?"
    model = RewritingGenerator("Where do bees keep their honey?\nextra line")
    standalone = FollowUpCondenser(ConversationConfig(), model).standalone(question, HISTORY)
    assert standalone.question == "Where do bees keep their honey?" and standalone.usage == Usage(40, 9)
    sent = model.calls[0][1]["content"]
    assert "user: What do bees make?" in sent and "assistant: Bees make honey." in sent and question in sent
    assert model.call_options[0]["temperature"] == 0.0
    # Nothing before the question, or condense off: the question itself, no model call.
    assert FollowUpCondenser(ConversationConfig(), model).standalone(question, ()).question == question
    assert FollowUpCondenser(ConversationConfig(condense="off"), model).standalone(question, HISTORY).question \
        == question
    assert len(model.calls) == 1
    # A model that writes nothing usable falls back to the rule (the context is never lost).
    empty = FollowUpCondenser(ConversationConfig(), RewritingGenerator("  \n ")).standalone(question, HISTORY)
    assert empty.question == "What do bees make? Where do they keep it?"


def test_only_the_last_max_turns_are_read():
    model = RewritingGenerator("q")
    many = tuple(Turn("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(10))
    FollowUpCondenser(ConversationConfig(max_turns=3), model).standalone("and then?", many)
    sent = model.calls[0][1]["content"]
    assert "turn 6" not in sent and all(f"turn {i}" in sent for i in (7, 8, 9))


def _serve_app(tmp_path, generator, **conversation):
    from test_serve_app import make_app

    from adaptlab.rag.index import ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.txt").write_text("Bees\n\nBees make honey and keep it in wax combs inside the hive.\n",
                                   encoding="utf-8")
    (docs / "volcanoes.txt").write_text("Volcanoes\n\nWhere do volcanoes form? Where plates meet and keep "
                                        "moving.\n", encoding="utf-8")
    app = make_app(tmp_path, generator=generator, answer={"min_relevance": 0.0}, retrieve={"top_k": 1},
                   conversation=conversation,
                   strategies={"rag": {"kind": "rag", "context_chunks": 1},
                               "cached": {"kind": "cached", "wraps": "rag", "mode": "exact"}})
    project = app.state.adaptlab.project
    ingest([docs], project.config, store=project.store, embedder=project.embedder)
    return app


def _chat(app, *requests):
    from test_serve_app import client, run

    async def go():
        async with client(app) as http:
            return [await http.post("/v1/chat/completions", json=body) for body in requests]

    return run(go())


def _follow_up(model: str, *, history: bool = True) -> dict:
    earlier = [{"role": "user", "content": "What do bees make?"}, {"role": "assistant", "content": "Honey."}]
    return {"model": model, "messages": [*(earlier if history else []),
                                         {"role": "user", "content": "Where do they keep it?"}]}


@pytest.mark.parametrize("condense", ["rule", "generator"])
def test_a_two_turn_conversation_retrieves_for_the_standalone_question(tmp_path, condense):
    generator = RewritingGenerator("Where do bees keep their honey?")
    app = _serve_app(tmp_path, generator, condense=condense)
    bare, follow_up = _chat(app, _follow_up("adaptlab-rag", history=False), _follow_up("adaptlab-rag"))
    answer_prompts = [call for call in generator.calls if call[0]["content"] != REWRITE_PROMPT]
    # Alone, "Where do they keep it?" shares its words with the volcano article; after the bee question it is
    # about bees, and the bee article is the source the model is given.
    assert "[1] Volcanoes" in answer_prompts[0][-1]["content"]
    assert "[1] Bees" in answer_prompts[1][-1]["content"]
    extension = follow_up.json()["adaptlab"]
    expected = ("What do bees make? Where do they keep it?" if condense == "rule"
                else "Where do bees keep their honey?")
    assert extension["standalone_question"] == expected and bare.json()["adaptlab"]["standalone_question"] is None
    if condense == "generator":  # the rewrite's tokens are part of the answer's cost
        assert follow_up.json()["usage"]["prompt_tokens"] >= 40


def test_the_cache_never_answers_a_follow_up_as_a_new_question(tmp_path):
    generator = RewritingGenerator("Where do bees keep their honey?")
    app = _serve_app(tmp_path, generator, condense="generator")
    first, bare, again, stream = _chat(app, _follow_up("adaptlab-cached"), _follow_up("adaptlab-cached", history=False),
                                       _follow_up("adaptlab-cached"), {**_follow_up("adaptlab-cached"), "stream": True})
    assert [r.json()["adaptlab"]["cache"] for r in (first, bare, again)] == ["miss", "miss", "hit"]
    final = [json.loads(line[6:]) for line in stream.text.split("\n\n") if line.startswith("data: {")][-1]
    assert final["adaptlab"]["cache"] == "hit" and final["adaptlab"]["standalone_question"] == \
        "Where do bees keep their honey?"


def test_the_harness_answers_and_scores_multi_turn_cases(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "follow", "question": "Where do they keep it?", "answers": ["honey"],
                                 "history": [{"role": "user", "content": "What do bees make?"},
                                             {"role": "assistant", "content": "Honey."}]}) + "\n" +
                     json.dumps({"id": "single", "question": "What do bees make?", "answers": ["honey"]}) + "\n",
                     encoding="utf-8")
    loaded = load_cases(cases)
    assert loaded[0].history == HISTORY[:1] + (Turn("assistant", "Honey."),) and loaded[1].history == ()
    assert json.loads(json.dumps(loaded[0].to_dict()))["history"][0] == {"role": "user",
                                                                         "content": "What do bees make?"}
    generator = RewritingGenerator("Where do bees keep their honey?", answer="In combs of honey.")
    project = make_project(tmp_path / "home", embedder=HashEmbedder(64), generator=generator,
                           tracking={"enabled": False})
    results = {r.case_id: r for r in evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "o"))
               .runs[0].results}
    assert results["follow"].standalone_question == "Where do bees keep their honey?"
    assert results["single"].standalone_question is None
    assert results["follow"].error is None and results["follow"].scores["token_f1"] > 0  # scored as any case
    answered = [call[-1]["content"] for call in generator.calls if call[0]["content"] != REWRITE_PROMPT]
    assert "Where do bees keep their honey?" in answered


@pytest.mark.parametrize("history, reason", [
    ("not a list", "'history' must be a list"),
    ([{"role": "system", "content": "x"}], r"history\[0\] must be"),
    ([{"role": "user", "content": "  "}], r"history\[0\] must be"),
])
def test_a_bad_history_names_the_line_and_the_fix(tmp_path, history, reason):
    from adaptlab.errors import InputError

    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"question": "q", "answers": ["a"], "history": history}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=reason) as raised:
        load_cases(cases)
    assert "cases.jsonl" in str(raised.value) and '"history": [{"role": "user"' in str(raised.value)
