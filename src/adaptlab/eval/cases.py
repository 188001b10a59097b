"""Eval cases: the JSONL file a run is scored against, its validation, and importers that produce it.

One JSON object per line. Only `question` is required, but a case must carry at least one thing to score
against — `answers`, `label`, `expected_json`/`schema` or `gold_sources` — and which of those it has decides
which metric families apply (`EvalCase.kinds`). Loading validates the whole file and reports every bad line at
once, so a user fixes a hand-written file in one pass instead of one error per run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptlab.errors import InputError
from adaptlab.textfiles import jsonl_lines, read_csv_rows, read_text, write_jsonl_atomic
from adaptlab.types import FileProblem, Turn, line_problem, listed_problems

ALLOWED_KEYS = ("id", "question", "history", "answers", "label", "expected_json", "schema", "gold_sources", "tags")
SCORABLE_KEYS = ("answers", "label", "expected_json", "schema", "gold_sources")
EXAMPLE_CASE = '{"question": "What is the capital of France?", "answers": ["Paris"]}'


@dataclass(frozen=True)
class EvalCase:
    """One question and what a strategy's answer is scored against."""

    case_id: str
    question: str
    answers: tuple[str, ...] = ()
    label: str | None = None
    # JSON values and schemas are dicts/lists: left out of the hash so a case stays hashable.
    expected_json: Any = field(default=None, hash=False)
    schema: dict[str, Any] | None = field(default=None, hash=False)
    gold_sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    line: int = 0  # line in the cases file (0 when built in code), for messages pointing back at it
    # The conversation before `question` (a multi-turn case): the strategy makes the question standalone first.
    history: tuple[Turn, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        """The metric families that can score this case."""
        kinds: list[str] = []
        if self.answers:
            kinds.append("answers")
        if self.label is not None:
            kinds.append("label")
        if self.expected_json is not None or self.schema is not None:
            kinds.append("json")
        if self.gold_sources:
            kinds.append("retrieval")
        return tuple(kinds)

    def to_dict(self) -> dict[str, Any]:
        """The case as a cases-file line (empty fields left out), so `load_cases` reads it back unchanged."""
        record: dict[str, Any] = {"id": self.case_id, "question": self.question}
        if self.history:
            record["history"] = [{"role": turn.role, "content": turn.content} for turn in self.history]
        if self.answers:
            record["answers"] = list(self.answers)
        if self.label is not None:
            record["label"] = self.label
        if self.expected_json is not None:
            record["expected_json"] = self.expected_json
        if self.schema is not None:
            record["schema"] = self.schema
        if self.gold_sources:
            record["gold_sources"] = list(self.gold_sources)
        if self.tags:
            record["tags"] = list(self.tags)
        return record


class CasesError(InputError):
    """A cases file has bad lines; `problems` holds all of them, the message the first 20."""

    def __init__(self, path: str, problems: list[FileProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        reason = f"{count} problem{'s' if count != 1 else ''}:\n" + listed_problems(self.problems)
        super().__init__(path, None, reason)


# ---------------------------------------------------------------------------------------------- loading


def load_cases(path: str | Path, *, limit: int | None = None) -> list[EvalCase]:
    """Read and validate a cases JSONL file; raise CasesError listing every bad line.

    `limit` keeps the first N cases, but the whole file is still validated so a later bad line is not
    discovered only on the full run.
    """
    path = Path(path)
    text = read_text(path)
    problems: list[FileProblem] = []
    cases: list[EvalCase] = []
    seen_ids: dict[str, int] = {}
    for number, stripped in jsonl_lines(text):
        case, line_problems = _parse_line(path, number, stripped)
        problems.extend(line_problems)
        if case is None:
            continue
        if case.case_id in seen_ids:
            problems.append(line_problem(
                str(path), number, f"duplicate id {case.case_id!r} (also on line {seen_ids[case.case_id]})",
                "give every case a unique id",
            ))
            continue
        seen_ids[case.case_id] = number
        cases.append(case)
    if problems:
        problems.sort(key=_line)
        raise CasesError(str(path), problems)
    if not cases:
        raise InputError(str(path), None, "no cases in the file",
                         f"write one JSON object per line, e.g. {EXAMPLE_CASE}")
    return cases[:limit] if limit is not None else cases


def cases_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes: recorded with each run so results are tied to the exact cases."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InputError(str(path), None, f"cannot read: {exc.strerror or exc}", "check the path") from exc
    return digest.hexdigest()


def _parse_line(path: Path, number: int, text: str) -> tuple[EvalCase | None, list[FileProblem]]:
    """Validate one non-blank line; return the case (None if any problem) and all of its problems."""
    problems: list[FileProblem] = []

    def problem(reason: str, fix: str) -> None:
        problems.append(line_problem(str(path), number, reason, fix))

    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        problem(f"invalid JSON: {exc.msg} (column {exc.colno})",
                f"write one complete JSON object per line, e.g. {EXAMPLE_CASE}")
        return None, problems
    if not isinstance(record, dict):
        problem(f"expected a JSON object, got {_json_type(record)}", f"write one object per line, e.g. {EXAMPLE_CASE}")
        return None, problems

    for key in record:
        if key not in ALLOWED_KEYS:
            close = difflib.get_close_matches(key, ALLOWED_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problem(f"unknown key {key!r}", f"{hint}allowed keys: {', '.join(ALLOWED_KEYS)}")

    question = record.get("question")
    if question is None:
        problem("missing 'question'", 'add "question": "<the text the strategy answers>"')
    elif not isinstance(question, str) or not question.strip():
        problem("'question' must be a non-empty string", 'write "question": "<the text the strategy answers>"')

    # JSON null counts as absent for every optional field (so `"expected_json": null` cannot mean "expect null").
    answers: tuple[str, ...] = ()
    raw_answers = record.get("answers")
    if isinstance(raw_answers, str):
        raw_answers = [raw_answers]
    if raw_answers is not None:
        if isinstance(raw_answers, list) and all(isinstance(a, str) and a.strip() for a in raw_answers):
            answers = tuple(raw_answers)
        else:
            problem("'answers' must be a list of non-empty strings", 'write "answers": ["first accepted answer", ...]')

    label = record.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        problem("'label' must be a non-empty string", 'write "label": "<class name>"')

    expected_json = record.get("expected_json")
    schema = record.get("schema")
    if schema is not None:
        schema_problem = _check_schema(schema)
        if schema_problem:
            problem(f"'schema' is not a valid JSON Schema: {schema_problem}",
                    "fix the schema: check its keywords and their value types")
        elif expected_json is not None:
            violation = _schema_violation(schema, expected_json)
            if violation:
                problem(f"'expected_json' does not satisfy 'schema': {violation}",
                        "correct expected_json or the schema: the reference answer must itself be valid")

    history = _history(record.get("history"), problem)
    gold_sources = _string_list(record, "gold_sources", problem, 'write "gold_sources": ["articles/doc.txt", ...]')
    tags = _string_list(record, "tags", problem, 'write "tags": ["easy", ...]')

    raw_id = record.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))
                               or (isinstance(raw_id, str) and not raw_id.strip())):
        problem("'id' must be a non-empty string or an integer", 'write "id": "q-001" or leave it out')

    if not any(record.get(key) not in (None, [], "") for key in SCORABLE_KEYS):
        problem("nothing to score against",
                "add at least one of: answers, label, expected_json, schema, gold_sources")

    if problems:
        return None, problems
    case_id = str(raw_id) if raw_id is not None else f"{path.stem}:{number}"
    assert isinstance(question, str)  # a missing or non-string question is a problem above
    return EvalCase(
        case_id=case_id, question=question, answers=answers, label=label, expected_json=expected_json,
        schema=schema, gold_sources=gold_sources, tags=tags, line=number, history=history,
    ), problems


_HISTORY_FIX = ('write "history": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}] — '
                'the turns before "question"')


def _history(raw: Any, problem: Callable[[str, str], None]) -> tuple[Turn, ...]:
    """A case's earlier turns: user and assistant messages with non-empty text (null: none)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problem("'history' must be a list of messages", _HISTORY_FIX)
        return ()
    turns: list[Turn] = []
    for position, message in enumerate(raw):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ("user", "assistant") or not isinstance(content, str) or not content.strip():
            problem(f"history[{position}] must be {{\"role\": \"user\" or \"assistant\", \"content\": "
                    f"\"<non-empty text>\"}}", _HISTORY_FIX)
            continue
        turns.append(Turn(role=role, content=content))
    return tuple(turns)


def _line(problem: FileProblem) -> int:
    """Sort key of a problem made by line_problem (which always has a line)."""
    assert problem.line is not None, problem
    return problem.line


def _string_list(record: dict[str, Any], key: str, problem: Callable[[str, str], None], fix: str) -> tuple[str, ...]:
    value = record.get(key)
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value):
        return tuple(value)
    problem(f"{key!r} must be a list of non-empty strings", fix)
    return ()


def _check_schema(schema: Any) -> str | None:
    """None if `schema` is a usable JSON Schema, else why not."""
    if not isinstance(schema, dict):
        return f"expected an object, got {_json_type(schema)}"
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        return f"{exc.message}" + (f" (at {where})" if where else "")
    return None


def _schema_violation(schema: dict[str, Any], instance: Any) -> str | None:
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    error = best_match(validator_for(schema)(schema).iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.path)
    message: str = error.message + (f" (at {where})" if where else "")
    return message


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------------- importers


def import_squad_cases(source: str | Path, out: str | Path, *, limit: int | None = None) -> int:
    """SQuAD-format QA data → a cases file (answers + gold article), returning the number of cases.

    Gold sources follow `write_articles` ("articles/<document_id>.txt"), so these cases score retrieval
    against the article files that `adaptlab import-squad` writes and `adaptlab ingest` indexes.
    `limit` keeps the first N questions.
    """
    from adaptlab.datasets.squad import read_squad

    _, questions = read_squad(source)
    if limit is not None:
        questions = questions[:limit]
    if not questions:
        raise InputError(str(source), None, "no questions in the file", "check it is SQuAD-format QA data")
    records = [
        {"id": q.question_id, "question": q.question, "answers": list(q.answers),
         "gold_sources": [f"articles/{q.document_id}.txt"], "tags": ["squad"]}
        for q in questions
    ]
    write_jsonl_atomic(Path(out), records)
    return len(records)


def import_csv_cases(
    source: str | Path,
    out: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str | None = None,
    delimiter: str | None = None,
) -> int:
    """A labelled CSV (text, label) → classification cases, returning the number of cases.

    Every bad row is collected and raised together as CasesError; nothing is written unless all rows are good.
    `delimiter` None sniffs one of , ; and tab from the start of the file.
    """
    path = Path(source)
    table = read_csv_rows(path, [(text_column, "--text-column"), (label_column, "--label-column"),
                                 (id_column, "--id-column")],
                          required=[text_column, label_column], delimiter=delimiter, unit="case")
    problems = [line_problem(str(path), line, reason, fix) for line, reason, fix in table.problems]
    records: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    for number, values in table.rows:
        if id_column is not None:
            case_id = values[id_column]
            if not case_id:
                problems.append(line_problem(str(path), number, f"empty {id_column!r}",
                                            "give every row an id, or leave out --id-column"))
                continue
        else:
            case_id = f"{path.stem}:{number}"
        if case_id in seen_ids:
            problems.append(line_problem(str(path), number,
                                        f"duplicate id {case_id!r} (also on line {seen_ids[case_id]})",
                                        "give every row a unique id"))
            continue
        seen_ids[case_id] = number
        records.append({"id": case_id, "question": values[text_column], "label": values[label_column],
                        "tags": ["csv"]})
    problems.sort(key=_line)
    if problems:
        raise CasesError(str(path), problems)
    if not records:
        raise InputError(str(path), None, "no rows after the header", "add one row per case")
    write_jsonl_atomic(Path(out), records)
    return len(records)
