"""JSON and JSON Lines: one Document per record (a single JSON object is one Document for the file)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptlab.config import IngestConfig
from adaptlab.rag.formats.common import (
    LoadContext,
    Loaded,
    LoadProblem,
    decode_text,
    first_line_title,
    make_document,
    normalise,
    require_text,
)
from adaptlab.types import Document, FileProblem


def _record_document(
    record: Any, position: int, path: Path, config: IngestConfig, extra_tags: Sequence[str], seen: dict[str, str]
) -> tuple[Document, str]:
    """One JSON object -> (Document, record id). `position`: 1-based line (JSONL) or 0-based index (JSON)."""
    if not isinstance(record, dict):
        raise LoadProblem(f"record is a JSON {type(record).__name__}, expected an object")
    field = config.json_text_field
    raw_text = record.get(field)
    text = normalise(raw_text) if isinstance(raw_text, str) else ""
    if not text.strip():
        raise LoadProblem(f"record has no '{field}' text field — set ingest.json_text_field in adaptlab.toml")
    raw_id = record.get(config.json_id_field)
    has_id = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id) != ""
    record_id = str(raw_id) if has_id else str(position)
    if record_id in seen:
        raise LoadProblem(f"duplicate record id '{record_id}' (first seen at {seen[record_id]}) — ids must be unique")
    raw_title = record.get(config.json_title_field)
    title = raw_title.strip() if isinstance(raw_title, str) and raw_title.strip() else None
    title = title or first_line_title(text) or f"{path.stem} #{record_id}"
    raw_tags = record.get(config.json_tags_field)
    # Lenient on purpose: a lone string is one tag; non-string list items are ignored.
    if isinstance(raw_tags, str):
        record_tags = [raw_tags]
    elif isinstance(raw_tags, list):
        record_tags = [t for t in raw_tags if isinstance(t, str)]
    else:
        record_tags = []
    key = f"{path}#{record_id}"
    return make_document(key, key, title, text, [*extra_tags, *record_tags]), record_id


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadProblem(f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None


def load_jsonl(path: Path, data: bytes, context: LoadContext) -> Loaded:
    text = require_text(decode_text(data))
    documents: list[Document] = []
    problems: list[FileProblem] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            document, record_id = _record_document(_parse_json(line), number, path, context.config, context.tags, seen)
        except LoadProblem as problem:
            problems.append(FileProblem(str(path), problem.reason, line=number))
            continue
        seen[record_id] = f"line {number}"
        documents.append(document)
    return documents, problems


def load_json(path: Path, data: bytes, context: LoadContext) -> Loaded:
    payload = _parse_json(require_text(decode_text(data)))
    config, tags = context.config, context.tags
    if isinstance(payload, dict):
        # A single object is one document, keyed by the file itself like a .txt.
        record, _ = _record_document(payload, 0, path, config, tags, {})
        return [make_document(str(path), str(path), record.title, record.text, record.tags)], []
    if not isinstance(payload, list):
        raise LoadProblem(f"JSON top level is a {type(payload).__name__}; expected an object or a list of objects")
    if not payload:
        raise LoadProblem("no records found (empty JSON list)")
    documents: list[Document] = []
    problems: list[FileProblem] = []
    seen: dict[str, str] = {}
    for index, record in enumerate(payload):
        try:
            document, record_id = _record_document(record, index, path, config, tags, seen)
        except LoadProblem as problem:
            problems.append(FileProblem(str(path), f"record #{index}: {problem.reason}"))
            continue
        seen[record_id] = f"record #{index}"
        documents.append(document)
    return documents, problems
