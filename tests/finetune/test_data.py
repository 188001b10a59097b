"""Training data formats: validation (every bad line named, all at once), fingerprints, and token counts with
the bundled model's real tokenizer. The converters that write training data are tested in
tests/datasets/test_converters.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptlab.datasets.common import DataError
from adaptlab.errors import InputError
from adaptlab.finetune.data import TrainingExample, fingerprint, load_training_file


def chat(user: str, reply: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}], **extra}


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def problems_by_line(error: DataError) -> dict[int, str]:
    found: dict[int, str] = {}
    for problem in error.problems:
        found[problem.line] = found.get(problem.line, "") + " | " + problem.reason
    return found


# ----------------------------------------------------------------------------------------------- formats


def test_the_three_formats_load_and_round_trip(tmp_path: Path) -> None:
    chat_file = write_lines(tmp_path / "chat.jsonl", [
        {"id": 7, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Weather?"},
                               {"role": "assistant", "content": "Sunny"}], "label": "smalltalk", "tags": ["a"]},
    ])
    completion_file = write_lines(tmp_path / "completion.jsonl", [{"prompt": "2+2=", "completion": "4"}])
    preference_file = write_lines(tmp_path / "preference.jsonl", [
        {"prompt": "Say hi", "chosen": "Hello!", "rejected": "Go away."},
        {"prompt": [{"role": "system", "content": "Polite."}, {"role": "user", "content": "Greet me"}],
         "chosen": "Good morning!", "rejected": "What?"},
    ])

    [example] = load_training_file(chat_file)
    assert (example.kind, example.example_id, example.label, example.line) == ("chat", "7", "smalltalk", 1)
    assert example.input_text == "Weather?" and example.target_text == "Sunny"
    [completion] = load_training_file(completion_file)
    assert completion.kind == "completion" and completion.example_id == "completion:1"
    assert (completion.input_text, completion.target_text) == ("2+2=", "4")
    plain, conversational = load_training_file(preference_file)
    assert plain.kind == conversational.kind == "preference"
    assert plain.messages is None and plain.prompt == "Say hi" and plain.target_text == "Hello!"
    assert conversational.prompt is None and conversational.input_text == "Greet me"
    assert conversational.conversation("What?")[-1] == {"role": "assistant", "content": "What?"}

    for path in (chat_file, completion_file, preference_file):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert [e.to_record() for e in load_training_file(path)] == records
        assert fingerprint(load_training_file(path)) == fingerprint(path)


def test_every_problem_is_named_by_its_line_and_collected(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "train.jsonl", [
        chat("ok", "fine"),                                                          # 1
        '{"messages": [',                                                            # 2 bad JSON
        {"messages": [{"role": "assistant", "content": "no question"}]},             # 3 no user turn
        chat("   ", "empty user"),                                                   # 4 empty content
        {"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]},  # 5 bad role
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                      {"role": "user", "content": "c"}]},                            # 6 last is user
        {"prompt": "a completion", "completion": "in a chat file"},                  # 7 mixed formats
        {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "late"},
                      {"role": "assistant", "content": "b"}]},                       # 8 system not first
        {"question": "eval line?", "answers": ["x"]},                                # 9 unknown format
        {"messages": [{"content": "no role"}, {"role": "assistant", "content": "b"}]},  # 10 missing role
        chat("typo", "key", lable="x"),                                              # 11 unknown key
        chat("ok too", "fine", id="dup"),                                            # 12
        chat("again", "fine", id="dup"),                                             # 13 duplicate id
    ])
    with pytest.raises(DataError) as caught:
        load_training_file(path)
    found = problems_by_line(caught.value)
    assert sorted(found) == list(range(2, 12)) + [13]
    assert "invalid JSON" in found[2]
    assert "no user turn" in found[3]
    assert "content empty" in found[4]
    assert "bad role 'bot'" in found[5]
    assert "last turn is 'user'" in found[6]
    assert "prompt/completion record in a chat file (line 1" in found[7]
    assert "system turn after the first" in found[8]
    assert "unknown format" in found[9]
    assert "missing 'role'" in found[10]
    assert "unknown key 'lable'" in found[11]
    assert "duplicate id 'dup'" in found[13]
    assert isinstance(caught.value, InputError)
    message = str(caught.value)
    assert f"{path}:5: " in message and "13 problems" in message  # lines 5 and 10 also lack a user turn
    hints: dict[int, str] = {}
    for problem in caught.value.problems:
        hints[problem.line] = hints.get(problem.line, "") + " | " + problem.fix
    assert "'assistant'" in hints[5]  # 'bot' → suggests 'assistant'
    assert "eval-cases or few-shot" in hints[9]
    assert "did you mean 'label'" in hints[11]


def test_preference_rules(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "prefs.jsonl", [
        {"prompt": "p", "chosen": "same", "rejected": "same "},                      # 1 chosen == rejected
        {"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
         "chosen": "x", "rejected": "y"},                                           # 2 conversation ends in assistant
        {"prompt": "p", "chosen": "x"},                                              # 3 no rejected
        {"prompt": "p", "chosen": "x", "rejected": "y"},                             # 4 fine
    ])
    with pytest.raises(DataError) as caught:
        load_training_file(path)
    found = problems_by_line(caught.value)
    assert sorted(found) == [1, 2, 3]
    assert "'chosen' and 'rejected' are the same" in found[1]
    assert "last turn is 'assistant', not 'user'" in found[2]
    assert "missing 'rejected'" in found[3]


def test_too_long_examples_are_problems_with_a_token_counter(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [chat("short", "ok"), chat("long " * 50, "ok"), chat("x", "y")])

    def words(example: TrainingExample) -> int:  # a fake counter: one token per word
        return sum(len(m["content"].split()) for m in example.conversation())

    assert len(load_training_file(path, token_counter=words)) == 3  # no limit: nothing to flag
    with pytest.raises(DataError) as caught:
        load_training_file(path, token_counter=words, max_tokens=20)
    [problem] = caught.value.problems
    assert problem.line == 2
    assert problem.reason == "51 tokens after the chat template, longer than the model's context of 20"


def test_an_empty_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no training examples"):
        load_training_file(write_lines(tmp_path / "empty.jsonl", ["", "# only a comment"]))


def test_fingerprint_ignores_whitespace_and_key_order_but_not_content(tmp_path: Path) -> None:
    compact = write_lines(tmp_path / "a.jsonl", [chat("hi", "hello"), {"prompt": "p", "completion": "c"}])
    spaced = tmp_path / "b.jsonl"  # other spacing, key order and blank lines; same records
    spaced.write_text("\n" + json.dumps(chat("hi", "hello"), separators=(" , ", " : ")) + "\n\n"
                      + '{ "completion": "c",   "prompt": "p" }\n', encoding="utf-8")
    edited = write_lines(tmp_path / "c.jsonl", [chat("hi", "hello!"), {"prompt": "p", "completion": "c"}])
    reordered = write_lines(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c"}, chat("hi", "hello")])
    assert fingerprint(compact) == fingerprint(spaced)
    assert fingerprint(compact) != fingerprint(edited)
    assert fingerprint(compact) != fingerprint(reordered)
    assert len(fingerprint(compact)) == 64 and fingerprint(compact, short=True) == fingerprint(compact)[:12]


# ------------------------------------------------------------------------------------------------ tokens


@pytest.fixture(scope="module")
def token_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tokenizer-cache")


def test_chat_token_counter_on_the_bundled_gguf(token_cache: Path) -> None:
    from adaptlab.finetune.tokens import ChatTokenCounter

    examples = [
        TrainingExample("a", "chat", messages=({"role": "user", "content": "What is the capital of France?"},
                                               {"role": "assistant", "content": "Paris."})),
        TrainingExample("b", "completion", prompt="Add two and two.", completion="Four."),
        TrainingExample("c", "preference", prompt="Greet me.", chosen="Hello there, how are you today?",
                        rejected="Hi."),
    ]
    counter = ChatTokenCounter("", cache_dir=token_cache)
    counts = [counter(e) for e in examples]
    assert counter.loaded_from == "gguf"
    words = sum(len(m["content"].split()) for m in examples[0].conversation())
    assert counts[0] > words + 10  # the template adds role markers and SmolLM2's default system prompt
    # Preference: the longer reply counts.
    longer = TrainingExample("d", "completion", prompt="Greet me.", completion="Hello there, how are you today?")
    assert counts[2] == counter(longer)
    assert list(token_cache.glob("tokenizer-*/tokenizer_config.json"))

    cached = ChatTokenCounter("", cache_dir=token_cache)
    assert [cached(e) for e in examples] == counts
    assert cached.loaded_from == "cache"
    assert cached.load_seconds < counter.load_seconds

    # Any Hugging Face directory works as a base too (here: the cached tokenizer's own folder).
    directory = ChatTokenCounter(next(token_cache.glob("tokenizer-*")))
    assert [directory(e) for e in examples] == counts and directory.loaded_from == "directory"
