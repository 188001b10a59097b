"""File formats for `adaptlab ingest`, one module per family; `adaptlab.rag.load` is the entry point.

common      LoadProblem, LoadContext, DocumentBuilder and the text helpers every loader shares
discovery   which files a folder holds
tables      tables → aligned pipe-table row groups that each fit one chunk
text        .txt, .md/.markdown (one Section per heading section)
html        .html/.htm (main content, headings, tables)
pdf         .pdf (text layer, tables, OCR for pages without text)
ocr         tesseract through pytesseract; images (.png/.jpg/.tif)
records     .json/.jsonl (one Document per record)
office      .docx, .pptx
sheets      .xlsx, .csv
"""
