"""Writers for the document formats the loaders read (.docx, .pptx, .xlsx, PDFs with tables, scans, images),
so tests build their inputs instead of checking binary files in."""

from __future__ import annotations

from pathlib import Path

import pytest

SALES_HEADER = ["Region", "Product", "Units", "Revenue"]


def sales_rows(count: int) -> list[list[object]]:
    regions = ["North", "South", "East", "West"]
    return [[regions[i % 4], f"Widget {i}", 10 + i, 100.5 + i] for i in range(count)]


def make_docx(path: Path) -> Path:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.core_properties.title = "Field Manual"
    document.add_heading("Field Manual", level=1)
    document.add_paragraph("This manual explains how the pumping station is operated.")
    document.add_heading("Maintenance", level=2)
    document.add_paragraph("The intake filter is replaced every 90 days by the night shift.")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [["Part", "Interval"], ["Intake filter", "90 days"], ["Pump seal", "2 years"]]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    document.add_heading("Safety", level=2)
    document.add_paragraph("Wear ear protection near the turbines at all times.")
    document.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    pptx = pytest.importorskip("pptx")
    from pptx.util import Inches

    presentation = pptx.Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[1])
    first.shapes.title.text = "Quarterly Review"
    first.placeholders[1].text = "Customer churn fell to four percent this quarter."
    second = presentation.slides.add_slide(presentation.slide_layouts[5])
    second.shapes.title.text = "Budget by Team"
    shape = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2))
    for r, values in enumerate([["Team", "Budget"], ["Platform", "1.2M"], ["Research", "800k"]]):
        for c, value in enumerate(values):
            shape.table.cell(r, c).text = value
    second.notes_slide.notes_text_frame.text = "Research asked for a bigger compute budget."
    presentation.save(str(path))
    return path


def make_xlsx(path: Path, rows: int = 30, *, empty_sheet: bool = True) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sales"
    sheet.append(SALES_HEADER)
    for row in sales_rows(rows):
        sheet.append(row)
    if empty_sheet:
        workbook.create_sheet("Empty")
    workbook.save(str(path))
    return path


def make_table_pdf(path: Path) -> Path:
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 10, "Introduction: this report covers the reservoir levels.")
    pdf.add_page()
    pdf.multi_cell(0, 10, "Reservoir levels measured in spring are listed below.")
    with pdf.table() as table:
        for values in [["Reservoir", "Level (m)"], ["Lake Aster", "41.5"], ["Lake Birch", "37.2"]]:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.multi_cell(0, 10, "Levels are read at dawn by the gauge keeper.")
    pdf.output(str(path))
    return path


def text_image(lines: list[str], size: tuple[int, int] = (1400, 500)):
    """A white image with black text, large enough for Tesseract (what a scan looks like)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for number, line in enumerate(lines):
        draw.text((60, 60 + number * 80), line, fill="black", font=font)
    return image


def make_scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF whose pages are images only (no text layer), as a scanner writes them."""
    images = [text_image(lines) for lines in pages]
    images[0].save(str(path), "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    return path
