"""PDF: each page's text with its tables rendered as tables (pdfplumber), OCR for pages without a text layer.

pypdf only checks encryption and reads the metadata title; pdfplumber (pdfminer) reads every page because it
finds tables with their cells. A page's text outside its tables is kept, in reading order around them.
"""

from __future__ import annotations

import io
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
from adaptlab.rag.formats.ocr import OCR_OFF_FIX, ocr_text
from adaptlab.types import FileProblem

_QUIET = ("pypdf", "pdfminer", "pdfplumber")


def _check_and_title(data: bytes) -> str | None:
    """Refuse password-protected or unreadable PDFs (pypdf's messages are the clearer); the metadata title."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are "encrypted" with no password
            raise LoadProblem(
                "PDF is password-protected", fix="remove the password (e.g. `qpdf --decrypt`) first"
            )
        reader.pages[0] if len(reader.pages) else None  # noqa: B018 — parse the page tree now: damage shows here
    except LoadProblem:
        raise
    except (DependencyError, FileNotDecryptedError) as exc:  # e.g. AES without the `cryptography` package
        raise LoadProblem(f"PDF is encrypted and cannot be opened: {exc}") from None
    except Exception as exc:  # pypdf raises many types on damaged files; all mean the same to the user
        raise LoadProblem(f"not a readable PDF: {exc}") from None
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # broken info dictionaries are common and harmless
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None


def _inside(obj: dict[str, Any], bbox: tuple[float, float, float, float]) -> bool:
    x = (obj["x0"] + obj["x1"]) / 2
    y = (obj["top"] + obj["bottom"]) / 2
    return bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]


def _add_page(builder: DocumentBuilder, page: Any, number: int, context: LoadContext) -> None:
    """The page's text in vertical bands between its tables, each table as its own Section."""
    tables = sorted(page.find_tables(), key=lambda t: (t.bbox[1], t.bbox[0]))
    boxes = [t.bbox for t in tables]
    outside = page.filter(lambda obj: not any(_inside(obj, box) for box in boxes)) if boxes else page
    band_top = float("-inf")
    for table in [*tables, None]:
        band_bottom = table.bbox[1] if table is not None else float("inf")
        low, high = band_top, band_bottom  # bind now: the filter runs lazily

        def in_band(obj: dict[str, Any], low: float = low, high: float = high) -> bool:
            return "top" not in obj or low <= (obj["top"] + obj["bottom"]) / 2 < high

        band = outside.filter(in_band) if tables else outside
        builder.add(normalise(band.extract_text() or ""), page=number)
        if table is not None:
            rows = [[clean_cell(cell) for cell in row] for row in table.extract()]
            builder.add_table(rows, context.tables, page=number)
            band_top = table.bbox[1]  # text beside a table reads after it


def load_pdf(path: Path, data: bytes, context: LoadContext) -> Loaded:
    import pdfplumber

    with quiet(*_QUIET):
        meta_title = _check_and_title(data)
        builder = DocumentBuilder()
        skipped: list[int] = []  # scanned pages OCR could not read (tesseract missing or failing)
        ocr_problem: LoadProblem | None = None
        try:
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                for number, page in enumerate(pdf.pages, 1):
                    if page.chars:
                        _add_page(builder, page, number, context)
                    elif page.images and context.config.ocr:  # a scanned page: an image, no text layer
                        if ocr_problem is None:  # after one failure the rest would fail the same way
                            try:
                                image = page.to_image(resolution=context.config.ocr_dpi).original
                                builder.add(ocr_text(image, context.config), page=number)
                                continue
                            except LoadProblem as problem:
                                ocr_problem = problem
                        skipped.append(number)
                    # else: a blank page, skipped; later pages keep their real numbers
        except Exception as exc:  # pdfminer raises many types on damaged files
            raise LoadProblem(f"not a readable PDF: {exc}") from None
    problems: list[FileProblem] = []
    if ocr_problem is not None:
        pages = ", ".join(str(n) for n in skipped)
        reason = f"scanned page(s) {pages} could not be read: {ocr_problem.reason}"
        if builder.empty:
            raise LoadProblem(reason, fix=ocr_problem.fix)
        problems.append(FileProblem(str(path), reason + " (the rest of the file was loaded)", fix=ocr_problem.fix))
    if builder.empty:
        if not context.config.ocr:
            raise LoadProblem("PDF has no text layer (scanned images?) and OCR is off", fix=OCR_OFF_FIX)
        raise LoadProblem("PDF has no text layer and no scanned text OCR could read (blank pages?)",
                          fix="check the file shows legible text; scans OCR best at 300 dpi")
    text = builder.text
    title = meta_title or first_line_title(text) or path.stem
    return [make_document(str(path), str(path), title, text, context.tags, builder.sections)], problems
