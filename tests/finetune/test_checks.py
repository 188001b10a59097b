"""`adaptlab data check`: duplicates, leakage across sets (file:line on both sides), format and label
consistency, the readiness verdict, the fixed copy, and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptlab.cli.main import app
from adaptlab.datasets.squad import BUNDLED_SNIPS
from adaptlab.errors import InputError
from adaptlab.finetune.checks import (
    CheckReport,
    check_datasets,
    length_stats,
    write_fixed,
)
from adaptlab.finetune.data import TrainingExample, load_training_file

SNIPS = BUNDLED_SNIPS  # bundled with the package: tests never depend on ../shared
LABELS = ("PlayMusic", "GetWeather", "BookRestaurant", "RateBook")


def sentence(rng: random.Random, words: int = 7) -> str:
    """Random words from a large vocabulary: two of these are never near duplicates by accident."""
    return " ".join(f"w{rng.randrange(100_000)}" for _ in range(words))


def chat_record(user: str, reply: str, label: str | None = None) -> dict:
    record: dict = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}
    if label is not None:
        record["label"] = label
    return record


def synthetic(count: int, seed: int = 0) -> list[dict]:
    """`count` distinct intent/slots examples, labels in rotation."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        label = LABELS[index % len(LABELS)]
        reply = json.dumps({"intent": label, "slots": {"thing": f"w{index}"}}, separators=(",", ":"))
        records.append(chat_record(sentence(rng), reply, label))
    return records


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def eval_file(path: Path, questions: list[str]) -> Path:
    return write_jsonl(path, [{"question": q, "label": "PlayMusic"} for q in questions])


def findings_of(report: CheckReport, check: str) -> list:
    return [f for f in report.findings if f.check == check]


# ------------------------------------------------------------------------------------ duplicates, leaks


def test_leak_between_train_and_eval_names_both_sides(tmp_path: Path) -> None:
    records = synthetic(30)
    train = write_jsonl(tmp_path / "train.jsonl", records)
    leaked = records[4]["messages"][0]["content"]  # line 5
    evals = eval_file(tmp_path / "eval.jsonl", ["an unrelated eval question", leaked.upper() + "?"])
    report = check_datasets([train], eval_path=evals, min_examples=10)

    [leak] = findings_of(report, "leak")
    assert (leak.where, leak.other, leak.severity) == (f"{train}:5", f"{evals}:2", "error")
    assert "exact duplicate" in leak.message and f"{evals}:2" in str(leak)
    assert not report.ready
    assert any("1 training example leaks into the eval set" in r for r in report.reasons)
    assert report.clean == 29

    # A near duplicate leaks too: one word changed in a 7-word question (Jaccard 6/8 = 0.75 ≥ 0.7).
    words = leaked.split()
    near = eval_file(tmp_path / "near.jsonl", [" ".join(words[:-1] + ["changed"])])
    [near_leak] = findings_of(check_datasets([train], eval_path=near, near_duplicate_jaccard=0.7, min_examples=10),
                              "leak")
    assert near_leak.where == f"{train}:5" and "near duplicate (Jaccard 0.75)" in near_leak.message


def test_duplicates_and_near_duplicates_inside_train(tmp_path: Path) -> None:
    records = synthetic(20)
    base = records[2]["messages"][0]["content"].split()
    records.append(records[2])  # line 21: exact copy of line 3
    records.append(chat_record(" ".join(base + ["extra"]), records[5]["messages"][1]["content"]))  # 22: near 3
    records.append(chat_record(records[7]["messages"][0]["content"], "a different reply"))  # 23: conflict with 8
    second = write_jsonl(tmp_path / "more.jsonl", [records[0]])  # another training file repeating line 1
    train = write_jsonl(tmp_path / "train.jsonl", records)
    report = check_datasets([train, second], min_examples=1)

    [duplicate, cross_file] = findings_of(report, "duplicate")
    assert (duplicate.where, duplicate.other) == (f"{train}:21", f"{train}:3")
    assert (cross_file.where, cross_file.other) == (f"{second}:1", f"{train}:1")
    [near] = findings_of(report, "near_duplicate")
    assert (near.where, near.other) == (f"{train}:22", f"{train}:3") and "Jaccard 0.88" in near.message
    [conflict] = findings_of(report, "conflict")
    assert (conflict.where, conflict.other) == (f"{train}:23", f"{train}:8")
    assert report.examples == 24 and report.clean == 22  # exact duplicates are not clean; the rest are


