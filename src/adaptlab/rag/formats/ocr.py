"""OCR through Tesseract (pytesseract runs Debian's `tesseract` program): images, and PDF pages without text.

Tesseract is a system program, not a wheel: when it is missing the file gets a FileProblem naming the install,
never a crash. Its thread count is capped by OMP_THREAD_LIMIT (adaptlab.runtime), like the BLAS pools.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adaptlab.config import IngestConfig
from adaptlab.rag.formats.common import DocumentBuilder, LoadContext, Loaded, LoadProblem, make_document, normalise

TESSERACT_FIX = (
    "install Tesseract OCR (Debian/Ubuntu: `apt-get install tesseract-ocr`; macOS: `brew install tesseract`), "
    "or set ingest.ocr = false to skip such files"
)
OCR_OFF_FIX = "set ingest.ocr = true (needs the tesseract-ocr program) or convert the file to text first"


def ocr_text(image: Any, config: IngestConfig) -> str:
    """The text Tesseract reads in one PIL image (normalised; may be empty)."""
    import pytesseract

    try:
        text = pytesseract.image_to_string(image.convert("L"), lang=config.ocr_language)
    except pytesseract.TesseractNotFoundError:
        raise LoadProblem("needs OCR, but the `tesseract` program is not installed", fix=TESSERACT_FIX) from None
    except pytesseract.TesseractError as exc:  # e.g. a language without its traineddata installed
        raise LoadProblem(
            f"OCR failed: {exc.message.strip() or exc}",
            fix=f"install the Tesseract language data for ingest.ocr_language = {config.ocr_language!r} "
            "(Debian: tesseract-ocr-<lang>) or change the setting",
        ) from None
    # Tesseract ends pages with a form feed and pads lines: keep the words and the line breaks only.
    return normalise("\n".join(line.rstrip() for line in text.replace("\f", "\n").split("\n")))


def load_image(path: Path, data: bytes, context: LoadContext) -> Loaded:
    """A photo or scan of text; every frame of a multi-page TIFF is a page."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    if not context.config.ocr:
        raise LoadProblem("an image needs OCR, which is off (ingest.ocr = false)", fix=OCR_OFF_FIX)
    try:
        image = Image.open(io.BytesIO(data))
        frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise LoadProblem(f"not a readable image: {exc}", fix="re-export the image (PNG, JPEG or TIFF)") from None
    builder = DocumentBuilder()
    for number, frame in enumerate(frames, start=1):
        builder.add(ocr_text(frame, context.config), page=number if len(frames) > 1 else None)
    if builder.empty:
        raise LoadProblem(
            "no text found by OCR (a photo without writing, or a blank or low-resolution scan?)",
            fix="check the image shows legible text; scans OCR best at 300 dpi",
        )
    title = path.stem
    return [make_document(str(path), str(path), title, builder.text, context.tags, builder.sections)], []
