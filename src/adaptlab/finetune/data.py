"""Training data: three JSONL formats, their validation and a content fingerprint.

Formats, detected per line from its keys (one format per file):
- chat: {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]} (OpenAI style);
- prompt/completion: {"prompt": "...", "completion": "..."};
- preference: {"prompt": "..." or [messages], "chosen": "...", "rejected": "..."} (TRL's DPO data).
Every record may carry "id", "label" (the class, e.g. the intent: used for class balance) and "tags".

Like eval cases, a file is validated whole and every bad line is reported at once. The fingerprint hashes
the records' canonical JSON, so it is the data's version: reformatting a file keeps it, editing a record
changes it. The converters that write these files from datasets (SNIPS, CSV, CLINC150-style intents) are in
`adaptlab.datasets`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adaptlab.datasets.common import DataError
from adaptlab.errors import InputError
from adaptlab.textfiles import jsonl_lines, read_text
from adaptlab.types import FileProblem, line_problem

Kind = Literal["chat", "completion", "preference"]
TokenCounter = Callable[["TrainingExample"], int]

ROLES = ("system", "user", "assistant")
COMMON_KEYS = ("id", "label", "tags")
FORMAT_KEYS: dict[str, tuple[str, ...]] = {
    "chat": ("messages",),
    "completion": ("prompt", "completion"),
    "preference": ("prompt", "chosen", "rejected"),
}
FORMAT_NAMES = {"chat": "chat", "completion": "prompt/completion", "preference": "preference"}
ALL_KEYS = tuple(sorted(set(COMMON_KEYS).union(*FORMAT_KEYS.values())))
FORMAT_EXAMPLES = {
    "chat": '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}',
    "completion": '{"prompt": "Capital of France?", "completion": "Paris"}',
    "preference": '{"prompt": "Say hi", "chosen": "Hello!", "rejected": "Go away."}',
}
FORMATS_HELP = "; ".join(f"{FORMAT_NAMES[k]}: {v}" for k, v in FORMAT_EXAMPLES.items())
# Other common formats, recognised by their keys so the fix can say what to convert from.
_FOREIGN_FORMATS = (
    ("conversations", "ShareGPT 'conversations'; rename to \"messages\" with role/content turns"),
    ("instruction", "Alpaca instruction/output; write {\"prompt\": instruction + input, \"completion\": output}"),
    ("question", "an eval-cases or few-shot line; training data needs prompt/completion or messages"),
)
_ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant", "ai": "assistant"}
SHORT_FINGERPRINT = 12


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrainingExample:
    """One validated training record.

    chat: `messages` is the whole conversation (ends with the assistant reply). completion: `prompt` and
    `completion`. preference: `prompt` (a string), or `messages` when the prompt is a conversation (TRL's
    conversational form; it ends with a user turn), plus `chosen` and `rejected`.
    """

    example_id: str
    kind: Kind
    # Message dicts are unhashable: left out of the hash so an example stays hashable.
    messages: tuple[dict[str, str], ...] | None = field(default=None, hash=False)
    prompt: str | None = None
    completion: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    label: str | None = None
    line: int = 0  # line in its file (0 when built in code), for messages pointing back at it
    tags: tuple[str, ...] = ()
    source: str = ""  # the file it was read from
    raw_id: str | int | None = None  # the id as written (None: the record had none), so to_record round-trips

    @property
    def location(self) -> str:
        return f"{self.source or '<data>'}:{self.line}"

    @property
    def input_text(self) -> str:
        """The user-side text (last user turn, or the prompt): what duplicate and leakage checks compare."""
        if self.messages is not None:
            for message in reversed(self.messages):
                if message["role"] == "user":
                    return message["content"]
            return ""
        return self.prompt or ""

    @property
    def target_text(self) -> str:
        """What the model learns to produce: the assistant reply, the completion, or the chosen answer."""
        if self.kind == "chat" and self.messages:
            return self.messages[-1]["content"]
        if self.kind == "completion":
            return self.completion or ""
        return self.chosen or ""

    def conversation(self, reply: str | None = None) -> list[dict[str, str]]:
        """The example as chat messages (what the chat template sees); `reply` replaces the target turn."""
        if self.kind == "chat":
            messages = [dict(m) for m in self.messages or ()]
            if reply is not None:
                messages[-1] = {"role": "assistant", "content": reply}
            return messages
        prompt = [dict(m) for m in self.messages] if self.messages else [{"role": "user", "content": self.prompt or ""}]
        return [*prompt, {"role": "assistant", "content": reply if reply is not None else self.target_text}]

    def to_record(self) -> dict[str, Any]:
        """The example as a JSONL line; `load_training_file` reads it back unchanged."""
        record: dict[str, Any] = {}
        if self.raw_id is not None:
            record["id"] = self.raw_id
        if self.kind == "chat":
            record["messages"] = [dict(m) for m in self.messages or ()]
        elif self.kind == "completion":
            record["prompt"], record["completion"] = self.prompt, self.completion
        else:
            record["prompt"] = [dict(m) for m in self.messages] if self.messages else self.prompt
            record["chosen"], record["rejected"] = self.chosen, self.rejected
        if self.label is not None:
            record["label"] = self.label
        if self.tags:
            record["tags"] = list(self.tags)
        return record


# ---------------------------------------------------------------------------------------------- loading


def load_training_file(
    path: str | Path, *, token_counter: TokenCounter | None = None, max_tokens: int | None = None
) -> list[TrainingExample]:
    """Read and validate a training JSONL file; raise DataError listing every bad line.

    With `token_counter` and `max_tokens`, an example longer than `max_tokens` after the chat template is a
    problem too (training would truncate it).
    """
    examples, problems = parse_training_file(path, token_counter=token_counter, max_tokens=max_tokens)
    if problems:
        raise DataError(str(path), problems)
    if not examples:
        raise InputError(str(path), None, "no training examples in the file",
                         f"write one JSON object per line, e.g. {FORMAT_EXAMPLES['chat']}")
    return examples


def parse_training_file(
    path: str | Path, *, token_counter: TokenCounter | None = None, max_tokens: int | None = None
) -> tuple[list[TrainingExample], list[FileProblem]]:
    """The valid examples and the problems of every bad line (for reports that go on past bad lines)."""
    path = Path(path)
    text = read_text(path)
    problems: list[FileProblem] = []
    examples: list[TrainingExample] = []
    file_kind: tuple[Kind, int] | None = None  # the format of the file, and the line that set it
    seen_ids: dict[str, int] = {}
    for number, stripped in jsonl_lines(text):
        example, kind, line_problems = _parse_line(path, number, stripped)
        if kind is not None:
            if file_kind is None:
                file_kind = (kind, number)
            elif kind != file_kind[0]:
                line_problems.append(line_problem(
                    str(path), number,
                    f"a {FORMAT_NAMES[kind]} record in a {FORMAT_NAMES[file_kind[0]]} file (line {file_kind[1]} "
                    f"set the format)",
                    "use one format per file: convert this record or move it to a file of its own",
                ))
        if example is not None and example.example_id in seen_ids:
            line_problems.append(line_problem(
                str(path), number, f"duplicate id {example.example_id!r} (also on line {seen_ids[example.example_id]})",
                "give every example a unique id, or leave ids out",
            ))
        if line_problems:
            problems.extend(line_problems)
            continue
        assert example is not None
        seen_ids[example.example_id] = number
        if token_counter is not None and max_tokens is not None:
            tokens = token_counter(example)
            if tokens > max_tokens:
                problems.append(line_problem(
                    str(path), number,
                    f"{tokens} tokens after the chat template, longer than the model's context of {max_tokens}",
                    "shorten the example or split it (or use a base model with a longer context)",
                ))
                continue
        examples.append(example)
    return examples, problems


def _parse_line(path: Path, number: int, text: str) -> tuple[TrainingExample | None, Kind | None, list[FileProblem]]:
    """Validate one non-blank line: the example (None if any problem), its detected format, its problems."""
    problems: list[FileProblem] = []

    def problem(reason: str, fix: str) -> None:
        problems.append(line_problem(str(path), number, reason, fix))

    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        problem(f"invalid JSON: {exc.msg} (column {exc.colno})",
                f"write one complete JSON object per line, e.g. {FORMAT_EXAMPLES['chat']}")
        return None, None, problems
    if not isinstance(record, dict):
        problem(f"expected a JSON object, got {type(record).__name__}", f"write one object per line — {FORMATS_HELP}")
        return None, None, problems

    kind = _detect_kind(record)
    if kind is None:
        foreign = next((hint for key, hint in _FOREIGN_FORMATS if key in record), None)
        keys = ", ".join(repr(k) for k in record) or "none"
        problem(f"unknown format (keys: {keys})",
                f"this looks like {foreign}" if foreign else f"use one of the formats — {FORMATS_HELP}")
        return None, None, problems

    allowed = FORMAT_KEYS[kind] + COMMON_KEYS
    for key in record:
        if key in allowed:
            continue
        if key in ALL_KEYS:
            problem(f"key {key!r} does not belong in a {FORMAT_NAMES[kind]} record (it mixes formats)",
                    f"a {FORMAT_NAMES[kind]} record has: {', '.join(allowed)}")
        else:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problem(f"unknown key {key!r}", f"{hint}a {FORMAT_NAMES[kind]} record has: {', '.join(allowed)}")

    messages: tuple[dict[str, str], ...] | None = None
    prompt = completion = chosen = rejected = None
    if kind == "chat":
        messages = _check_messages(record.get("messages"), "messages", "assistant", problem)
    else:
        raw_prompt = record.get("prompt")
        if kind == "preference" and isinstance(raw_prompt, list):
            messages = _check_messages(raw_prompt, "prompt", "user", problem)
        else:
            prompt = _check_text(record, "prompt", problem)
        if kind == "completion":
            completion = _check_text(record, "completion", problem)
        else:
            chosen = _check_text(record, "chosen", problem)
            rejected = _check_text(record, "rejected", problem)
            if chosen is not None and rejected is not None and chosen.strip() == rejected.strip():
                problem("'chosen' and 'rejected' are the same text",
                        "a preference pair needs two different replies: the better one as chosen")

    label = record.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        problem("'label' must be a non-empty string", 'write "label": "<class name>" or leave it out')
    tags = record.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) and t.strip() for t in tags)):
        problem("'tags' must be a list of non-empty strings", 'write "tags": ["easy", ...] or leave it out')
    raw_id = record.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))
                               or (isinstance(raw_id, str) and not raw_id.strip())):
        problem("'id' must be a non-empty string or an integer", 'write "id": "ex-001" or leave it out')

    if problems:
        return None, kind, problems
    return TrainingExample(
        example_id=str(raw_id) if raw_id is not None else f"{path.stem}:{number}", kind=kind, messages=messages,
        prompt=prompt, completion=completion, chosen=chosen, rejected=rejected, label=label, line=number,
        tags=tuple(tags or ()), source=str(path), raw_id=raw_id,
    ), kind, problems


def _detect_kind(record: Mapping[str, Any]) -> Kind | None:
    if "messages" in record:
        return "chat"
    if "chosen" in record or "rejected" in record:
        return "preference"
    if "prompt" in record or "completion" in record:
        return "completion"
    return None


def _check_text(record: Mapping[str, Any], key: str, problem: Callable[[str, str], None]) -> str | None:
    value = record.get(key)
    if value is None:
        problem(f"missing {key!r}", f'add "{key}": "<text>"')
    elif not isinstance(value, str) or not value.strip():
        problem(f"{key!r} must be a non-empty string", f'write "{key}": "<text>"')
    else:
        return value
    return None


def _check_messages(
    value: Any, key: str, last_role: str, problem: Callable[[str, str], None]
) -> tuple[dict[str, str], ...] | None:
    """Validate a conversation; `last_role` is the role the final turn must have."""
    example = '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'
    if not isinstance(value, list) or not value:
        problem(f"{key!r} must be a non-empty list of messages", f'write "{key}": {example}')
        return None
    ok = True
    roles: list[str] = []
    for turn, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            problem(f"{key} turn {turn}: expected an object, got {type(message).__name__}",
                    'write each turn as {"role": "...", "content": "..."}')
            ok = False
            continue
        extra = [k for k in message if k not in ("role", "content")]
        if extra:
            problem(f"{key} turn {turn}: unknown key(s) {', '.join(repr(k) for k in extra)}",
                    "a turn has only 'role' and 'content'")
            ok = False
        role = message.get("role")
        if role is None:
            problem(f"{key} turn {turn}: missing 'role'", 'add "role": "user" (or "system", "assistant")')
            ok = False
        elif role not in ROLES:
            suggestion = _ROLE_ALIASES.get(str(role).lower(), str(role).lower())
            hint = f"write {suggestion!r}; " if suggestion in ROLES else ""
            problem(f"{key} turn {turn}: bad role {role!r}", f"{hint}roles are {', '.join(ROLES)}")
            ok = False
        elif role == "system" and turn != 1:
            problem(f"{key} turn {turn}: a system turn after the first turn",
                    "put the one system prompt first, or fold it into a user turn")
            ok = False
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            what = "missing" if content is None else "empty" if isinstance(content, str) else "not a string"
            problem(f"{key} turn {turn} ({role or 'no role'}): content {what}",
                    '"content" must be non-empty text (remove the turn if it has nothing to say)')
            ok = False
        if isinstance(role, str):
            roles.append(role)
    if "user" not in roles:
        problem(f"{key}: no user turn", 'add {"role": "user", "content": "<the request>"}')
        ok = False
    if last_role == "assistant" and "assistant" not in roles:
        problem(f"{key}: no assistant turn", 'end with {"role": "assistant", "content": "<the reply to learn>"}')
        ok = False
    elif roles and isinstance(value[-1], dict) and value[-1].get("role") in ROLES and value[-1]["role"] != last_role:
        reply = "the reply the model learns" if last_role == "assistant" else "the prompt the replies answer"
        problem(f"{key}: the last turn is {value[-1]['role']!r}, not {last_role!r}",
                f"end with a {last_role} turn: {reply}")
        ok = False
    if not ok:
        return None
    return tuple({"role": m["role"], "content": m["content"]} for m in value)


# ------------------------------------------------------------------------------------------ fingerprint


def fingerprint(source: str | Path | Sequence[TrainingExample | Mapping[str, Any]], *, short: bool = False) -> str:
    """SHA-256 over the canonical JSON (sorted keys, no spaces) of the records in order: the data's version.

    A path is read line by line (blank and # lines skipped; a line that is not JSON is hashed as its text, so
    a broken file still gets a version). Whitespace and key order do not change it; any content does.
    `short` gives the first 12 hex digits.
    """
    digest = hashlib.sha256()
    records: Iterator[Any]
    if isinstance(source, (str, Path)):
        records = _raw_records(Path(source))
    else:
        records = (item.to_record() if isinstance(item, TrainingExample) else item for item in source)
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
        digest.update(b"\n")
    value = digest.hexdigest()
    return value[:SHORT_FINGERPRINT] if short else value


def _raw_records(path: Path) -> Iterator[Any]:
    for _, stripped in jsonl_lines(read_text(path)):
        try:
            yield json.loads(stripped)
        except json.JSONDecodeError:
            yield stripped