def test_multi_turn_chats_are_compared_on_the_whole_conversation(tmp_path: Path) -> None:
    def conversation(first: str) -> dict:
        return {"messages": [{"role": "system", "content": "A long shared system prompt " * 20},
                             {"role": "user", "content": first}, {"role": "assistant", "content": "Done."},
                             {"role": "user", "content": "thanks"},
                             {"role": "assistant", "content": "You're welcome!"}]}

    train = write_jsonl(tmp_path / "train.jsonl", [conversation("book a table for two tonight"),
                                                   conversation("what is the weather in rome"),
                                                   conversation("what is the weather in rome")])
    report = check_datasets([train], min_examples=1)
    assert [(f.check, f.where) for f in report.findings] == [("duplicate", f"{train}:3")]


def test_eval_vs_fewshot_and_cache_seed(tmp_path: Path) -> None:
    records = synthetic(12)
    train = write_jsonl(tmp_path / "train.jsonl", records)
    evals = eval_file(tmp_path / "eval.jsonl", ["which song is playing now", "how warm is it in oslo"])
    fewshot = write_jsonl(tmp_path / "fewshot.jsonl", [{"question": "Which song is playing now?", "answer": "x"},
                                                       {"question": records[0]["messages"][0]["content"],
                                                        "answer": "y"}])
    seeds = write_jsonl(tmp_path / "seed.jsonl", [{"query": "how warm is it in Oslo"}])
    report = check_datasets([train], eval_path=evals, fewshot_path=fewshot, cache_seed_path=seeds, min_examples=1)

    leaks = {(f.where, f.other) for f in findings_of(report, "leak")}
    assert leaks == {(f"{evals}:1", f"{fewshot}:1"), (f"{evals}:2", f"{seeds}:1")}
    [overlap] = findings_of(report, "overlap")  # train vs few-shot: reported, does not block
    assert (overlap.where, overlap.other, overlap.severity) == (f"{train}:1", f"{fewshot}:2", "warning")
    assert any("also in the few-shot file" in r for r in report.reasons)
    assert any("also in the cache-seed file" in r for r in report.reasons)
    assert {s.role for s in report.sets} == {"train", "eval", "fewshot", "cache_seed"}
    assert all(len(s.fingerprint) == 64 for s in report.sets)


# -------------------------------------------------------------------------------------- format, labels


def test_json_format_inconsistency(tmp_path: Path) -> None:
    records = synthetic(20)
    records[3] = chat_record(records[3]["messages"][0]["content"], "PlayMusic")  # line 4: plain text
    records[6] = chat_record(records[6]["messages"][0]["content"], '{"intent":"RateBook"}')  # line 7: no slots
    records[9] = chat_record(records[9]["messages"][0]["content"],
                             'Sure! {"intent":"RateBook","slots":{}}')  # line 10: wrapped
    train = write_jsonl(tmp_path / "train.jsonl", records)
    report = check_datasets([train], min_examples=1)
    problems = {f.where: f.message for f in findings_of(report, "format")}
    assert set(problems) == {f"{train}:4", f"{train}:7", f"{train}:10"}
    assert problems[f"{train}:4"].startswith("target should be JSON")
    assert "lacks 'slots'" in problems[f"{train}:7"]
    assert "wraps its JSON" in problems[f"{train}:10"]
    assert any("3 format problems" in r for r in report.reasons)


