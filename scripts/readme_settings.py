"""Regenerate the settings table in README.md from the config models (run after changing adaptlab/config.py)."""

from __future__ import annotations

from pathlib import Path

from adaptlab.config import describe_settings

HEADER = "| setting | default | what it does |"
END = "\n## Layout"


def render() -> str:
    lines = [HEADER, "|---|---|---|"]
    for name, default, description in describe_settings():
        escaped = description.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| `{name}` | `{default}` | {escaped} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(HEADER), text.index(END)
    readme.write_text(text[:start] + render() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
