"""Which files to load: files and folders (recursively) expanded in a deterministic order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from adaptlab.config import IngestConfig
from adaptlab.types import FileProblem


def normalised_extensions(config: IngestConfig) -> list[str]:
    return sorted({(e if e.startswith(".") else f".{e}").lower() for e in config.extensions})


def _walk(directory: Path, extensions: set[str]) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        # Prune hidden folders in place (.git, .venv, ...); sort so the order never depends on the filesystem.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.startswith("~$"):  # ~$report.docx: Office's lock file, not a document
                continue
            candidate = Path(root) / name
            if candidate.suffix.lower() in extensions and candidate.is_file():
                found.append(candidate.resolve())
    return found


def discover(paths: Sequence[str | Path], config: IngestConfig) -> tuple[list[Path], list[FileProblem]]:
    """Expand files and folders (recursively) into the files to load, in a deterministic order."""
    extensions = normalised_extensions(config)
    supported = ", ".join(extensions)
    files: list[Path] = []
    problems: list[FileProblem] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        shown = str(path.absolute())
        if path.is_dir():
            found = _walk(path, set(extensions))
            if not found:
                problems.append(FileProblem(shown, f"directory contains no supported files (looked for {supported})"))
        elif path.is_file():
            if path.suffix.lower() not in extensions:
                kind = path.suffix.lower() or "(no extension)"
                problems.append(FileProblem(shown, f"unsupported file type {kind} (supported: {supported})"))
                continue
            found = [path.resolve()]
        elif path.exists() or path.is_symlink():
            problems.append(FileProblem(shown, "not a regular file or directory (broken link, device or socket?)"))
            continue
        else:
            problems.append(FileProblem(shown, "no such file or directory"))
            continue
        for item in found:  # a file named twice (or inside two named folders) is loaded once
            if item not in seen:
                seen.add(item)
                files.append(item)
    return files, problems