def test_label_typo_and_class_balance(tmp_path: Path) -> None:
    rng = random.Random(5)
    records = [chat_record(sentence(rng), "PlayMusic", "PlayMusic") for _ in range(40)]
    records += [chat_record(sentence(rng), "GetWeather", "GetWeather") for _ in range(3)]
    records.append(chat_record(sentence(rng), "PlayMusik", "PlayMusik"))  # line 44
    train = write_jsonl(tmp_path / "train.jsonl", records)
    report = check_datasets([train], min_examples=1)

    [typo] = [f for f in findings_of(report, "label") if "typo" in f.message]
    assert typo.where == f"{train}:44" and "possible typo of 'PlayMusic'" in typo.message
    assert report.label_counts == {"PlayMusic": 40, "GetWeather": 3, "PlayMusik": 1}
    assert report.balance_ratio == pytest.approx(40 / 3)  # the suspected typo is left out of the ratio
    [balance] = findings_of(report, "balance")
    assert "'GetWeather' has 3" in balance.message


def test_labels_come_from_json_intents_when_there_is_no_label_field(tmp_path: Path) -> None:
    records = [chat_record(r["messages"][0]["content"], r["messages"][1]["content"]) for r in synthetic(8)]
    report = check_datasets([write_jsonl(tmp_path / "t.jsonl", records)], min_examples=1)
    assert report.label_counts == {label: 2 for label in LABELS}


# ------------------------------------------------------------------------------------------- lengths


def test_token_lengths_with_a_fake_counter(tmp_path: Path) -> None:
    records = synthetic(10)
    records[2] = chat_record(" ".join(["word"] * 300), records[2]["messages"][1]["content"], "PlayMusic")
    train = write_jsonl(tmp_path / "train.jsonl", records)

    def words(example: TrainingExample) -> int:
        return sum(len(m["content"].split()) for m in example.conversation())

    report = check_datasets([train], token_counter=words, max_tokens=100, truncation_length=5, min_examples=1)
    [too_long] = findings_of(report, "length")
    assert too_long.where == f"{train}:3" and "301 tokens" in too_long.message
    assert report.lengths is not None and report.lengths.maximum == 301 and report.lengths.over_limit == 1
    assert sum(n for _, _, n in report.lengths.histogram) == 10
    [truncation] = findings_of(report, "truncation")
    assert "9 examples longer than train.max_length = 5" in truncation.message
    assert any("longer than the context of 100 tokens" in r for r in report.reasons)


def test_length_stats() -> None:
    stats = length_stats(list(range(1, 101)), max_tokens=90)
    assert (stats.minimum, stats.p50, stats.p95, stats.maximum, stats.over_limit) == (1, 50, 95, 100, 10)
    assert len(stats.histogram) == 10 and all(n == 10 for _, _, n in stats.histogram)
    assert length_stats([7, 7]).histogram == ((7, 7, 2),)


# ----------------------------------------------------------------------------------------- readiness


def test_readiness_verdict(tmp_path: Path) -> None:
    evals = eval_file(tmp_path / "eval.jsonl", ["a held out question", "another held out one"])
    small = write_jsonl(tmp_path / "small.jsonl", synthetic(120))
    report = check_datasets([small], eval_path=evals)
    assert not report.ready
    assert report.reasons == [
        "only 120 clean examples — collect ~80 more (at least 200 after dropping duplicates and leaked ones)"
    ]

    enough = write_jsonl(tmp_path / "enough.jsonl", synthetic(200))
    assert check_datasets([enough], eval_path=evals).ready
    no_eval = check_datasets([enough])
    assert not no_eval.ready
    assert no_eval.reasons == ["no held-out eval set: pass --eval (without one, a fine-tune cannot be measured)"]

    # 200 examples, one of them an exact duplicate: 199 clean is not enough.
    records = synthetic(199)
    dup = write_jsonl(tmp_path / "dup.jsonl", records + [records[10]])
    assert check_datasets([dup], eval_path=evals).clean == 199

    data = check_datasets([enough], eval_path=evals).to_dict()
    assert data["ready"] is True and data["clean"] == 200 and data["sets"][0]["version"]
    json.dumps(data)  # serialisable


def test_invalid_lines_are_findings_not_a_crash(tmp_path: Path) -> None:
    records = synthetic(5)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"messages": []}\nnot json\n', encoding="utf-8")
    report = check_datasets([train], min_examples=1)
    assert {f.where for f in findings_of(report, "invalid")} == {f"{train}:6", f"{train}:7"}
    assert report.invalid_lines == 2 and report.examples == 5 and report.sets[0].invalid == 2
    assert report.reasons[0].startswith("2 invalid lines")
    with pytest.raises(InputError, match="invalid training line"):
        write_fixed(report, tmp_path / "fixed.jsonl")


