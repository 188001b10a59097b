"""Reading and writing the user's text files: UTF-8 text, labelled CSV rows, JSONL written atomically.

Shared by the eval-case importers and the training-data converters, so both report bad input the same way
(file:line, reason, fix) and neither ever leaves half a file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptlab.errors import InputError


def _utf8(data: bytes) -> str:
    return data.decode("utf-8-sig")  # tolerate a BOM (Excel, Notepad) instead of failing line 1


def read_text(path: Path, decode: Callable[[bytes], str] = _utf8) -> str:
    """The file as text; an unreadable file or bad UTF-8 is an InputError with the line of the first bad byte.
    `decode` may be more lenient than plain UTF-8 for a known dataset quirk."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), None, f"cannot read: {exc.strerror or exc}", "check the path") from exc
    try:
        return decode(data)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(str(path), line, "not UTF-8 text", "save the file as UTF-8") from exc


def sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.split("\n", 20)[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return ","  # one column or ambiguous: the default; a missing-column error then suggests --delimiter


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of every JSONL line that holds content: blank lines and # comments skip."""
    # Split on "\n" only: str.splitlines() would also split on U+2028 etc., which JSON strings may hold raw.
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def write_jsonl_atomic(out: Path, records: Iterable[dict[str, Any]]) -> None:
    _write_atomic(out, (json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def write_text_atomic(out: Path, text: str) -> None:
    _write_atomic(out, [text])


def _write_atomic(out: Path, pieces: Iterable[str]) -> None:
    """Write via a temp file in the same folder + os.replace: a failed write never leaves a half file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.", suffix=".tmp", delete=False
    ) as handle:
        temp = Path(handle.name)
        try:
            for piece in pieces:
                handle.write(piece)
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise
    try:
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@dataclass
class CsvRows:
    """The rows of a CSV with every required column filled, and the problems of the other rows."""

    delimiter: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, column → stripped value)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, fix)


def read_csv_rows(path: Path, columns: Sequence[tuple[str | None, str]], *, required: Sequence[str],
                  delimiter: str | None, unit: str) -> CsvRows:
    """Read a CSV with a header row.

    columns: (column name or None, the CLI option that names it) for every column the caller uses; a named
    column missing from the header is an InputError naming the option. required: the columns that must be
    non-empty on every row. unit: what one row becomes ("case", "example"), for messages.
    Line numbers are where a record ends: the row's own line unless a quoted field spans lines.
    """
    text = read_text(path)
    wanted = [name for name, _ in columns if name is not None]
    if not text.strip():
        raise InputError(str(path), None, "the CSV file is empty",
                         f"write a header row naming the columns ({','.join(wanted)}) and one row per {unit}")
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        found = [name for name in (reader.fieldnames or []) if name is not None]
    except csv.Error as exc:
        raise InputError(str(path), 1, f"cannot parse the header: {exc}", "check the file is CSV") from exc
    missing = [(name, option) for name, option in columns if name is not None and name not in found]
    if missing:
        raise InputError(
            str(path), 1,
            f"no column {' or '.join(repr(c) for c, _ in missing)} (columns found: "
            f"{', '.join(repr(c) for c in found) or 'none'}, delimiter {delimiter!r})",
            f"pass {' / '.join(o for _, o in missing)} naming one of the columns found"
            + ("" if len(found) > 1 else ", or --delimiter if the header was split wrongly"),
        )
    result = CsvRows(delimiter)
    try:
        for row in reader:
            number = reader.line_num
            if row.get(None):  # DictReader's restkey: more fields than the header
                result.problems.append((number, "more fields than the header has columns",
                                        f"quote fields that contain {delimiter!r}, or pass --delimiter"))
                continue
            values = {name: (row.get(name) or "").strip() for name in wanted}
            empty = [name for name in required if not values[name]]
            if empty:
                result.problems.append((number, f"empty {' and '.join(repr(e) for e in empty)}",
                                        "fill in the value or delete the row"))
                continue
            result.rows.append((number, values))
    except csv.Error as exc:
        raise InputError(str(path), reader.line_num, f"cannot parse CSV: {exc}",
                         "check quoting (a field with a quote must be quoted and its quotes doubled)") from exc
    return result
