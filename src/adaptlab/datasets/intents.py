"""Labelled data → chat training JSONL: CSV rows (`convert_csv`) and intents in CLINC150 form
(`convert_intents`, e.g. the bundled CLINC150 excerpt)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptlab.datasets.common import DataError, load_json
from adaptlab.errors import InputError
from adaptlab.textfiles import read_csv_rows, read_text, write_jsonl_atomic
from adaptlab.types import line_problem


def convert_csv(
    source: str | Path,
    out: str | Path,
    *,
    prompt_column: str,
    completion_column: str,
    label_column: str | None = None,
    system_prompt: str | None = None,
    delimiter: str | None = None,
) -> int:
    """A CSV with a header row → chat JSONL (optional system turn, user = prompt, assistant = completion).

    Every bad row is collected and raised together as DataError; nothing is written unless all rows are good.
    `delimiter` None sniffs one of , ; and tab. Returns the number of examples written.
    """
    path = Path(source)
    table = read_csv_rows(path, [(prompt_column, "--prompt-column"), (completion_column, "--completion-column"),
                                 (label_column, "--label-column")],
                          required=[c for c in (prompt_column, completion_column, label_column) if c],
                          delimiter=delimiter, unit="example")
    problems = [line_problem(str(path), line, reason, fix) for line, reason, fix in table.problems]
    records: list[dict[str, Any]] = []
    for number, values in table.rows:
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages += [{"role": "user", "content": values[prompt_column]},
                     {"role": "assistant", "content": values[completion_column]}]
        record: dict[str, Any] = {"id": f"{path.stem}:{number}", "messages": messages}
        if label_column:
            record["label"] = values[label_column]
        records.append(record)
    if problems:
        raise DataError(str(path), problems)
    if not records:
        raise InputError(str(path), None, "no rows after the header", "add one row per example")
    write_jsonl_atomic(Path(out), records)
    return len(records)


def intents_system_prompt(labels: Sequence[str]) -> str:
    return (f"Classify the user's request into exactly one intent. Intents: {', '.join(labels)}. "
            "Reply with the intent name only.")


def convert_intents(
    source: str | Path, out: str | Path, *, split: str = "train", limit: int | None = None, seed: int = 0
) -> int:
    """Labelled intents in CLINC150 form ({"train": [[text, intent], ...], "val": ..., ...}) → chat JSONL.

    The system prompt lists the split's labels (all of them, whatever `limit` keeps, so every file made from
    one split shares one prompt); assistant = the label. The order is shuffled with `seed` (CLINC150 groups
    records by intent); `limit` keeps the first N after shuffling. Returns the number of examples written.
    """
    path = Path(source)
    data = load_json(path, read_text(path))
    if not isinstance(data, dict) or split not in data:
        splits = ", ".join(repr(k) for k in data) if isinstance(data, dict) else "none (not an object)"
        raise InputError(str(path), None, f"no split {split!r} (splits: {splits})", "pass --split naming one of them")
    items = data[split]
    if not isinstance(items, list) or not items:
        raise InputError(str(path), None, f"split {split!r} is not a non-empty list of [text, intent] pairs",
                         "check the file is CLINC150-style intent data")
    for index, item in enumerate(items):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) and v.strip() for v in item)):
            raise InputError(str(path), None, f"{split}[{index}] is not a [text, intent] pair of non-empty strings",
                             "check the file is CLINC150-style intent data")
    labels = sorted({intent.strip() for _, intent in items})
    system_prompt = intents_system_prompt(labels)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    if limit is not None:
        order = order[: max(limit, 0)]
    records = [
        {"id": f"{split}-{index}",
         "messages": [{"role": "system", "content": system_prompt},
                      {"role": "user", "content": items[index][0].strip()},
                      {"role": "assistant", "content": items[index][1].strip()}],
         "label": items[index][1].strip()}
        for index in order
    ]
    write_jsonl_atomic(Path(out), records)
    return len(records)
