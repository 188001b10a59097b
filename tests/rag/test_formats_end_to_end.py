"""Documents as teams have them, end to end: a folder of .docx, .pptx, .xlsx, a PDF with a table and a scanned PDF
is ingested with the real embedder and store, and retrieval, citations and the CLI point at the right page, slide,
sheet + cells and table. Also: stores written before chunk locations existed still open and answer."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import ADAPTLAB_BIN, make_project, write_config
from format_fixtures import make_docx, make_pptx, make_scanned_pdf, make_table_pdf, make_xlsx

from adaptlab.config import StoreConfig
from adaptlab.rag.answer import find_citations, source_label
from adaptlab.rag.index import ingest
from adaptlab.rag.lance_store import LanceStore
from adaptlab.types import Chunk, ScoredChunk

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


def _write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    make_docx(folder / "manual.docx")
    make_pptx(folder / "review.pptx")
    make_xlsx(folder / "sales.xlsx", rows=40)
    make_table_pdf(folder / "levels.pdf")
    make_scanned_pdf(folder / "scan.pdf", [["Cover page of the inspection."],
                                           ["The turbine hall floods every March after the thaw."]])
    return folder


@pytest.fixture(scope="module")
def formats_project(tmp_path_factory, minilm):
    root = tmp_path_factory.mktemp("formats")
    docs = _write_folder(root / "docs")
    project = make_project(root / "home", embedder=minilm)
    report = ingest([docs], project.config, store=project.store, embedder=minilm)
    assert report.problems == [] and len(report.added) == 5
    return root, project


def _top(project, question: str) -> Chunk:
    return project.retriever.retrieve(question, top_k=3).chunks[0].chunk


def test_retrieval_points_at_page_slide_sheet_cells_and_table(formats_project) -> None:
    _, project = formats_project
    table = _top(project, "Lake Aster reservoir level in metres")
    assert table.path.endswith("levels.pdf") and (table.page, table.table) == (2, 1)
    assert table.text.startswith("| Reservoir")
    slide = _top(project, "budget of the Research team")
    assert slide.path.endswith("review.pptx") and slide.slide == 2 and slide.heading_path == ("Budget by Team",)
    sheet = _top(project, "Widget 33 units revenue")
    assert sheet.path.endswith("sales.xlsx") and sheet.sheet == "Sales" and sheet.cells is not None
    first_row, last_row = (int(cell[1:]) for cell in sheet.cells.split(":"))
    assert first_row <= 35 <= last_row  # Widget 33 is on sheet row 35 (header in row 1)
    assert sheet.text.startswith("| Region")  # every row group carries the header
    scanned = _top(project, "When does the turbine hall flood?")
    assert scanned.path.endswith("scan.pdf") and scanned.page == 2
    manual = _top(project, "How often is the intake filter replaced?")
    assert manual.path.endswith("manual.docx") and manual.heading_path[:1] == ("Field Manual",)


def test_citations_and_prompt_labels_carry_the_location(formats_project) -> None:
    _, project = formats_project
    hits = project.retriever.retrieve("Widget 33 units revenue", top_k=1).chunks
    chunk = hits[0].chunk
    assert source_label(1, hits[0]) == f"[1] {chunk.title}, Sales!{chunk.cells}"
    (citation,) = find_citations("Widget 33 sold 43 units [1].", hits)
    assert (citation.sheet, citation.cells, citation.heading_path) == ("Sales", chunk.cells, ("Sales",))
    assert citation.location == f"Sales!{chunk.cells}"


def test_cli_retrieve_and_ask_json_show_the_location(formats_project) -> None:
    root, _ = formats_project
    config = write_config(root / "adaptlab.toml", root / "home", "[generator]\nmax_tokens = 8\n")
    result = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "retrieve", "Lake Aster reservoir level",
                             "--json", "-k", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["chunks"][0]
    assert (top["page"], top["table"], top["location"]) == (2, 1, "page 2, table 1")
    assert {"slide", "sheet", "cells", "heading_path"} <= set(top)
    text = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "retrieve", "budget of the Research team"],
                          capture_output=True, text=True, timeout=300)
    assert text.returncode == 0 and "slide 2, table 1" in text.stdout
    asked = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "ask", "budget of the Research team", "--json"],
                           capture_output=True, text=True, timeout=300)
    assert asked.returncode == 0, asked.stderr
    sources = json.loads(asked.stdout)["sources"]
    assert any(s["slide"] == 2 and s["location"].startswith("slide 2") for s in sources)


# --------------------------------------------------------------------------- stores from before locations


_OLD_COLUMNS = [
    pa.field("chunk_id", pa.string(), nullable=False), pa.field("doc_id", pa.string(), nullable=False),
    pa.field("doc_hash", pa.string(), nullable=False), pa.field("chunk_index", pa.int32()),
    pa.field("chunk_count", pa.int32()), pa.field("path", pa.string()), pa.field("title", pa.string()),
    pa.field("text", pa.string()), pa.field("index_text", pa.string()), pa.field("char_start", pa.int64()),
    pa.field("char_end", pa.int64()), pa.field("page", pa.int32(), nullable=True),
    pa.field("tags", pa.list_(pa.string())),
]


def _chunk(doc: str, text: str, **location) -> Chunk:
    return Chunk(chunk_id=str(uuid.uuid5(uuid.NAMESPACE_URL, doc)), doc_id=doc, doc_hash="h", chunk_index=0,
                 chunk_count=1, path=f"/docs/{doc}", title=doc, text=text, index_text=text, char_start=0,
                 char_end=len(text), **location)


def test_lancedb_table_without_location_columns_opens_answers_and_takes_new_chunks(tmp_path: Path) -> None:
    import lancedb

    dim = 8
    old_schema = pa.schema([*_OLD_COLUMNS, pa.field("vector", pa.list_(pa.float32(), dim))],
                           metadata={b"adaptlab.embedder": b"test", b"adaptlab.dimension": str(dim).encode()})
    table = lancedb.connect(str(tmp_path)).create_table("chunks", schema=old_schema)
    old = _chunk("old.txt", "the old granary stores wheat")
    row = {k: v for k, v in asdict(old).items() if k in old_schema.names}
    row["tags"], row["vector"] = [], np.ones(dim, dtype=np.float32)
    table.add(pa.Table.from_pylist([row], schema=old_schema))

    store = LanceStore(StoreConfig(), tmp_path)
    store.open("test", dim)
    new = _chunk("new.xlsx", "the new silo stores barley", sheet="Q1 sales", cells="A1:C9", heading_path=("Q1 sales",))
    store.add_chunks([new], np.ones((1, dim), dtype=np.float32))
    store.finalize()
    by_doc = {hit.chunk.doc_id: hit.chunk for hit in store.dense_search(np.ones(dim, dtype=np.float32), 5)}
    assert by_doc["old.txt"].sheet is None and by_doc["old.txt"].heading_path == ()
    assert (by_doc["new.xlsx"].sheet, by_doc["new.xlsx"].cells) == ("Q1 sales", "A1:C9")
    assert by_doc["new.xlsx"].location == "'Q1 sales'!A1:C9"
    (hit,) = store.keyword_search("granary", 5)
    assert hit.chunk.doc_id == "old.txt" and hit.chunk.table is None


def test_qdrant_points_without_location_keys_still_read() -> None:
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient, models

    from adaptlab.rag.qdrant_store import DENSE, QdrantStore

    client = QdrantClient(":memory:")
    config = StoreConfig(backend="qdrant", qdrant_url=":memory:")
    store = QdrantStore(config, client=client)
    store.open("test", 4)
    new = _chunk("new.pptx", "slides about barley", slide=3, table=1, heading_path=("Crops",))
    store.add_chunks([new], np.ones((1, 4), dtype=np.float32))
    old = _chunk("old.txt", "notes about wheat")
    payload = {k: v for k, v in asdict(old).items() if k not in ("slide", "sheet", "cells", "table", "heading_path")}
    client.upsert(config.collection, [models.PointStruct(id=old.chunk_id, vector={DENSE: [1.0, 1, 1, 1]},
                                                                 payload=payload)])
    chunks = {hit.chunk.doc_id: hit.chunk for hit in store.dense_search(np.ones(4, dtype=np.float32), 5)}
    assert chunks["old.txt"].heading_path == () and chunks["old.txt"].slide is None
    assert (chunks["new.pptx"].slide, chunks["new.pptx"].table, chunks["new.pptx"].heading_path) == (3, 1, ("Crops",))
    assert ScoredChunk(chunks["new.pptx"], 1.0).chunk.location == "slide 3, table 1"
