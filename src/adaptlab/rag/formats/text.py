"""Plain text and Markdown. Markdown is split into one Section per heading's section, so every chunk knows
the headings it sits under (Section.heading_path)."""

from __future__ import annotations

import re
from pathlib import Path

from adaptlab.rag.formats.common import (
    LoadContext,
    Loaded,
    decode_text,
    first_line_title,
    make_document,
    normalise,
    require_text,
)
from adaptlab.types import Section


def load_txt(path: Path, data: bytes, context: LoadContext) -> Loaded:
    text = require_text(normalise(decode_text(data)))
    title = first_line_title(text) or path.stem
    return [make_document(str(path), str(path), title, text, context.tags)], []


_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_FRONT_MATTER_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def _split_front_matter(text: str) -> tuple[str | None, str]:
    """Strip a leading YAML block; return its `title:` (read with a regex: no YAML dependency)."""
    if not text.startswith("---\n"):
        return None, text
    end = _FRONT_MATTER_END.search(text, 4)
    if end is None:
        return None, text  # an unterminated '---' is a horizontal rule, not front matter
    match = _FRONT_MATTER_TITLE.search(text[4 : end.start()])
    title = match.group(1).strip().strip("'\"").strip() if match else None
    return title or None, text[end.end() :].lstrip("\n")


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(char offset of the line, level, heading text) of each ATX heading outside code fences."""
    found = []
    in_fence = False
    offset = 0
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence  # a '# comment' in a code block is not a heading
        elif not in_fence and (match := _MD_HEADING.match(line)):
            found.append((offset, len(match.group(1)), match.group(2).strip()))
        offset += len(line) + 1
    return found


def markdown_sections(text: str) -> tuple[Section, ...]:
    """One Section per heading's section (the heading line included), each with the path of headings above it."""
    headings = _headings(text)
    bounds: list[tuple[int, tuple[str, ...]]] = [(0, ())] if not headings or headings[0][0] > 0 else []
    stack: list[tuple[int, str]] = []  # (level, heading) of the enclosing headings
    for offset, level, heading in headings:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading))
        bounds.append((offset, tuple(h for _, h in stack)))
    sections = []
    for index, (start, path) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else len(text)
        body = text[start:end].rstrip()
        if body.strip():
            sections.append(Section(text=body, char_start=start, heading_path=path))
    return tuple(sections)


def load_markdown(path: Path, data: bytes, context: LoadContext) -> Loaded:
    front_title, body = _split_front_matter(normalise(decode_text(data)))
    text = require_text(body)
    top_heading = next((heading for _, level, heading in _headings(text) if level == 1), None)
    title = front_title or top_heading or first_line_title(text) or path.stem
    return [make_document(str(path), str(path), title, text, context.tags, markdown_sections(text))], []
