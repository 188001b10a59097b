"""Training data formats: validation (every bad line named, all at once), fingerprints, converters on the
real SNIPS and CLINC150 data, and token counts with the bundled model's real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from adaptlab.datasets.squad import BUNDLED_CLINC150_SAMPLE, BUNDLED_SNIPS
from adaptlab.errors import InputError
from adaptlab.eval.cases import load_cases
from adaptlab.eval.metrics import normalize_answer
from adaptlab.finetune.data import (
    DataError,
    TrainingExample,
    convert_csv,
    convert_intents,
    convert_snips,
    fingerprint,
    load_training_file,
    read_snips_file,
)

SNIPS = BUNDLED_SNIPS  # bundled with the package: tests never depend on ../shared
CLINC = BUNDLED_CLINC150_SAMPLE


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


# ------------------------------------------------------------------------------------------------- SNIPS


def _raw_snips(name: str, intent: str, index: int) -> tuple[str, dict]:
    """Utterance and slots of one record, computed here straight from the file (not via read_snips_file)."""
    data = json.loads((SNIPS / name).read_bytes().decode("utf-8", errors="replace"))
    chunks = data[intent][index]["data"]
    slots: dict = {}
    for chunk in chunks:
        if "entity" in chunk:
            slots.setdefault(chunk["entity"], []).append(chunk["text"].strip())
    return "".join(c["text"] for c in chunks).strip(), {k: v[0] if len(v) == 1 else v for k, v in slots.items()}


def test_read_snips_file_builds_slots_from_the_real_data() -> None:
    playmusic = read_snips_file(SNIPS / "validate_PlayMusic.json")
    assert len(playmusic) == 100
    first = playmusic[0]
    assert first.text == "can you put on Like A Hurricane by Paul Landers"
    assert first.target() == {"intent": "PlayMusic", "slots": {"album": "Like A Hurricane", "artist": "Paul Landers"}}
    # A slot named twice becomes the list of its values, in order.
    repeated = read_snips_file(SNIPS / "train_AddToPlaylist_full.json")[1125]
    text, slots = _raw_snips("train_AddToPlaylist_full.json", "AddToPlaylist", 1125)
    assert repeated.text == text and repeated.slots == slots
    assert repeated.slots["music_item"] == ["album", "album"]
    # This file stores an emoji as CESU-8 surrogates: it must come back as the real character.
    assert any("Pop Punk Perfection 🍕" in u.text for u in read_snips_file(SNIPS / "train_PlayMusic_full.json"))


def test_convert_snips_keeps_eval_held_out(tmp_path: Path) -> None:
    split = convert_snips(SNIPS, tmp_path, train_per_intent=8, eval_per_intent=5, fewshot_per_intent=2, seed=3)
    assert len(split.intents) == 7
    assert (split.train, split.eval, split.fewshot) == (56, 35, 14)
    assert all(counts == {"train": 8, "fewshot": 2, "eval": 5} for counts in split.per_intent.values())

    train = load_training_file(split.train_path)
    assert len(train) == 56 and {e.kind for e in train} == {"chat"}
    system = split.system_prompt_path.read_text().strip()
    assert all(e.messages[0] == {"role": "system", "content": system} for e in train)
    assert all(intent in system for intent in split.intents) and "JSON only" in system
    assert all(e.label == json.loads(e.target_text)["intent"] for e in train)
    first = train[0].target_text
    assert first == json.dumps(json.loads(first), separators=(",", ":"), ensure_ascii=False)  # compact
    assert list(json.loads(first)["slots"]) == sorted(json.loads(first)["slots"])

    cases = load_cases(split.eval_path)
    schema = json.loads(split.schema_path.read_text())
    validator = Draft202012Validator(schema)
    fewshot = [json.loads(line) for line in split.fewshot_path.read_text().splitlines()]
    assert len(cases) == 35 and len(fewshot) == 14
    for case in cases:
        assert case.schema == schema and not list(validator.iter_errors(case.expected_json))
        assert case.tags == ("snips", case.label) and case.expected_json["intent"] == case.label
        # Every eval case is a record of the VALIDATE file its id names, with the right slots.
        intent, index = case.case_id.split("-")[1], int(case.case_id.split("-")[2])
        text, slots = _raw_snips(f"validate_{intent}.json", intent, index)
        assert case.question == text and case.expected_json["slots"] == slots
    eval_texts = {normalize_answer(c.question) for c in cases}
    seen = [e.input_text for e in train] + [f["question"] for f in fewshot]
    assert not eval_texts & {normalize_answer(t) for t in seen}
    assert len({normalize_answer(t) for t in seen}) == len(seen)  # no repeats within train + few-shot
    assert all(json.loads(f["answer"])["intent"] in split.intents for f in fewshot)
    assert [json.loads(f["answer"])["intent"] for f in fewshot[:7]] == list(split.intents)  # round-robin

    again = convert_snips(SNIPS, tmp_path / "again", train_per_intent=8, eval_per_intent=5, fewshot_per_intent=2,
                          seed=3)
    assert fingerprint(again.train_path) == fingerprint(split.train_path)  # seeded: reproducible


def test_convert_snips_without_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no train_<Intent>_full.json"):
        convert_snips(tmp_path, tmp_path / "out")


# ------------------------------------------------------------------------------------- intents and CSV


def test_convert_intents_on_clinc150(tmp_path: Path) -> None:
    out = tmp_path / "clinc.jsonl"
    assert convert_intents(CLINC, out, split="train", limit=40, seed=1) == 40
    examples = load_training_file(out)
    labels = {e.label for e in examples}
    assert len(labels) > 20  # shuffled: not the first intent's block of the file
    system = examples[0].messages[0]["content"]
    assert all(e.messages[0]["content"] == system for e in examples)
    assert system.count(", ") == 149  # all 150 train labels listed, whatever the limit
    assert all(e.target_text == e.label for e in examples)
    with pytest.raises(InputError, match="no split 'nope'"):
        convert_intents(CLINC, out, split="nope")


def test_convert_csv_writes_chat_and_collects_every_bad_row(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text("question,reply,intent\nhi,hello,greet\n\"a, b\",c,other\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert convert_csv(source, out, prompt_column="question", completion_column="reply", label_column="intent",
                       system_prompt="Be kind.") == 2
    first, second = load_training_file(out)
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    assert (second.input_text, second.target_text, second.label) == ("a, b", "c", "other")

    bad = tmp_path / "bad.csv"
    bad.write_text("question,reply\n,x\nok,fine\ny,\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        convert_csv(bad, tmp_path / "never.jsonl", prompt_column="question", completion_column="reply")
    assert [(p.line, p.reason) for p in caught.value.problems] == [(2, "empty 'question'"), (4, "empty 'reply'")]
    assert not (tmp_path / "never.jsonl").exists()
    with pytest.raises(InputError, match="no column 'answer'"):
        convert_csv(bad, tmp_path / "never.jsonl", prompt_column="question", completion_column="answer")


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
