"""What the dataset converters share with each other and with the training-data format (`finetune/data.py`):
the error that lists every bad line of a data file, and reading a JSON source file.

Kept here, below `adaptlab.finetune` in the import layers, so the converters never import the package whose
format they write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adaptlab.errors import InputError
from adaptlab.types import FileProblem, listed_problems


class DataError(InputError):
    """A training file (or a source converted to one) has bad lines; `problems` holds all of them, the message
    the first 20."""

    def __init__(self, path: str, problems: list[FileProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(path, None, f"{count} problem{'s' if count != 1 else ''}:\n"
                         + listed_problems(self.problems))


def load_json(path: Path, text: str) -> Any:
    """`text` (the contents of `path`) parsed as JSON; bad JSON is an InputError at its line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})",
                         "check the file is complete JSON") from exc
