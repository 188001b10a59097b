"""Word (.docx) and PowerPoint (.pptx): headings and slide titles become heading paths, tables become tables.

A .docx has no pages until a word processor lays it out, so its chunks carry headings, not page numbers; a
.pptx chunk carries its slide number (the slide's text, then its notes, then each table as its own Section).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from adaptlab.rag.formats.common import (
    DocumentBuilder,
    LoadContext,
    Loaded,
    LoadProblem,
    clean_cell,
    first_line_title,
    make_document,
    normalise,
    quiet,
)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a Compound File: Office's encrypted container, or .doc/.xls/.ppt
_ZIP_MAGIC = b"PK\x03\x04"
_HEADING_STYLE = re.compile(r"^Heading ([1-9])$")


def open_office_zip(data: bytes, kind: str, opener: Any) -> Any:
    """Open an Office Open XML file, turning every way it can be broken into one clear problem."""
    resave = f"open it in its Office program (or LibreOffice) and save it again as {kind}"
    if data.startswith(_OLE_MAGIC):
        raise LoadProblem(
            f"password-protected (encrypted) {kind}, or an old binary Office file renamed to {kind}",
            fix=f"remove the password (File → Info → Protect) and save it again as {kind}",
        )
    if not data.startswith(_ZIP_MAGIC):
        raise LoadProblem(f"not a {kind} file (it is not the zip package {kind} files are)", fix=resave)
    try:
        with quiet("docx", "pptx", "openpyxl"):
            return opener(io.BytesIO(data))
    except Exception as exc:  # zipfile.BadZipFile, KeyError for a missing part, lxml errors...: all "damaged"
        detail = str(exc) or type(exc).__name__
        raise LoadProblem(f"damaged {kind} file ({detail})", fix=resave) from None


def core_title(package: Any) -> str | None:
    try:
        title = package.core_properties.title
    except Exception:  # a broken docProps/core.xml costs the title only
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None


# --------------------------------------------------------------------------- .docx


def load_docx(path: Path, data: bytes, context: LoadContext) -> Loaded:
    from docx import Document as open_docx
    from docx.table import Table

    document = open_office_zip(data, ".docx", open_docx)
    builder = DocumentBuilder()
    headings: list[tuple[int, str]] = []  # (level, text) of the enclosing Heading-styled paragraphs
    pending: list[str] = []  # paragraphs under the current heading, emitted as one Section
    style_title: str | None = None

    def heading_path() -> tuple[str, ...]:
        return tuple(text for _, text in headings)

    def flush() -> None:
        if pending:
            builder.add("\n\n".join(pending), heading_path=heading_path())
            pending.clear()

    try:
        for block in document.iter_inner_content():  # paragraphs and tables in body order
            if isinstance(block, Table):
                flush()
                rows = [[clean_cell(cell.text) for cell in row.cells] for row in block.rows]
                builder.add_table(rows, context.tables, heading_path=heading_path())
                continue
            text = normalise(block.text)
            if not text.strip():
                continue
            style = block.style.name if block.style is not None else ""
            if style == "Title":
                style_title = style_title or clean_cell(text)
            if match := _HEADING_STYLE.match(style or ""):
                flush()
                level = int(match.group(1))
                while headings and headings[-1][0] >= level:
                    headings.pop()
                headings.append((level, clean_cell(text)))
            pending.append(f"- {text}" if (style or "").startswith("List") else text)
        flush()
    except Exception as exc:  # a part python-docx cannot read after opening (bad styles, broken XML)
        raise LoadProblem(f"damaged .docx file ({exc})",
                          fix="open it in Word or LibreOffice and save it again") from None
    if builder.empty:
        raise LoadProblem("no text found (empty document)")
    title = core_title(document) or style_title or (headings[0][1] if headings else None)
    title = title or first_line_title(builder.text) or path.stem
    return [make_document(str(path), str(path), title, builder.text, context.tags, builder.sections)], []


# --------------------------------------------------------------------------- .pptx


def _shapes(shapes: Any) -> list[Any]:
    """Every shape, groups opened, in reading order (top to bottom, then left to right)."""
    flat: list[Any] = []
    for shape in shapes:
        if getattr(shape, "shape_type", None) == 6:  # MSO_SHAPE_TYPE.GROUP
            flat.extend(_shapes(shape.shapes))
        else:
            flat.append(shape)
    return sorted(flat, key=lambda s: (s.top or 0, s.left or 0))


def load_pptx(path: Path, data: bytes, context: LoadContext) -> Loaded:
    from pptx import Presentation

    presentation = open_office_zip(data, ".pptx", Presentation)
    builder = DocumentBuilder()
    first_slide_title: str | None = None
    try:
        for number, slide in enumerate(presentation.slides, start=1):
            title_shape = slide.shapes.title
            slide_title = clean_cell(title_shape.text_frame.text) if title_shape is not None else ""
            first_slide_title = first_slide_title or slide_title or None
            location: dict[str, Any] = {"slide": number, "heading_path": (slide_title,) if slide_title else ()}
            texts: list[str] = []
            tables: list[list[list[str]]] = []
            for shape in _shapes(slide.shapes):
                if getattr(shape, "has_table", False):
                    tables.append([[clean_cell(cell.text) for cell in row.cells] for row in shape.table.rows])
                elif getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
                    texts.append(normalise(shape.text_frame.text))
            if slide.has_notes_slide:
                notes = normalise(slide.notes_slide.notes_text_frame.text if slide.notes_slide.notes_text_frame else "")
                if notes.strip():
                    texts.append(f"Notes: {notes}")
            builder.add("\n\n".join(texts), **location)
            for rows in tables:
                builder.add_table(rows, context.tables, **location)
    except Exception as exc:  # a slide part python-pptx cannot read after opening
        raise LoadProblem(f"damaged .pptx file ({exc})",
                          fix="open it in PowerPoint or LibreOffice and save it again") from None
    if builder.empty:
        raise LoadProblem("no text found (the slides hold no text or tables — images are not OCR'd)")
    title = core_title(presentation) or first_slide_title or path.stem
    return [make_document(str(path), str(path), title, builder.text, context.tags, builder.sections)], []
