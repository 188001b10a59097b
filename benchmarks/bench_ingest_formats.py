"""Ingest throughput per document format, in pages/s, OCR included.

Data: generated here (the same writers the tests use, tests/rag/format_fixtures.py), COVID-QA article text
(bundled) as the prose. "Page" per format, stated because formats disagree on what one is:
  pdf (text + a table per page), pdf scanned (image-only pages, OCR'd), png image: a PDF page / an image;
  pptx: a slide; xlsx: a sheet (100 rows × 4 columns); csv: a file (100 rows × 4 columns);
  docx and html: 3,000 characters of extracted text (neither has pages until it is laid out).

  anchor   = `adaptlab ingest` of the same extracted text saved as .txt files (one per source file), so the
             ratio is what parsing the format costs beyond chunking, embedding and writing its text;
  measured = `adaptlab ingest` (rag.index.ingest) of the format's files into a fresh LanceStore, same embedder.
Also reported: load alone (load_file, no embedding) in pages/s. Best of --repeats rounds (noisy shared machine).
OCR runs Tesseract with OMP_THREAD_LIMIT=1 at ingest.ocr_dpi (300).

    .venv/bin/python benchmarks/bench_ingest_formats.py           # 8 pages per format (4 scanned)
    .venv/bin/python benchmarks/bench_ingest_formats.py --quick   # 3 pages per format, 1 round
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rag"))
from _common import Timer, finish, peak_rss_mb, print_table, set_threads  # noqa: E402

NAME = "bench_ingest_formats"
DOCX_HTML_PAGE_CHARS = 3000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 pages per format, 1 round")
    parser.add_argument("--pages", type=int, default=None, help="pages per format (default 8; --quick 3)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds, best kept (default 2; --quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS/tesseract threads (default 1)")
    args = parser.parse_args(argv)
    args.pages = args.pages or (3 if args.quick else 8)
    args.repeats = args.repeats or (1 if args.quick else 2)
    return args


def _prose(pages: int, scratch: Path) -> list[str]:
    """`pages` distinct passages of ~DOCX_HTML_PAGE_CHARS characters of real article text (COVID-QA)."""
    from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles

    write_articles(BUNDLED_COVID_QA, scratch, limit=pages)
    texts: list[str] = []
    for article in sorted((scratch / "articles").glob("*.txt")):
        context = article.read_text(encoding="utf-8")
        texts.extend(context[i : i + DOCX_HTML_PAGE_CHARS] for i in range(0, len(context), DOCX_HTML_PAGE_CHARS)
                     if len(context[i : i + DOCX_HTML_PAGE_CHARS]) > DOCX_HTML_PAGE_CHARS * 0.9)
    return texts[:pages]


def _rows(count: int, seed: int) -> list[list[object]]:
    return [[f"Region {(seed + i) % 7}", f"Item {seed}-{i}", 10 + i, round(100.5 + i * 1.25, 2)] for i in range(count)]


def write_corpus(folder: Path, pages: int) -> dict[str, tuple[Path, int]]:
    """One folder per format: {format: (folder, pages in it)}."""
    import csv

    import docx
    import fpdf
    import openpyxl
    import pptx
    from format_fixtures import text_image

    prose = _prose(pages, folder / "_articles")
    out: dict[str, tuple[Path, int]] = {}

    def sub(name: str) -> Path:
        path = folder / name
        path.mkdir(parents=True)
        return path

    pdf_dir = sub("pdf")
    pdf = fpdf.FPDF()
    pdf.set_font("helvetica", size=10)
    for n, text in enumerate(prose):
        pdf.add_page()
        pdf.multi_cell(0, 5, text[:1800].encode("latin-1", "replace").decode("latin-1"))
        with pdf.table() as table:
            for values in [["Region", "Item", "Units", "Revenue"], *_rows(6, n)]:
                row = table.row()
                for value in values:
                    row.cell(str(value))
    pdf.output(str(pdf_dir / "report.pdf"))
    out["pdf (text + table)"] = (pdf_dir, pages)

    scan_dir = sub("scan")
    scans = max(2, pages // 2)
    images = [text_image([f"Inspection {n}: the turbine hall floods in March.", "The levee holds at 41 metres.",
                          "Pumps 3 and 4 were serviced by the night shift."]) for n in range(scans)]
    images[0].save(str(scan_dir / "scan.pdf"), "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    out["pdf scanned (OCR)"] = (scan_dir, scans)

    png_dir = sub("png")
    for n, image in enumerate(images):
        image.save(png_dir / f"photo{n}.png")
    out["png (OCR)"] = (png_dir, scans)

    docx_dir = sub("docx")
    document = docx.Document()
    for n, text in enumerate(prose):
        document.add_heading(f"Section {n}", level=1)
        document.add_paragraph(text)
    document.save(str(docx_dir / "manual.docx"))
    out["docx"] = (docx_dir, pages)

    pptx_dir = sub("pptx")
    deck = pptx.Presentation()
    for n, text in enumerate(prose):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n}"
        slide.placeholders[1].text = text[:600]
    deck.save(str(pptx_dir / "deck.pptx"))
    out["pptx"] = (pptx_dir, pages)

    xlsx_dir = sub("xlsx")
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for n in range(pages):
        sheet = workbook.create_sheet(f"Sheet{n + 1}")
        sheet.append(["Region", "Item", "Units", "Revenue"])
        for row in _rows(100, n):
            sheet.append(row)
    workbook.save(str(xlsx_dir / "book.xlsx"))
    out["xlsx"] = (xlsx_dir, pages)

    csv_dir = sub("csv")
    for n in range(pages):
        with open(csv_dir / f"table{n}.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["Region", "Item", "Units", "Revenue"], *_rows(100, n)])
    out["csv"] = (csv_dir, pages)

    html_dir = sub("html")
    for n, text in enumerate(prose):
        rows = "".join(f"<tr>{''.join(f'<td>{v}</td>' for v in r)}</tr>" for r in _rows(6, n))
        (html_dir / f"page{n}.html").write_text(
            f"<html><head><title>Page {n}</title></head><body><article><h1>Page {n}</h1><p>{text}</p>"
            f"<table><tr><th>Region</th><th>Item</th><th>Units</th><th>Revenue</th></tr>{rows}</table>"
            "</article></body></html>", encoding="utf-8")
    out["html (+ table)"] = (html_dir, pages)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    import os

    os.environ["OMP_THREAD_LIMIT"] = str(args.threads)  # tesseract
    if shutil.which("tesseract") is None:
        print("tesseract-ocr is not installed (apt-get install tesseract-ocr): OCR rows cannot be measured",
              file=sys.stderr)
        return 2
    from adaptlab.config import AdaptlabConfig
    from adaptlab.embed.minilm import MiniLMEmbedder
    from adaptlab.rag.index import ingest
    from adaptlab.rag.lance_store import LanceStore
    from adaptlab.rag.load import TableBudget, discover, load_file

    config = AdaptlabConfig()
    embedder = MiniLMEmbedder(config.embedder.model_path, batch_size=config.embedder.batch_size)
    embedder.embed(["warm-up sentence for the embedder"] * 4)
    budget = TableBudget(config.chunk.size_tokens, lambda text: len(embedder.token_offsets(text)))

    def best_of(action: Callable[[int], object]) -> tuple[float, list[float]]:
        runs = []
        for round_number in range(args.repeats):
            with Timer() as timer:
                action(round_number)
            runs.append(timer.seconds)
        return min(runs), runs

    rows = []
    results = {}
    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-formats-") as tmp:
        tmp_path = Path(tmp)
        corpus = write_corpus(tmp_path / "data", args.pages)
        for name, (folder, pages) in corpus.items():
            files, _ = discover([folder], config.ingest)

            def load_all(_: int, files: list[Path] = files, name: str = name) -> None:
                for file in files:
                    docs, problems = load_file(file, config.ingest, tables=budget)
                    if problems:
                        raise RuntimeError(f"{name}: {problems}")

            load_s, _ = best_of(load_all)
            # The anchor's input: the same extracted text as .txt files.
            txt_dir = tmp_path / "txt" / folder.name
            txt_dir.mkdir(parents=True)
            for n, file in enumerate(files):
                for m, doc in enumerate(load_file(file, config.ingest, tables=budget)[0]):
                    (txt_dir / f"{n}-{m}.txt").write_text(doc.text, encoding="utf-8")

            def ingest_into(source: Path, label: str, folder: Path = folder,
                            name: str = name) -> Callable[[int], object]:
                def run(round_number: int) -> None:
                    run_config = config.model_copy(deep=True)
                    run_config.home = str(tmp_path / f"home-{label}-{folder.name}-{round_number}")
                    store = LanceStore(run_config.store, run_config.home_dir() / "lancedb")
                    store.open(embedder.name, embedder.dimension)
                    report = ingest([source], run_config, store=store, embedder=embedder)
                    if report.problems:
                        raise RuntimeError(f"{name}: {report.problems}")
                    results.setdefault(name, {})[f"{label}_chunks"] = report.chunks_written
                return run

            anchor_s, anchor_runs = best_of(ingest_into(txt_dir, "txt"))
            ingest_s, ingest_runs = best_of(ingest_into(folder, "format"))
            ratio = (pages / ingest_s) / (pages / anchor_s)
            rows.append([name, pages, results[name]["format_chunks"], pages / load_s, pages / ingest_s,
                         pages / anchor_s, ratio])
            results[name].update({
                "pages": pages, "load_pages_per_s": round(pages / load_s, 3),
                "ingest_pages_per_s": round(pages / ingest_s, 3), "ingest_runs_s": [round(s, 3) for s in ingest_runs],
                "anchor_txt_pages_per_s": round(pages / anchor_s, 3),
                "anchor_runs_s": [round(s, 3) for s in anchor_runs], "ratio_vs_txt": round(ratio, 4),
            })
            print(f"{name}: load {pages / load_s:.2f} pages/s, ingest {pages / ingest_s:.2f} pages/s "
                  f"(same text as .txt: {pages / anchor_s:.2f})", file=sys.stderr)
    print()
    print_table(["format", "pages", "chunks", "load pages/s", "ingest pages/s", ".txt anchor pages/s",
                 "ratio vs .txt"], rows)
    finish(NAME, {
        "params": {"pages": args.pages, "repeats": args.repeats, "threads": args.threads, "quick": args.quick,
                   "ocr_dpi": config.ingest.ocr_dpi, "docx_html_page_chars": DOCX_HTML_PAGE_CHARS},
        "formats": results, "peak_rss_mb": round(peak_rss_mb(), 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
