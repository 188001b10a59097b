"""Dataset converters to training data: SNIPS (text → {intent, slots} JSON, eval held out), CLINC150-style
intents and CSV, on the real bundled data; what they write loads as training data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from adaptlab.datasets.common import DataError
from adaptlab.datasets.intents import convert_csv, convert_intents
from adaptlab.datasets.snips import convert_snips, read_snips_file
from adaptlab.datasets.squad import BUNDLED_CLINC150_SAMPLE, BUNDLED_SNIPS
from adaptlab.errors import InputError
from adaptlab.eval.cases import load_cases
from adaptlab.eval.metrics import normalize_answer
from adaptlab.finetune.data import fingerprint, load_training_file

SNIPS = BUNDLED_SNIPS  # bundled with the package: tests never depend on ../shared
CLINC = BUNDLED_CLINC150_SAMPLE


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
