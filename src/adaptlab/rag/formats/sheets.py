"""Spreadsheets: .xlsx (every sheet is a table, cited as Sheet!A1:D12) and .csv (one table, cited by cells).

A sheet's first non-empty row is its header; fully empty rows and columns around the data are dropped. Cell
values are the ones last computed by the spreadsheet program (a formula never calculated reads as empty).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptlab.rag.formats.common import DocumentBuilder, LoadContext, Loaded, LoadProblem, decode_text, make_document
from adaptlab.rag.formats.office import core_title, open_office_zip


def column_letter(number: int) -> str:
    """1 → A, 27 → AA (spreadsheet column names)."""
    letters = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def _add_grid(builder: DocumentBuilder, grid: Sequence[tuple[int, Sequence[Any]]], context: LoadContext,
              sheet: str | None) -> None:
    """grid: (1-based row number, values from column 1) of the non-empty rows."""
    filled = [[col for col, value in enumerate(values, start=1) if _cell_text(value)] for _, values in grid]
    first_col = min(cols[0] for cols in filled)
    last_col = max(cols[-1] for cols in filled)
    row_numbers = [number for number, _ in grid]
    rows = [[_cell_text(v) for v in values[first_col - 1 : last_col]] for _, values in grid]

    def cells_of(first: int, last: int) -> str:
        return f"{column_letter(first_col)}{row_numbers[first]}:{column_letter(last_col)}{row_numbers[last]}"

    location: dict[str, Any] = {"table": None}  # a sheet is located by its name and cells, not a table number
    if sheet is not None:
        location.update(sheet=sheet, heading_path=(sheet,))
    builder.add_table(rows, context.tables, cells_of=cells_of, **location)


def load_xlsx(path: Path, data: bytes, context: LoadContext) -> Loaded:
    from openpyxl import load_workbook

    # Not read_only: its row iteration trusts the file's stored dimensions, which many writers get wrong.
    workbook = open_office_zip(data, ".xlsx", lambda f: load_workbook(f, data_only=True))
    builder = DocumentBuilder()
    try:
        for sheet in workbook.worksheets:
            grid = [(number, values) for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
                    if any(_cell_text(v) for v in values)]
            if grid:  # an empty sheet has nothing to cite; an all-empty workbook is a problem below
                _add_grid(builder, grid, context, sheet.title)
    except Exception as exc:
        raise LoadProblem(f"damaged .xlsx file ({exc})",
                          fix="open it in Excel or LibreOffice and save it again") from None
    if builder.empty:
        raise LoadProblem("no data found (every sheet is empty)", fix="check it is the right file, or remove it")
    title = core_title(workbook) or path.stem
    return [make_document(str(path), str(path), title, builder.text, context.tags, builder.sections)], []


def load_csv(path: Path, data: bytes, context: LoadContext) -> Loaded:
    text = decode_text(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or too irregular to guess: plain commas
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise LoadProblem(f"not readable as CSV: {exc}", fix="save it again as UTF-8 CSV") from None
    grid = [(number, values) for number, values in enumerate(records, start=1) if any(v.strip() for v in values)]
    if not grid:
        raise LoadProblem("no data found (empty file)")
    builder = DocumentBuilder()
    _add_grid(builder, grid, context, sheet=None)
    return [make_document(str(path), str(path), path.stem, builder.text, context.tags, builder.sections)], []
