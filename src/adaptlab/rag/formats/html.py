"""HTML: the page's main content (trafilatura), with h1–h6 as heading paths and tables as readable tables.

trafilatura's XML output keeps the structure its plain-text output flattens (<head rend="h2">, <table> with
<row>/<cell role="head">), so the main-content extraction stays trafilatura's and the layout is ours.
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from typing import Any

from adaptlab.rag.formats.common import (
    DocumentBuilder,
    LoadContext,
    Loaded,
    LoadProblem,
    clean_cell,
    decode_text,
    make_document,
    normalise,
    quiet,
    refuse_binary,
    require_text,
)

_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_QUIET = ("trafilatura", "htmldate", "courlan")


def _html_title(html: str) -> str | None:
    import trafilatura

    try:
        with quiet(*_QUIET):
            metadata = trafilatura.extract_metadata(html)
        if metadata is not None and metadata.title and metadata.title.strip():
            return str(metadata.title).strip()
    except Exception:  # metadata is a nicety; fall back to <title>
        pass
    if match := _HTML_TITLE.search(html):
        title = " ".join(html_lib.unescape(match.group(1)).split())
        return title or None
    return None


def _table_rows(table: Any) -> list[list[str]]:
    rows = []
    for row in table.iter("row"):
        rows.append([clean_cell("".join(cell.itertext())) for cell in row.iter("cell")])
    # A table whose first row is not marked as a header still gets its first row as the header: a header-less
    # table has no better one, and repeating it keeps each row group's columns readable.
    return rows


def _block_text(element: Any) -> str:
    if element.tag == "list":
        return "\n".join(f"- {clean_cell(''.join(item.itertext()))}" for item in element.iter("item"))
    if element.tag == "code":
        return "".join(element.itertext())
    return "\n".join(line.strip() for line in "".join(element.itertext()).split("\n"))


def _structured(xml: str, context: LoadContext) -> DocumentBuilder:
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    builder = DocumentBuilder()
    if main is None:
        return builder
    headings: list[tuple[int, str]] = []  # (level, text) of the enclosing headings
    pending: list[str] = []  # blocks of prose under the current heading, emitted as one Section

    def flush() -> None:
        if pending:
            builder.add("\n\n".join(pending), heading_path=tuple(h for _, h in headings))
            pending.clear()

    for element in main:
        if element.tag == "head":
            flush()
            rend = element.get("rend") or "h2"
            level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
            text = clean_cell("".join(element.itertext()))
            while headings and headings[-1][0] >= level:
                headings.pop()
            if text:
                headings.append((level, text))
                pending.append("#" * level + " " + text)  # the heading stays in the text, as in Markdown
        elif element.tag == "table":
            flush()
            builder.add_table(_table_rows(element), context.tables, heading_path=tuple(h for _, h in headings))
        else:
            text = _block_text(element).strip()
            if text:
                pending.append(text)
    flush()
    return builder


def load_html(path: Path, data: bytes, context: LoadContext) -> Loaded:
    import trafilatura
    from trafilatura.utils import decode_file

    refuse_binary(data)
    try:
        html = decode_text(data)
    except LoadProblem:
        html = decode_file(data)  # saved web pages often use a legacy charset; detect it rather than refuse
    try:
        with quiet(*_QUIET):
            xml = trafilatura.extract(
                html, output_format="xml", include_comments=False, include_tables=True, favor_recall=True
            )
            builder = _structured(xml, context) if xml else DocumentBuilder()
            if builder.empty:  # very short pages fall under trafilatura's thresholds
                builder.add(normalise(trafilatura.html2txt(html) or ""))
    except Exception as exc:
        raise LoadProblem(f"could not extract text from HTML: {exc}") from None
    text = require_text(builder.text)
    title = _html_title(html) or path.stem
    return [make_document(str(path), str(path), title, text, context.tags, builder.sections)], []
