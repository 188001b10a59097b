"""The prompt strategy: messages, few-shot selection, JSON-constrained decoding, and building from config."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from adaptlab.config import PromptStrategyConfig, load_config
from adaptlab.errors import ConfigError, InputError
from adaptlab.project import Project
from adaptlab.strategies.factory import build_strategy
from adaptlab.strategies.prompt import FewShotExample, PromptStrategy, load_examples
from adaptlab.testing.fakes import FakeGenerator, HashEmbedder

EXAMPLES = [
    FewShotExample("What colour is the sky on a clear day?", "blue"),
    FewShotExample("How many legs does a spider have?", "eight"),
    FewShotExample("What is the boiling point of water at sea level?", "100 °C"),
]


def strategy(generator: FakeGenerator, **config) -> PromptStrategy:
    return PromptStrategy("p", PromptStrategyConfig(**config), generator, examples=EXAMPLES,
                          embedder=HashEmbedder(64), max_tokens=16)


def test_without_examples_it_sends_system_prompt_and_question_only() -> None:
    generator = FakeGenerator("Paris")
    answer = strategy(generator, system_prompt="Be brief.").answer("Capital of France?", seed=7)
    assert generator.calls == [[{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Capital of France?"}]]
    assert generator.call_options == [{"json_schema": None, "seed": 7, "max_tokens": 16, "temperature": None,
                                       "top_p": None, "stop": None}]  # None: the configured sampling
    assert answer.text == "Paris" and answer.usage.prompt_tokens == 5 and not answer.citations  # 2 + 3 words
    assert answer.search_results == ()


def test_static_few_shot_shows_the_first_k_as_turns() -> None:
    generator = FakeGenerator("x")
    strategy(generator, few_shot_k=2).answer("How many wheels does a bicycle have?")
    roles = [m["role"] for m in generator.calls[0]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert generator.calls[0][1]["content"] == EXAMPLES[0].question
    assert generator.calls[0][4]["content"] == "eight"


def test_similar_few_shot_puts_the_nearest_example_last() -> None:
    generator = FakeGenerator("x")
    s = strategy(generator, few_shot_k=1, few_shot_selection="similar")
    s.answer("How many legs does an insect have?")
    assert generator.calls[0][1]["content"] == "How many legs does a spider have?"
    assert s.seen_questions() == [e.question for e in EXAMPLES]


def test_seen_questions_is_empty_when_no_examples_are_shown() -> None:
    assert strategy(FakeGenerator()).seen_questions() == []


def test_few_shot_k_without_examples_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="few_shot_path"):
        PromptStrategy("p", PromptStrategyConfig(few_shot_k=2), FakeGenerator(), max_tokens=8)


def test_load_examples_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "shots.jsonl"
    path.write_text('{"question": "a?", "answer": "b"}\n\n{"question": "c?"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"shots\.jsonl:3"):
        load_examples(path)
    path.write_text('{"question": "a?", "answer": {"k": 1}}\n', encoding="utf-8")
    assert load_examples(path) == [FewShotExample("a?", '{"k": 1}')]


def test_strategies_are_built_by_name_with_paths_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "shots.jsonl").write_text('{"question": "2+2?", "answer": "4"}\n', encoding="utf-8")
    (tmp_path / "out.json").write_text(json.dumps({"type": "object", "properties": {"n": {"type": "integer"}},
                                                   "required": ["n"]}), encoding="utf-8")
    config_path = tmp_path / "adaptlab.toml"
    config_path.write_text(
        f'home = "{tmp_path / "home"}"\n[strategies.arith]\nkind = "prompt"\nfew_shot_path = "shots.jsonl"\n'
        'few_shot_k = 1\njson_schema_path = "out.json"\nmax_tokens = 12\n', encoding="utf-8")
    generator = FakeGenerator('{"n": 5}')
    project = Project(load_config(config_path), generator=generator)
    built = build_strategy(project, "arith")
    built.answer("3+2?")
    assert generator.call_options[0]["json_schema"]["required"] == ["n"]
    assert generator.call_options[0]["max_tokens"] == 12
    assert built.describe()["few_shot_k"] == 1 and built.seen_questions() == ["2+2?"]
    assert {"prompt", "rag", "arith"} <= set(project.config.strategies)
    with pytest.raises(ConfigError, match=r"No strategy named 'nope'.*arith, prompt, rag"):
        build_strategy(project, "nope")


def test_a_bad_schema_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"type": "no-such-type"}', encoding="utf-8")
    (tmp_path / "adaptlab.toml").write_text(
        f'home = "{tmp_path / "home"}"\n[strategies.j]\nkind = "prompt"\njson_schema_path = "bad.json"\n')
    project = Project(load_config(tmp_path / "adaptlab.toml"), generator=FakeGenerator())
    with pytest.raises(InputError, match="not a valid JSON Schema"):
        build_strategy(project, "j")


def test_real_model_with_a_schema_always_returns_valid_json(tmp_path: Path) -> None:
    """llama.cpp compiles the schema to a grammar: even a 135M model cannot produce invalid output."""
    from adaptlab.config import GeneratorConfig
    from adaptlab.models.llama_cpp import LlamaCppGenerator

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"]}
    generator = LlamaCppGenerator(GeneratorConfig(max_tokens=48))
    s = PromptStrategy("j", PromptStrategyConfig(system_prompt="Extract the city and the number of days as JSON."),
                       generator, schema=schema, max_tokens=48)
    for question in ("Book me a hotel in Lyon for 3 days.", "I will stay in Oslo for two weeks."):
        answer = s.answer(question)
        value = json.loads(answer.text)
        jsonschema.validate(value, schema)
        assert answer.usage.completion_tokens > 0
