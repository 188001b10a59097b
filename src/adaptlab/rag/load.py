"""Find input files and turn each into Documents (text + sections + metadata).

Loading never raises for bad input: every problem becomes a FileProblem naming the file (and
line), the reason and, where there is one, the fix, so one bad file never stops an ingest run.
Text is changed as little as possible (CRLF -> LF, trailing whitespace dropped) because
citations point into Document.text by character offset.
"""

from __future__ import annotations

import codecs
import hashlib
import html as html_lib
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adaptlab.config import IngestConfig
from adaptlab.types import Document, FileProblem, Section

MAX_TITLE_CHARS = 200
BINARY_SNIFF_BYTES = 8192
_MIB = 1024 * 1024


class _Problem(Exception):
    """Internal: aborts loading one file (or record) with a user-facing reason."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


# --------------------------------------------------------------------------- discovery


def _normalised_extensions(config: IngestConfig) -> list[str]:
    return sorted({(e if e.startswith(".") else f".{e}").lower() for e in config.extensions})


def _walk(directory: Path, extensions: set[str]) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        # Prune hidden folders in place (.git, .venv, ...); sort so the order never depends on the filesystem.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            candidate = Path(root) / name
            if candidate.suffix.lower() in extensions and candidate.is_file():
                found.append(candidate.resolve())
    return found


def discover(paths: Sequence[str | Path], config: IngestConfig) -> tuple[list[Path], list[FileProblem]]:
    """Expand files and folders (recursively) into the files to load, in a deterministic order."""
    extensions = _normalised_extensions(config)
    supported = ", ".join(extensions)
    files: list[Path] = []
    problems: list[FileProblem] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        shown = str(path.absolute())
        if path.is_dir():
            found = _walk(path, set(extensions))
            if not found:
                problems.append(FileProblem(shown, f"directory contains no supported files (looked for {supported})"))
        elif path.is_file():
            if path.suffix.lower() not in extensions:
                kind = path.suffix.lower() or "(no extension)"
                problems.append(FileProblem(shown, f"unsupported file type {kind} (supported: {supported})"))
                continue
            found = [path.resolve()]
        elif path.exists() or path.is_symlink():
            problems.append(FileProblem(shown, "not a regular file or directory (broken link, device or socket?)"))
            continue
        else:
            problems.append(FileProblem(shown, "no such file or directory"))
            continue
        for item in found:  # a file named twice (or inside two named folders) is loaded once
            if item not in seen:
                seen.add(item)
                files.append(item)
    return files, problems


# --------------------------------------------------------------------------- shared helpers


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip()


def _first_line_title(text: str) -> str | None:
    for line in text.split("\n"):
        if line.strip():
            title = line.strip()
            return title if len(title) <= MAX_TITLE_CHARS else None
    return None


def _make_document(
    key: str, shown_path: str, title: str, text: str, tags: Sequence[str], sections: tuple[Section, ...] = ()
) -> Document:
    tag_tuple = tuple(sorted({t for t in tags if t}))
    content_hash = _sha(title + "\0" + text + "\0" + ",".join(tag_tuple))
    return Document(
        doc_id=_sha(key)[:20],
        path=shown_path,
        title=title,
        text=text,
        content_hash=content_hash,
        sections=sections or (Section(text=text, char_start=0, page=None),),
        tags=tag_tuple,
    )


def _refuse_binary(data: bytes) -> None:
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise _Problem("binary file, not text")


def _decode_text(data: bytes) -> str:
    """Strict UTF-8 (BOM allowed); binary or mis-encoded files are refused, not guessed at."""
    _refuse_binary(data)
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Problem(
            f"not UTF-8 text (invalid byte at offset {exc.start + skip}) — convert it to UTF-8"
        ) from None


def _require_text(text: str) -> str:
    if not text.strip():
        raise _Problem("no text found (empty file)")
    return text


@contextmanager
def _quiet(*logger_names: str) -> Iterator[None]:
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


# --------------------------------------------------------------------------- formats


def _load_txt(path: Path, data: bytes, tags: Sequence[str]) -> list[Document]:
    text = _require_text(_normalise(_decode_text(data)))
    title = _first_line_title(text) or path.stem
    return [_make_document(str(path), str(path), title, text, tags)]


_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_MD_HEADING = re.compile(r"^#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def _split_front_matter(text: str) -> tuple[str | None, str]:
    """Strip a leading YAML block; return its `title:` (read with a regex: no YAML dependency)."""
    if not text.startswith("---\n"):
        return None, text
    end = _FRONT_MATTER_END.search(text, 4)
    if end is None:
        return None, text  # an unterminated '---' is a horizontal rule, not front matter
    match = _FRONT_MATTER_TITLE.search(text[4 : end.start()])
    title = match.group(1).strip().strip("'\"").strip() if match else None
    return title or None, text[end.end() :].lstrip("\n")


def _markdown_heading(text: str) -> str | None:
    in_fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence  # a '# comment' in a code block is not a heading
        elif not in_fence and (match := _MD_HEADING.match(line)):
            return match.group(1).strip()
    return None


def _load_markdown(path: Path, data: bytes, tags: Sequence[str]) -> list[Document]:
    front_title, body = _split_front_matter(_normalise(_decode_text(data)))
    text = _require_text(body)
    title = front_title or _markdown_heading(text) or _first_line_title(text) or path.stem
    return [_make_document(str(path), str(path), title, text, tags)]


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _html_title(html: str) -> str | None:
    import trafilatura

    try:
        with _quiet("trafilatura", "htmldate", "courlan"):
            metadata = trafilatura.extract_metadata(html)
        if metadata is not None and metadata.title and metadata.title.strip():
            return metadata.title.strip()
    except Exception:  # metadata is a nicety; fall back to <title>
        pass
    if match := _HTML_TITLE.search(html):
        title = " ".join(html_lib.unescape(match.group(1)).split())
        return title or None
    return None


def _load_html(path: Path, data: bytes, tags: Sequence[str]) -> list[Document]:
    import trafilatura
    from trafilatura.utils import decode_file

    _refuse_binary(data)
    try:
        html = _decode_text(data)
    except _Problem:
        html = decode_file(data)  # saved web pages often use a legacy charset; detect it rather than refuse
    try:
        with _quiet("trafilatura", "htmldate", "courlan"):
            text = trafilatura.extract(
                html, output_format="txt", include_comments=False, include_tables=True, favor_recall=True
            )
            if not text or not text.strip():  # very short pages fall under trafilatura's thresholds
                text = trafilatura.html2txt(html)
    except Exception as exc:
        raise _Problem(f"could not extract text from HTML: {exc}") from None
    text = _require_text(_normalise(text or ""))
    title = _html_title(html) or path.stem
    return [_make_document(str(path), str(path), title, text, tags)]


def _load_pdf(path: Path, data: bytes, tags: Sequence[str]) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    with _quiet("pypdf"):
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are "encrypted" with no password
                raise _Problem("PDF is password-protected — remove the password (e.g. `qpdf --decrypt`) first")
            pages = [(number, _normalise(page.extract_text() or "")) for number, page in enumerate(reader.pages, 1)]
            meta_title = _pdf_meta_title(reader)
        except _Problem:
            raise
        except (DependencyError, FileNotDecryptedError) as exc:  # e.g. AES without the `cryptography` package
            raise _Problem(f"PDF is encrypted and cannot be opened: {exc}") from None
        except Exception as exc:  # pypdf raises many types on damaged files; all mean the same to the user
            raise _Problem(f"not a readable PDF: {exc}") from None
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    for number, page_text in pages:
        if not page_text.strip():
            continue  # blank page: skipped, but later pages keep their real numbers
        if parts:
            offset += 2  # the "\n\n" joining pages
        sections.append(Section(text=page_text, char_start=offset, page=number))
        parts.append(page_text)
        offset += len(page_text)
    if not parts:
        raise _Problem("PDF has no text layer (scanned images?) — run OCR first")
    text = "\n\n".join(parts)
    title = meta_title or _first_line_title(text) or path.stem
    return [_make_document(str(path), str(path), title, text, tags, tuple(sections))]


def _pdf_meta_title(reader: Any) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # broken info dictionaries are common and harmless
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None


def _record_document(
    record: Any, position: int, path: Path, config: IngestConfig, extra_tags: Sequence[str], seen: dict[str, str]
) -> tuple[Document, str]:
    """One JSON object -> (Document, record id). `position`: 1-based line (JSONL) or 0-based index (JSON)."""
    if not isinstance(record, dict):
        raise _Problem(f"record is a JSON {type(record).__name__}, expected an object")
    field = config.json_text_field
    raw_text = record.get(field)
    text = _normalise(raw_text) if isinstance(raw_text, str) else ""
    if not text.strip():
        raise _Problem(f"record has no '{field}' text field — set ingest.json_text_field in adaptlab.toml")
    raw_id = record.get(config.json_id_field)
    has_id = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id) != ""
    record_id = str(raw_id) if has_id else str(position)
    if record_id in seen:
        raise _Problem(f"duplicate record id '{record_id}' (first seen at {seen[record_id]}) — ids must be unique")
    raw_title = record.get(config.json_title_field)
    title = raw_title.strip() if isinstance(raw_title, str) and raw_title.strip() else None
    title = title or _first_line_title(text) or f"{path.stem} #{record_id}"
    raw_tags = record.get(config.json_tags_field)
    # Lenient on purpose: a lone string is one tag; non-string list items are ignored.
    if isinstance(raw_tags, str):
        record_tags = [raw_tags]
    elif isinstance(raw_tags, list):
        record_tags = [t for t in raw_tags if isinstance(t, str)]
    else:
        record_tags = []
    key = f"{path}#{record_id}"
    return _make_document(key, key, title, text, [*extra_tags, *record_tags]), record_id


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Problem(f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None


def _load_jsonl(
    path: Path, data: bytes, config: IngestConfig, tags: Sequence[str]
) -> tuple[list[Document], list[FileProblem]]:
    text = _require_text(_decode_text(data))
    documents: list[Document] = []
    problems: list[FileProblem] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            document, record_id = _record_document(_parse_json(line), number, path, config, tags, seen)
        except _Problem as problem:
            problems.append(FileProblem(str(path), problem.reason, line=number))
            continue
        seen[record_id] = f"line {number}"
        documents.append(document)
    return documents, problems


def _load_json(
    path: Path, data: bytes, config: IngestConfig, tags: Sequence[str]
) -> tuple[list[Document], list[FileProblem]]:
    payload = _parse_json(_require_text(_decode_text(data)))
    if isinstance(payload, dict):
        # A single object is one document, keyed by the file itself like a .txt.
        record, _ = _record_document(payload, 0, path, config, tags, {})
        return [_make_document(str(path), str(path), record.title, record.text, record.tags)], []
    if not isinstance(payload, list):
        raise _Problem(f"JSON top level is a {type(payload).__name__}; expected an object or a list of objects")
    if not payload:
        raise _Problem("no records found (empty JSON list)")
    documents: list[Document] = []
    problems: list[FileProblem] = []
    seen: dict[str, str] = {}
    for index, record in enumerate(payload):
        try:
            document, record_id = _record_document(record, index, path, config, tags, seen)
        except _Problem as problem:
            problems.append(FileProblem(str(path), f"record #{index}: {problem.reason}"))
            continue
        seen[record_id] = f"record #{index}"
        documents.append(document)
    return documents, problems


# --------------------------------------------------------------------------- entry point

_SINGLE_DOCUMENT_LOADERS: dict[str, Callable[[Path, bytes, Sequence[str]], list[Document]]] = {
    ".txt": _load_txt,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
}


def _read_bytes(path: Path, config: IngestConfig) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _Problem("no such file or directory") from None
    except OSError as exc:
        raise _Problem(f"cannot read file: {exc.strerror or exc}") from None
    if size > config.max_file_mb * _MIB:
        raise _Problem(
            f"file is {size / _MIB:.1f} MB, over ingest.max_file_mb = {config.max_file_mb:g}"
            " — raise the limit or split the file"
        )
    try:
        data = path.read_bytes()
    except PermissionError:
        raise _Problem("permission denied — cannot read the file; check its permissions") from None
    except IsADirectoryError:
        raise _Problem("is a directory — pass folders to discover(), not load_file()") from None
    except OSError as exc:
        raise _Problem(f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise _Problem("no text found (empty file)")
    return data


def load_file(
    path: Path, config: IngestConfig, extra_tags: Sequence[str] = ()
) -> tuple[list[Document], list[FileProblem]]:
    """Load one file into Documents (several for .json/.jsonl). Never raises for bad input."""
    resolved = Path(path).expanduser().resolve()
    suffix = resolved.suffix.lower()
    tags = tuple(extra_tags)
    try:
        if suffix in (".jsonl", ".json"):
            records = _load_jsonl if suffix == ".jsonl" else _load_json
            return records(resolved, _read_bytes(resolved, config), config, tags)
        if suffix not in _SINGLE_DOCUMENT_LOADERS:
            supported = ", ".join(sorted([*_SINGLE_DOCUMENT_LOADERS, ".json", ".jsonl"]))
            raise _Problem(f"unsupported file type {suffix or '(no extension)'} (supported: {supported})")
        return _SINGLE_DOCUMENT_LOADERS[suffix](resolved, _read_bytes(resolved, config), tags), []
    except _Problem as problem:
        return [], [FileProblem(str(resolved), problem.reason, problem.line)]
