"""Find input files and turn each into Documents (text + located sections + metadata): the ingest entry point.

The formats live in adaptlab.rag.formats, one module per family. Loading never raises for bad input: every
problem becomes a FileProblem naming the file (and line), the reason and, where there is one, the fix, so one
bad file never stops an ingest run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adaptlab.config import IngestConfig
from adaptlab.rag.formats.common import LoadContext, Loaded, Loader, LoadProblem
from adaptlab.rag.formats.discovery import discover
from adaptlab.rag.formats.html import load_html
from adaptlab.rag.formats.ocr import load_image
from adaptlab.rag.formats.office import load_docx, load_pptx
from adaptlab.rag.formats.pdf import load_pdf
from adaptlab.rag.formats.records import load_json, load_jsonl
from adaptlab.rag.formats.sheets import load_csv, load_xlsx
from adaptlab.rag.formats.tables import TableBudget
from adaptlab.rag.formats.text import load_markdown, load_txt
from adaptlab.types import FileProblem

__all__ = ["LOADERS", "TableBudget", "discover", "load_file"]

_MIB = 1024 * 1024

LOADERS: dict[str, Loader] = {
    ".txt": load_txt,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".json": load_json,
    ".jsonl": load_jsonl,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".csv": load_csv,
    ".png": load_image,
    ".jpg": load_image,
    ".jpeg": load_image,
    ".tif": load_image,
    ".tiff": load_image,
}


def _read_bytes(path: Path, config: IngestConfig) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LoadProblem("no such file or directory") from None
    except OSError as exc:
        raise LoadProblem(f"cannot read file: {exc.strerror or exc}") from None
    if size > config.max_file_mb * _MIB:
        raise LoadProblem(
            f"file is {size / _MIB:.1f} MB, over ingest.max_file_mb = {config.max_file_mb:g}"
            " — raise the limit or split the file"
        )
    try:
        data = path.read_bytes()
    except PermissionError:
        raise LoadProblem("permission denied — cannot read the file; check its permissions") from None
    except IsADirectoryError:
        raise LoadProblem("is a directory — pass folders to discover(), not load_file()") from None
    except OSError as exc:
        raise LoadProblem(f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise LoadProblem("no text found (empty file)")
    return data


def load_file(
    path: Path, config: IngestConfig, extra_tags: Sequence[str] = (), *, tables: TableBudget | None = None
) -> Loaded:
    """Load one file into Documents (several for .json/.jsonl). Never raises for bad input.

    `tables`: how many tokens a table's row group may hold (ingest passes the chunk size and the embedder's
    tokenizer); without it, the default chunk size and a token estimate.
    """
    resolved = Path(path).expanduser().resolve()
    suffix = resolved.suffix.lower()
    context = LoadContext(config=config, tags=tuple(extra_tags), tables=tables or TableBudget())
    try:
        loader = LOADERS.get(suffix)
        if loader is None:
            supported = ", ".join(sorted(LOADERS))
            raise LoadProblem(f"unsupported file type {suffix or '(no extension)'} (supported: {supported})")
        return loader(resolved, _read_bytes(resolved, config), context)
    except LoadProblem as problem:
        return [], [problem.for_file(resolved)]
    except Exception as exc:  # a parser bug on a file we cannot foresee must still not stop the ingest run
        return [], [FileProblem(str(resolved), f"could not be loaded ({type(exc).__name__}: {exc})",
                                fix="report it with the file if you can share it")]
