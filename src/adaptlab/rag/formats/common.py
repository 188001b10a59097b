"""What every loader shares: the problem type, the load context, and building Document text with Sections.

Loading never raises for bad input: a loader raises LoadProblem, and load_file turns it into a FileProblem
naming the file, the reason and the fix. Text is changed as little as possible (CRLF -> LF, trailing
whitespace dropped) because citations point into Document.text by character offset.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.config import IngestConfig
from adaptlab.rag.formats.tables import TableBudget, table_row_groups
from adaptlab.types import Document, FileProblem, Section

MAX_TITLE_CHARS = 200
BINARY_SNIFF_BYTES = 8192
SECTION_SEPARATOR = "\n\n"  # between the parts of a Document (pages, slides, headings' sections, row groups)


class LoadProblem(Exception):
    """Aborts loading one file (or record) with a user-facing reason and, where there is one, the fix."""

    def __init__(self, reason: str, line: int | None = None, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.fix = fix

    def for_file(self, path: Path) -> FileProblem:
        return FileProblem(str(path), self.reason, self.line, self.fix)


@dataclass(frozen=True)
class LoadContext:
    """Everything a loader needs besides the file's bytes."""

    config: IngestConfig
    tags: tuple[str, ...] = ()
    tables: TableBudget = field(default_factory=TableBudget)


Loaded = tuple[list[Document], list[FileProblem]]
Loader = Callable[[Path, bytes, LoadContext], Loaded]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip()


def first_line_title(text: str) -> str | None:
    for line in text.split("\n"):
        if line.strip():
            title = line.strip()
            return title if len(title) <= MAX_TITLE_CHARS else None
    return None


def make_document(
    key: str, shown_path: str, title: str, text: str, tags: Sequence[str], sections: tuple[Section, ...] = ()
) -> Document:
    tag_tuple = tuple(sorted({t for t in tags if t}))
    content_hash = sha(title + "\0" + text + "\0" + ",".join(tag_tuple))
    return Document(
        doc_id=sha(key)[:20],
        path=shown_path,
        title=title,
        text=text,
        content_hash=content_hash,
        sections=sections or (Section(text=text, char_start=0, page=None),),
        tags=tag_tuple,
    )


def refuse_binary(data: bytes) -> None:
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise LoadProblem("binary file, not text")


def decode_text(data: bytes) -> str:
    """Strict UTF-8 (BOM allowed); binary or mis-encoded files are refused, not guessed at."""
    refuse_binary(data)
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadProblem(
            f"not UTF-8 text (invalid byte at offset {exc.start + skip}) — convert it to UTF-8"
        ) from None


def require_text(text: str) -> str:
    if not text.strip():
        raise LoadProblem("no text found (empty file)")
    return text


def clean_cell(value: object) -> str:
    """One table cell or inline run as a single line (tables and slides keep their layout in rows, not cells)."""
    return " ".join(str(value).split()) if value is not None else ""


@contextmanager
def quiet(*logger_names: str) -> Iterator[None]:
    """Silence parser chatter (pypdf/trafilatura warn about every odd object) for one call."""
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR + 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class DocumentBuilder:
    """Appends located parts (a page, a slide, a heading's section, a table's row group) into one Document text.

    Each part becomes a Section whose text is an exact slice of the final text, so chunk offsets stay true.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._sections: list[Section] = []
        self._offset = 0
        self.tables = 0  # tables added so far: the next one is number tables + 1

    def add(self, text: str, **location: object) -> None:
        """Add one part at a location (Section's fields: page, slide, sheet, cells, table, heading_path)."""
        text = normalise(text).lstrip("\n")
        if not text.strip():
            return  # nothing to cite: an empty page or slide keeps its number for the next part
        if self._parts:
            self._offset += len(SECTION_SEPARATOR)
        self._sections.append(Section(text=text, char_start=self._offset, **location))  # type: ignore[arg-type]
        self._parts.append(text)
        self._offset += len(text)

    def add_table(self, rows: Sequence[Sequence[str]], budget: TableBudget,
                  cells_of: Callable[[int, int], str | None] | None = None, **location: object) -> None:
        """Add a table (rows[0] is its header) as row groups, each its own Section starting with the header.

        `cells_of(first_row, last_row)` names the cell range a group covers (indices into `rows`) where the
        source has cells (spreadsheets); the table gets the next table number unless `location` sets one.
        """
        groups = table_row_groups(rows, budget)
        if not groups:
            return
        if "table" not in location:
            self.tables += 1
            location["table"] = self.tables
        for group in groups:
            cells = cells_of(group.first_row, group.last_row) if cells_of else None
            self.add(group.text, **location, **({"cells": cells} if cells else {}))

    @property
    def empty(self) -> bool:
        return not self._parts

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(self._parts)

    @property
    def sections(self) -> tuple[Section, ...]:
        return tuple(self._sections)
