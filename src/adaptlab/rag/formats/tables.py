"""Tables as text a model (and BM25) can read: aligned markdown pipe rows, cut into row groups that each fit
one chunk, every group starting with the table's header.

Why row groups are built here and not by the chunker: a chunk must be an exact slice of Document.text (a
citation points at it by char offset), so a header cannot be pasted into the middle of a chunk. Instead the
loader writes the table into the text once per row group, header included, and makes each group its own
Section; the chunker then leaves a group whole because it fits `chunk.size_tokens`. Only a single row longer
than the budget on its own is split by the chunker (at line, then sentence boundaries).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_PADDED_WIDTH = 32  # wider cells are written whole but do not widen their column (no runaway padding)
_TOKEN_PIECES = re.compile(r"[^\W_]+|[^\w\s]|_")


def estimate_tokens(text: str) -> int:
    """An upper-leaning guess of word-piece tokens when no tokenizer is given: each punctuation mark is one,
    and a word is one per 4 characters (numbers and codes split into several pieces)."""
    return sum(1 + (len(piece) - 1) // 4 if piece[0].isalnum() else 1 for piece in _TOKEN_PIECES.findall(text))


@dataclass(frozen=True)
class TableBudget:
    """How many tokens one row group may hold: the chunk size, counted by the embedder's tokenizer at ingest."""

    max_tokens: int = 200
    count_tokens: Callable[[str], int] = estimate_tokens


@dataclass(frozen=True)
class RowGroup:
    text: str  # header line, separator line, then the group's rows
    first_row: int  # index into the rows given (0 is the header: the first group starts there)
    last_row: int


def _escape(cell: str) -> str:
    return " ".join(cell.split()).replace("|", "\\|")


def table_row_groups(rows: Sequence[Sequence[str]], budget: TableBudget) -> list[RowGroup]:
    """rows[0] is the header. Empty rows are dropped; short rows are padded with empty cells."""
    kept = [(index, [_escape(str(c)) for c in row])
            for index, row in enumerate(rows) if any(str(c).strip() for c in row)]
    if not kept:
        return []
    width = max(len(cells) for _, cells in kept)
    for _, cells in kept:
        cells.extend([""] * (width - len(cells)))
    widths = [min(MAX_PADDED_WIDTH, max(3, *(len(cells[col]) for _, cells in kept))) for col in range(width)]

    def line(cells: Sequence[str]) -> str:
        return ("| " + " | ".join(cell.ljust(w) for cell, w in zip(cells, widths)) + " |").rstrip()

    header_index, header_cells = kept[0]
    header = line(header_cells) + "\n" + "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    header_tokens = budget.count_tokens(header)
    groups: list[RowGroup] = []
    lines: list[str] = []
    first = header_index
    used = header_tokens
    last = header_index
    for index, cells in kept[1:]:
        text = line(cells)
        tokens = budget.count_tokens(text)
        if lines and used + tokens > budget.max_tokens:
            groups.append(RowGroup(header + "\n" + "\n".join(lines), first, last))
            lines, first, used = [], index, header_tokens
        lines.append(text)
        used += tokens
        last = index
    groups.append(RowGroup(header + ("\n" + "\n".join(lines) if lines else ""), first, last))
    return groups
