"""Eval cases: loading and validation (every bad line reported at once), importers, CLI, and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptlab.cli.main import app
from adaptlab.datasets.squad import BUNDLED_COVID_QA
from adaptlab.errors import InputError
from adaptlab.eval.cases import (
    CasesError,
    EvalCase,
    cases_sha256,
    import_csv_cases,
    import_squad_cases,
    load_cases,
)
from adaptlab.types import FileProblem, line_problem


def write_lines(path: Path, lines: list[str | dict]) -> Path:
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- load_cases


def test_valid_file_with_every_field(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"intent": {"type": "string"}}, "required": ["intent"]}
    path = write_lines(tmp_path / "cases.jsonl", [
        {"id": "q1", "question": "Capital of France?", "answers": ["Paris", "paris, France"],
         "label": "geo", "expected_json": {"intent": "capital"}, "schema": schema,
         "gold_sources": ["articles/fr.txt"], "tags": ["easy", "geo"]},
        {"id": 7, "question": "Book a table", "label": "BookRestaurant"},
        {"question": "Just an answer", "answers": "42"},  # a bare string is wrapped
        {"question": "Schema only", "schema": {"type": "object"}},
    ])
    cases = load_cases(path)
    assert [c.case_id for c in cases] == ["q1", "7", "cases:3", "cases:4"]
    first = cases[0]
    assert first == EvalCase(
        case_id="q1", question="Capital of France?", answers=("Paris", "paris, France"), label="geo",
        expected_json={"intent": "capital"}, schema=schema, gold_sources=("articles/fr.txt",),
        tags=("easy", "geo"), line=1,
    )
    assert first.kinds == ("answers", "label", "json", "retrieval")
    assert cases[1].kinds == ("label",)
    assert cases[2].answers == ("42",) and cases[2].kinds == ("answers",)
    assert cases[3].kinds == ("json",)
    hash(first)  # hashable despite dict fields
    # to_dict is a cases-file line: writing it back loads the same case
    again = load_cases(write_lines(tmp_path / "again.jsonl", [c.to_dict() for c in cases]))
    assert [c.to_dict() for c in again] == [c.to_dict() for c in cases]
    assert len(cases_sha256(path)) == 64
    assert cases_sha256(path) != cases_sha256(tmp_path / "again.jsonl")


def test_every_problem_reported_with_its_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [
        {"id": "a", "question": "ok", "answers": ["x"]},                                   # 1 fine
        '{"question": "broken", ',                                                          # 2 bad JSON
        {"answers": ["x"]},                                                                 # 3 no question
        {"question": "typo", "answer": "x", "label": "l"},                                  # 4 unknown key
        {"question": "bad schema", "schema": {"type": "no-such-type"}},                     # 5 invalid schema
        {"question": "mismatch", "expected_json": {"n": "one"},                             # 6 violates schema
         "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        {"id": "a", "question": "dup", "answers": ["y"]},                                   # 7 duplicate id
        {"question": "nothing"},                                                            # 8 nothing to score
        "[1, 2]",                                                                           # 9 not an object
    ])
    with pytest.raises(CasesError) as info:
        load_cases(path)
    problems = info.value.problems
    by_line = {p.line: p for p in problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert "invalid JSON" in by_line[2].reason
    assert "missing 'question'" in by_line[3].reason
    assert "unknown key 'answer'" in by_line[4].reason and "did you mean 'answers'" in by_line[4].fix
    assert "answers" in by_line[4].fix and "gold_sources" in by_line[4].fix  # lists the allowed keys
    assert "not a valid JSON Schema" in by_line[5].reason
    assert "does not satisfy 'schema'" in by_line[6].reason
    assert "duplicate id 'a'" in by_line[7].reason and "line 1" in by_line[7].reason
    assert "nothing to score" in by_line[8].reason
    assert "expected a JSON object" in by_line[9].reason
    assert all(p.path == str(path) for p in problems)
    message = str(info.value)
    assert f"{path}:4: unknown key 'answer'" in message and f"{path}:8:" in message
    assert isinstance(info.value, InputError)


def test_several_problems_on_one_line_and_long_lists(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "many.jsonl", [{"questoin": "x", "tags": "t"}] * 25)
    with pytest.raises(CasesError) as info:
        load_cases(path)
    line1 = [p for p in info.value.problems if p.line == 1]
    reasons = " | ".join(p.reason for p in line1)
    assert "unknown key 'questoin'" in reasons and "missing 'question'" in reasons and "'tags'" in reasons
    message = str(info.value)
    assert f"{len(info.value.problems) - 20} more" in message
    assert message.count(f"\n  {path}:") == 20


def test_blank_and_comment_lines_skipped_and_limit(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [
        "# a comment",
        "",
        {"question": "one", "answers": ["1"]},
        "   ",
        "  # indented comment",
        {"question": "two", "answers": ["2"]},
        {"question": "three", "answers": ["3"]},
        {"question": "bad"},  # validated even though the limit stops before it
    ])
    with pytest.raises(CasesError) as info:
        load_cases(path, limit=1)
    assert [p.line for p in info.value.problems] == [8]
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n", encoding="utf-8")
    cases = load_cases(path)
    assert [(c.case_id, c.line) for c in cases] == [("c:3", 3), ("c:6", 6), ("c:7", 7)]
    assert [c.question for c in load_cases(path, limit=2)] == ["one", "two"]


def test_missing_empty_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_cases(tmp_path / "nope.jsonl")
    empty = write_lines(tmp_path / "empty.jsonl", ["# only a comment", ""])
    with pytest.raises(InputError, match="no cases") as info:
        load_cases(empty)
    assert not isinstance(info.value, CasesError) and "question" in str(info.value)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"question": "ok", "label": "a"}\n{"question": "caf\xe9", "label": "b"}\n')
    with pytest.raises(InputError, match="not UTF-8") as info:
        load_cases(latin)
    assert info.value.line == 2


def test_case_problem_str() -> None:
    assert str(line_problem("c.jsonl", 3, "bad", "fix it")) == "c.jsonl:3: bad — fix it"
    assert str(FileProblem("docs/a.pdf", "no text layer")) == "docs/a.pdf: no text layer"


# ---------------------------------------------------------------------------------------------- importers


def test_import_squad_cases_bundled_covid_qa(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "covid_cases.jsonl"
    assert import_squad_cases(BUNDLED_COVID_QA, out) == 563
    cases = load_cases(out)
    assert len(cases) == 563
    assert all(c.answers and all(a.strip() for a in c.answers) for c in cases)
    assert all(len(c.gold_sources) == 1 and c.gold_sources[0].startswith("articles/")
               and c.gold_sources[0].endswith(".txt") for c in cases)
    assert all(c.tags == ("squad",) for c in cases)
    assert len({c.gold_sources[0] for c in cases}) == 60  # one file per article, as write_articles names them
    assert import_squad_cases(BUNDLED_COVID_QA, tmp_path / "few.jsonl", limit=5) == 5
    assert len(load_cases(tmp_path / "few.jsonl")) == 5


def test_import_squad_cases_matches_write_articles(tmp_path: Path) -> None:
    from adaptlab.datasets.squad import write_articles

    write_articles(BUNDLED_COVID_QA, tmp_path / "covid")
    import_squad_cases(BUNDLED_COVID_QA, tmp_path / "cases.jsonl", limit=40)
    for case in load_cases(tmp_path / "cases.jsonl"):
        assert (tmp_path / "covid" / case.gold_sources[0]).is_file()


def test_import_csv_happy_path(tmp_path: Path) -> None:
    source = tmp_path / "intents.csv"
    source.write_text('text,label,uid\n"book a table, please",BookRestaurant,r1\nplay jazz,PlayMusic,r2\n'
                      '"a ""quoted""\nmultiline text",GetWeather,r3\n', encoding="utf-8")
    out = tmp_path / "cases.jsonl"
    assert import_csv_cases(source, out) == 3
    cases = load_cases(out)
    assert [(c.case_id, c.question, c.label) for c in cases] == [
        ("intents:2", "book a table, please", "BookRestaurant"),
        ("intents:3", "play jazz", "PlayMusic"),
        ("intents:5", 'a "quoted"\nmultiline text', "GetWeather"),
    ]
    assert all(c.tags == ("csv",) and c.kinds == ("label",) for c in cases)
    assert import_csv_cases(source, out, id_column="uid") == 3
    assert [c.case_id for c in load_cases(out)] == ["r1", "r2", "r3"]


def test_import_csv_sniffs_semicolons_and_custom_columns(tmp_path: Path) -> None:
    source = tmp_path / "semi.csv"
    source.write_text("utterance;intent\nwie wird das Wetter, morgen?;GetWeather\nspiel Musik;PlayMusic\n",
                      encoding="utf-8")
    out = tmp_path / "semi.jsonl"
    assert import_csv_cases(source, out, text_column="utterance", label_column="intent") == 2
    assert [c.question for c in load_cases(out)] == ["wie wird das Wetter, morgen?", "spiel Musik"]
    tabbed = tmp_path / "tabbed.tsv"
    tabbed.write_text("text\tlabel\nhello there\tgreet\n", encoding="utf-8")
    assert import_csv_cases(tabbed, tmp_path / "t.jsonl", delimiter="\t") == 1


def test_import_csv_missing_column(tmp_path: Path) -> None:
    source = tmp_path / "cols.csv"
    source.write_text("sentence,label\nhi,greet\n", encoding="utf-8")
    out = tmp_path / "cols.jsonl"
    with pytest.raises(InputError) as info:
        import_csv_cases(source, out)
    message = str(info.value)
    assert f"{source}:1" in message and "'text'" in message and "'sentence'" in message
    assert "--text-column" in message
    assert not out.exists()


def test_import_csv_empty_rows_all_reported_and_nothing_written(tmp_path: Path) -> None:
    source = tmp_path / "gaps.csv"
    source.write_text("text,label\nfine,a\nno label,\n,no text\nfine too,b\n  ,  \n", encoding="utf-8")
    out = tmp_path / "gaps.jsonl"
    out.write_text("previous content\n", encoding="utf-8")
    with pytest.raises(CasesError) as info:
        import_csv_cases(source, out)
    assert [p.line for p in info.value.problems] == [3, 4, 6]
    assert "'label'" in info.value.problems[0].reason and "'text'" in info.value.problems[1].reason
    assert out.read_text() == "previous content\n"  # a failed import leaves the old output alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaps.csv", "gaps.jsonl"]  # no temp files left


def test_failed_csv_import_writes_no_output(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("text,label\nx,\n", encoding="utf-8")
    out = tmp_path / "out" / "cases.jsonl"
    with pytest.raises(CasesError):
        import_csv_cases(source, out)
    assert not out.exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        import_csv_cases(empty, out)
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------- CLI


def test_cli_import_squad_cases(tmp_path: Path) -> None:
    out = tmp_path / "cases.jsonl"
    result = CliRunner().invoke(app, ["import-squad-cases", str(BUNDLED_COVID_QA), str(out), "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert f"10 cases → {out}" in result.output.replace("\n", "")
    assert len(load_cases(out)) == 10


def test_cli_import_csv(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text("id\tsentence\tintent\n1\tturn on the lights\tlights_on\n2\twhat time is it\ttime\n",
                      encoding="utf-8")
    out = tmp_path / "cases.jsonl"
    result = CliRunner().invoke(app, ["import-csv", str(source), str(out), "--text-column", "sentence",
                                      "--label-column", "intent", "--id-column", "id", "--delimiter", "\\t"])
    assert result.exit_code == 0, result.output
    assert f"2 cases → {out}" in result.output.replace("\n", "")
    assert [(c.case_id, c.label) for c in load_cases(out)] == [("1", "lights_on"), ("2", "time")]
    bad = CliRunner().invoke(app, ["import-csv", str(source), str(tmp_path / "x.jsonl")])
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError)
    assert not (tmp_path / "x.jsonl").exists()