def test_write_fixed_drops_leaked_and_duplicates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    records = synthetic(205)
    records.append(records[0])  # line 206: duplicate of line 1
    train = write_jsonl(tmp_path / "train.jsonl", records)
    evals = eval_file(tmp_path / "eval.jsonl", [records[9]["messages"][0]["content"], "held out"])  # leaks line 10
    report = check_datasets([train], eval_path=evals)
    assert not report.ready and report.clean == 204

    result = write_fixed(report, tmp_path / "fixed.jsonl")
    assert (result.kept, result.dropped_duplicates, result.dropped_leaked) == (204, 1, 1)
    kept = load_training_file(result.out)
    expected = [r for i, r in enumerate(records, start=1) if i not in (10, 206)]
    assert [e.to_record() for e in kept] == expected
    fixed_report = check_datasets([result.out], eval_path=evals)
    assert fixed_report.ready, fixed_report.reasons

    before = train.read_bytes()
    for target in (train, evals, tmp_path / "." / "train.jsonl"):
        with pytest.raises(InputError, match="refusing to overwrite an input file"):
            write_fixed(report, target)
    assert train.read_bytes() == before


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ADAPTLAB_HOME", "ADAPTLAB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_data_check_exit_codes(workdir: Path) -> None:
    evals = eval_file(workdir / "eval.jsonl", ["a held out question"])
    ready = write_jsonl(workdir / "ready.jsonl", synthetic(200))
    small = write_jsonl(workdir / "small.jsonl", synthetic(50))
    runner = CliRunner()

    ok = runner.invoke(app, ["data", "check", str(ready), "--eval", str(evals), "--no-tokens"])
    assert ok.exit_code == 0, ok.output
    assert "READY" in ok.output and "NOT READY" not in ok.output
    assert "Data sets" in ok.output and "Class balance" in ok.output

    bad = runner.invoke(app, ["data", "check", str(small), "--no-tokens"])
    assert bad.exit_code == 1, bad.output
    assert "NOT READY" in bad.output and "only 50 clean examples" in bad.output and "pass --eval" in bad.output

    as_json = runner.invoke(app, ["data", "check", str(small), "--eval", str(evals), "--no-tokens", "--json",
                                  "--min-examples", "10", "--fix", str(workdir / "fixed.jsonl")])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["ready"] is True and data["fix"]["kept"] == 50
    assert (workdir / "fixed.jsonl").is_file()
    assert not (workdir / ".adaptlab").exists()  # --no-tokens: no project folder, no tokenizer


def test_cli_convert_snips_then_check(workdir: Path) -> None:
    out = workdir / "snips"
    result = CliRunner().invoke(app, ["data", "convert-snips", str(SNIPS), str(out), "--train-per-intent", "30",
                                      "--eval-per-intent", "3", "--fewshot-per-intent", "1", "--seed", "1"])
    assert result.exit_code == 0, result.output
    for name in ("train.jsonl", "fewshot.jsonl", "eval.jsonl", "schema.json", "system_prompt.txt"):
        assert (out / name).is_file(), name
    assert len((out / "train.jsonl").read_text().splitlines()) == 210
    check = CliRunner().invoke(app, ["data", "check", str(out / "train.jsonl"), "--eval", str(out / "eval.jsonl"),
                                     "--fewshot", str(out / "fewshot.jsonl"), "--no-tokens"])
    assert check.exit_code == 0, check.output  # 210 clean examples, held out: READY
    assert "READY" in check.output


def test_cli_import_commands_work_under_data_and_at_top_level(workdir: Path) -> None:
    source = workdir / "cases.csv"
    source.write_text("text,label\nhello,greet\n", encoding="utf-8")
    for prefix in (["data"], []):
        out = workdir / f"cases{len(prefix)}.jsonl"
        result = CliRunner().invoke(app, [*prefix, "import-csv", str(source), str(out)])
        assert result.exit_code == 0, result.output
        assert out.is_file()
