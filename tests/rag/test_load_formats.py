"""The office, spreadsheet, table and OCR loaders (adaptlab.rag.formats): locations, tables as readable row groups,
and bad input reported as FileProblems while the rest of a folder still loads."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from format_fixtures import (
    SALES_HEADER,
    make_docx,
    make_pptx,
    make_scanned_pdf,
    make_table_pdf,
    make_xlsx,
    text_image,
)

from adaptlab.config import IngestConfig
from adaptlab.rag.formats.tables import TableBudget, table_row_groups
from adaptlab.rag.load import discover, load_file
from adaptlab.types import Document, FileProblem, Section

CFG = IngestConfig()
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


def _load_one(path: Path, config: IngestConfig = CFG, tables: TableBudget | None = None) -> Document:
    docs, problems = load_file(path, config, tables=tables)
    assert problems == [] and len(docs) == 1
    doc = docs[0]
    for section in doc.sections:  # citations point by offset: every section is an exact slice
        assert doc.text[section.char_start : section.char_start + len(section.text)] == section.text
    return doc


def _problem(path: Path, config: IngestConfig = CFG) -> FileProblem:
    docs, problems = load_file(path, config)
    assert docs == [] and len(problems) == 1
    assert problems[0].path == str(path.resolve())
    return problems[0]


def _tables(doc: Document) -> list[Section]:
    return [s for s in doc.sections if s.table is not None or s.cells is not None]


# --------------------------------------------------------------------------- formats and locations


def test_docx_headings_and_table(tmp_path: Path) -> None:
    doc = _load_one(make_docx(tmp_path / "manual.docx"))
    assert doc.title == "Field Manual"
    prose = {s.heading_path: s.text for s in doc.sections if s.table is None}
    assert "90 days by the night shift" in prose[("Field Manual", "Maintenance")]
    assert "ear protection" in prose[("Field Manual", "Safety")]
    (table,) = _tables(doc)
    assert table.table == 1 and table.heading_path == ("Field Manual", "Maintenance") and table.page is None
    lines = table.text.split("\n")
    assert lines[0] == "| Part          | Interval |" and lines[1].startswith("|---")
    assert lines[2] == "| Intake filter | 90 days  |"


def test_pptx_slides_titles_notes_and_table(tmp_path: Path) -> None:
    doc = _load_one(make_pptx(tmp_path / "review.pptx"))
    assert doc.title == "Quarterly Review"
    first, second, table = doc.sections
    assert (first.slide, first.heading_path) == (1, ("Quarterly Review",)) and "churn fell" in first.text
    assert second.slide == 2 and "Notes: Research asked" in second.text
    assert (table.slide, table.table, table.heading_path) == (2, 1, ("Budget by Team",))
    assert table.text.split("\n")[0] == "| Team     | Budget |"


def test_xlsx_sheet_cells_and_header_in_every_row_group(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "sales.xlsx", rows=30)
    doc = _load_one(path, tables=TableBudget(max_tokens=120))
    groups = _tables(doc)
    assert len(groups) > 1 and all(s.sheet == "Sales" and s.heading_path == ("Sales",) for s in groups)
    assert groups[0].cells is not None and groups[0].cells.startswith("A1:D")
    assert groups[-1].cells is not None and groups[-1].cells.endswith("D31")
    covered = [int(s.cells.split(":")[1][1:]) for s in groups if s.cells]
    assert covered == sorted(covered)  # consecutive ranges, top to bottom
    header = "| " + " | ".join(SALES_HEADER) + " |"
    for group in groups:
        assert group.text.split("\n")[0].replace("  ", " ").startswith(header.replace("  ", " ")[:10])
        assert group.text.startswith(groups[0].text.split("\n")[0])  # the same header line heads every group
    rows = [line for s in groups for line in s.text.split("\n")[2:]]
    assert len(rows) == 30 and "| North  | Widget 0  | 10    | 100.5   |" in rows  # no row lost or split


def test_csv_cells(tmp_path: Path) -> None:
    path = tmp_path / "stock.csv"
    path.write_text("sku;name;count\nA-1;Bolt;40\n\nA-2;\"Nut, hex\";12\n", encoding="utf-8")
    doc = _load_one(path)
    (table,) = doc.sections
    assert table.cells == "A1:C4" and table.sheet is None
    assert table.text.split("\n")[-1] == "| A-2 | Nut, hex | 12    |"


def test_html_tables_and_heading_path(tmp_path: Path) -> None:
    path = tmp_path / "prices.html"
    path.write_text(
        "<html><head><title>Prices</title></head><body><article><h1>Fruit report</h1>"
        "<p>Our fruit prices for the year are listed below in detail for every buyer of the cooperative.</p>"
        "<h2>Price table</h2><table><tr><th>Fruit</th><th>Price</th></tr><tr><td>Apple</td><td>1.20</td></tr>"
        "<tr><td>Banana | split</td><td>0.50</td></tr></table><h3>Notes</h3>"
        "<p>Prices are in euro and include taxes for the whole year of trading in the region.</p>"
        "</article></body></html>", encoding="utf-8")
    doc = _load_one(path)
    (table,) = _tables(doc)
    assert table.heading_path == ("Fruit report", "Price table") and table.table == 1
    assert table.text.split("\n") == ["| Fruit           | Price |", "|-----------------|-------|",
                                      "| Apple           | 1.20  |", "| Banana \\| split | 0.50  |"]
    notes = next(s for s in doc.sections if "taxes" in s.text)
    assert notes.heading_path == ("Fruit report", "Price table", "Notes")


def test_markdown_one_section_per_heading(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("Intro line.\n\n# Guide\n\nText.\n\n## Setup\n\nSteps.\n\n```\n# not a heading\n```\n\n"
                    "### Linux\n\napt.\n\n## Use\n\nRun it.\n", encoding="utf-8")
    doc = _load_one(path)
    assert doc.title == "Guide"
    assert [s.heading_path for s in doc.sections] == [
        (), ("Guide",), ("Guide", "Setup"), ("Guide", "Setup", "Linux"), ("Guide", "Use")]
    assert "# not a heading" in doc.sections[2].text


def test_pdf_table_on_its_page_with_the_text_around_it(tmp_path: Path) -> None:
    doc = _load_one(make_table_pdf(tmp_path / "levels.pdf"))
    (table,) = _tables(doc)
    assert (table.page, table.table) == (2, 1)
    assert table.text.split("\n")[2] == "| Lake Aster | 41.5      |"
    page2 = [s.text for s in doc.sections if s.page == 2]
    assert "listed below" in page2[0] and "gauge keeper" in page2[-1]  # text before and after the table kept
    assert "Lake Aster" not in "".join(s.text for s in doc.sections if s.table is None)  # not twice


def test_row_groups_never_split_a_row_and_repeat_the_header() -> None:
    rows = [["id", "note"]] + [[str(i), "word " * (i % 7 + 1)] for i in range(60)]
    groups = table_row_groups(rows, TableBudget(max_tokens=40))
    assert len(groups) > 3
    assert all(g.text.split("\n")[0].startswith("| id ") for g in groups)
    data = [line for g in groups for line in g.text.split("\n")[2:]]
    assert [line.split("|")[1].strip() for line in data] == [str(i) for i in range(60)]
    assert [(g.first_row, g.last_row) for g in groups][0][0] == 0


# --------------------------------------------------------------------------- OCR


@needs_tesseract
def test_scanned_pdf_is_ocrd_per_page(tmp_path: Path) -> None:
    path = make_scanned_pdf(tmp_path / "scan.pdf", [["The turbine hall floods in March."], ["The levee holds."]])
    doc = _load_one(path)
    assert [s.page for s in doc.sections] == [1, 2]
    assert "turbine hall floods" in doc.sections[0].text and "levee holds" in doc.sections[1].text


@needs_tesseract
def test_image_ocr_and_image_without_text(tmp_path: Path) -> None:
    text_image(["Invoice number 4471", "Total due 120 euro"]).save(tmp_path / "invoice.png")
    assert "Invoice number 4471" in _load_one(tmp_path / "invoice.png").text
    text_image([]).save(tmp_path / "blank.jpg")
    problem = _problem(tmp_path / "blank.jpg")
    assert "no text found by OCR" in problem.reason and "legible" in problem.fix


def test_missing_tesseract_is_a_problem_with_the_install_fix(tmp_path: Path, monkeypatch) -> None:
    pytesseract = pytest.importorskip("pytesseract")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    text_image(["Some words"]).save(tmp_path / "photo.png")
    problem = _problem(tmp_path / "photo.png")
    assert "tesseract" in problem.reason and "apt-get install tesseract-ocr" in problem.fix
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [["Scanned words"]])
    assert "apt-get install tesseract-ocr" in _problem(scan).fix
    # A PDF with a text page and a scanned page: the text page loads, the scanned one is reported.
    fpdf = pytest.importorskip("fpdf")
    from pypdf import PdfReader, PdfWriter

    text_pdf = fpdf.FPDF()
    text_pdf.add_page()
    text_pdf.set_font("helvetica", size=12)
    text_pdf.multi_cell(0, 10, "A page with a text layer.")
    text_pdf.output(str(tmp_path / "text.pdf"))
    writer = PdfWriter()
    for source in (tmp_path / "text.pdf", scan):
        for page in PdfReader(str(source)).pages:
            writer.add_page(page)
    writer.write(str(tmp_path / "mixed.pdf"))
    docs, problems = load_file(tmp_path / "mixed.pdf", CFG)
    assert len(docs) == 1 and "text layer" in docs[0].text
    assert len(problems) == 1 and "page(s) 2" in problems[0].reason and "tesseract-ocr" in problems[0].fix


def test_ocr_off(tmp_path: Path) -> None:
    text_image(["Some words"]).save(tmp_path / "photo.png")
    problem = _problem(tmp_path / "photo.png", IngestConfig(ocr=False))
    assert "OCR" in problem.reason and "ingest.ocr = true" in problem.fix


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx"])
def test_corrupt_office_files(tmp_path: Path, suffix: str) -> None:
    random_bytes = tmp_path / f"random{suffix}"
    random_bytes.write_bytes(bytes(range(256)) * 8)
    problem = _problem(random_bytes)
    assert f"not a {suffix} file" in problem.reason and "save it again" in problem.fix
    good = {".docx": make_docx, ".pptx": make_pptx, ".xlsx": make_xlsx}[suffix](tmp_path / f"good{suffix}")
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    problem = _problem(truncated)
    assert f"damaged {suffix} file" in problem.reason and "save it again" in problem.fix
    # A zip that is not an Office package (e.g. a renamed archive).
    with zipfile.ZipFile(tmp_path / f"archive{suffix}", "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert f"damaged {suffix} file" in _problem(tmp_path / f"archive{suffix}").reason


def test_password_protected_xlsx(tmp_path: Path) -> None:
    # Office encrypts a password-protected .xlsx into an OLE compound file (not a zip): its signature is enough.
    path = tmp_path / "locked.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000))
    problem = _problem(path)
    assert "password-protected" in problem.reason and "remove the password" in problem.fix


def test_empty_workbook_and_empty_documents(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.create_sheet("Also empty")
    workbook.save(str(tmp_path / "empty.xlsx"))
    problem = _problem(tmp_path / "empty.xlsx")
    assert "every sheet is empty" in problem.reason and problem.fix
    docx = pytest.importorskip("docx")
    docx.Document().save(str(tmp_path / "empty.docx"))
    assert "no text found" in _problem(tmp_path / "empty.docx").reason
    pptx = pytest.importorskip("pptx")
    pptx.Presentation().save(str(tmp_path / "empty.pptx"))
    assert "no text found" in _problem(tmp_path / "empty.pptx").reason


def test_a_bad_file_never_stops_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    make_docx(folder / "manual.docx")
    make_xlsx(folder / "sales.xlsx")
    (folder / "broken.pptx").write_bytes(b"PK\x03\x04 not really")
    (folder / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100))
    (folder / "~$manual.docx").write_bytes(b"office lock file")  # skipped, not reported
    files, problems = discover([folder], CFG)
    assert problems == [] and [f.name for f in files] == ["broken.pptx", "locked.xlsx", "manual.docx", "sales.xlsx"]
    loaded = [load_file(f, CFG) for f in files]
    assert [len(docs) for docs, _ in loaded] == [0, 0, 1, 1]
    assert [len(problems) for _, problems in loaded] == [1, 1, 0, 0]
