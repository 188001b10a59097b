"""Regenerate the settings tables in README.md from the models: adaptlab.toml's (adaptlab/config.py) and the
workload file's (adaptlab/cost/workload.py). Run it after changing either."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from adaptlab.config import describe_settings
from adaptlab.cost.workload import DeclaredStrategy, Workload

HEADER = "| setting | default | what it does |"
END = "\n## Layout"
WORKLOAD_HEADER = "| workload setting | default | what it does |"
WORKLOAD_END = "\n## Larger engines"


def render(header: str, rows: list[tuple[str, str, str]]) -> str:
    lines = [header, "|---|---|---|"]
    for name, default, description in rows:
        escaped = description.replace("|", "\\|")  # a pipe would end the table cell
        default = "required" if default == "PydanticUndefined" else f"`{default}`"
        lines.append(f"| `{name}` | {default} | {escaped} |")
    return "\n".join(lines) + "\n"


def workload_rows() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for name, field in Workload.model_fields.items():
        if name == "source_path":
            continue
        if name == "strategies":  # one table per family: document the fields once
            rows.extend(describe_settings(DeclaredStrategy, prefix="strategies.FAMILY."))
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            rows.extend(describe_settings(field.annotation, prefix=f"{name}."))
        else:
            rows.append((name, repr(field.get_default(call_default_factory=True)), field.description or ""))
    return rows


def replace_between(text: str, header: str, end: str, table: str) -> str:
    start, stop = text.index(header), text.index(end)
    return text[:start] + table + text[stop:]


def updated(text: str) -> str:
    """The README text with both settings tables regenerated from the models."""
    text = replace_between(text, HEADER, END, render(HEADER, describe_settings()))
    return replace_between(text, WORKLOAD_HEADER, WORKLOAD_END, render(WORKLOAD_HEADER, workload_rows()))


def main() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(updated(text), encoding="utf-8")


if __name__ == "__main__":
    main()
