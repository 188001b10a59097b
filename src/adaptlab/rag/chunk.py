"""Token-aware chunking that breaks at headings, then paragraphs, lines and sentences, then anywhere.

Sizes are counted in the embedder's own tokens, because all-MiniLM-L6-v2 silently truncates past 256:
211 of 1,238 fixed 1,000-character chunks of COVID-QA were truncated. Every chunk is an exact slice of its
document (char_start/char_end), so a citation can always point back to the words it came from.
"""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from adaptlab.config import ChunkConfig
from adaptlab.embed.base import Embedder, clip_to_tokens
from adaptlab.errors import ConfigError
from adaptlab.rag.context import ChunkContextWriter
from adaptlab.types import Chunk, Document, Section

_CHUNK_NAMESPACE = uuid.UUID("6f1c9a52-8a53-4d0e-9f1e-1f4a2f2b7d10")
_TITLE_PREFIX_MAX_TOKENS = 48

# Break priorities: a chunk ends at the strongest boundary available in its last stretch.
_HEADING, _PARAGRAPH, _LINE, _SENTENCE = 4, 3, 2, 1
_BREAK_PATTERNS: tuple[tuple[int, re.Pattern[str]], ...] = (
    (_HEADING, re.compile(r"\n+(?=#{1,6}\s)")),
    (_PARAGRAPH, re.compile(r"\n[ \t]*\n\s*")),
    (_LINE, re.compile(r"\n\s*")),
    (_SENTENCE, re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")),
)


@dataclass(frozen=True)
class _Break:
    position: int  # character offset where the next chunk may start
    priority: int


def chunk_id_for(doc_id: str, doc_hash: str, index: int) -> str:
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{doc_id}:{doc_hash}:{index}"))


class Chunker:
    def __init__(self, config: ChunkConfig, embedder: Embedder, *,
                 context_writer: ChunkContextWriter | None = None) -> None:
        if config.size_tokens > embedder.max_tokens:
            raise ConfigError(
                f"chunk.size_tokens = {config.size_tokens} is more than the embedder reads "
                f"({embedder.max_tokens} tokens for {embedder.name}); longer chunks would be silently truncated — "
                f"set chunk.size_tokens ≤ {embedder.max_tokens}."
            )
        self._config = config
        self._embedder = embedder
        self._context_writer = context_writer

    def chunk(self, document: Document) -> list[Chunk]:
        sections = document.sections or (Section(document.text, 0, None),)
        spans: list[tuple[int, int, Section]] = []  # (doc char_start, doc char_end, the section it is cut from)
        for section in sections:
            for start, end in self._split_section(section.text):
                spans.append((section.char_start + start, section.char_start + end, section))
        texts = [document.text[start:end] for start, end, _ in spans]
        contexts = (self._context_writer.contexts(document.title, document.text, texts)
                    if self._context_writer is not None and texts else [""] * len(texts))
        title = self._title_part(document.title)
        chunks = []
        for index, ((start, end, section), text, context) in enumerate(zip(spans, texts, contexts, strict=True)):
            chunks.append(
                Chunk(
                    chunk_id=chunk_id_for(document.doc_id, document.content_hash, index),
                    doc_id=document.doc_id,
                    doc_hash=document.content_hash,
                    chunk_index=index,
                    chunk_count=len(spans),
                    path=document.path,
                    title=document.title,
                    text=text,
                    index_text=self._prefix(title, section.heading_path, context) + text,
                    char_start=start,
                    char_end=end,
                    page=section.page,
                    tags=document.tags,
                    slide=section.slide,
                    sheet=section.sheet,
                    cells=section.cells,
                    table=section.table,
                    heading_path=section.heading_path,
                )
            )
        return chunks

    def _prefix_budget(self) -> int:
        """Tokens the embedder reads beyond a full-size chunk: all the prefix may take."""
        return self._embedder.max_tokens - self._config.size_tokens - 2

    def _title_part(self, title: str) -> str:
        """The document title as the prefix starts with it (once per document), at most _TITLE_PREFIX_MAX_TOKENS."""
        if not self._config.prefix_title or not title.strip():
            return ""
        return self._clip(title.strip(), min(_TITLE_PREFIX_MAX_TOKENS, self._prefix_budget())).strip()

    def _prefix(self, title: str, heading_path: Sequence[str], context: str) -> str:
        """'Title › Section › Subsection: context ' — where the chunk sits, within the tokens the embedder has left
        after a full-size chunk. `title`: _title_part's."""
        budget = self._prefix_budget()
        parts = [title] if title else []
        if self._config.prefix_headings:
            # A section's first heading often repeats the document title: say it once.
            parts.extend(h.strip() for h in heading_path if h.strip() and h.strip() not in parts)
        location = " › ".join(p for p in parts if p)
        prefix = f"{location}: " if location else ""
        if context.strip():
            prefix += f"{context.strip()} "
        return self._clip(prefix, budget) if budget > 0 else ""

    def _clip(self, text: str, tokens: int) -> str:
        """`text` cut to its first `tokens` embedder tokens (at a token boundary)."""
        clipped = clip_to_tokens(self._embedder, text, tokens)
        return clipped if clipped in ("", text) or clipped.endswith(" ") else clipped + " "

    def _split_section(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the chunks of one section, whitespace trimmed, in order."""
        offsets = self._embedder.token_offsets(text)
        if not offsets:
            return []
        token_starts = [start for start, _ in offsets]
        breaks = _find_breaks(text)
        break_positions = [b.position for b in breaks]
        size, overlap = self._config.size_tokens, self._config.overlap_tokens
        min_fill = max(1, size // 4)  # never cut a chunk shorter than this just to hit a boundary
        spans: list[tuple[int, int]] = []
        first = 0  # index of the chunk's first token
        while first < len(offsets):
            last_allowed = first + size  # exclusive token index
            if last_allowed >= len(offsets):
                spans.append((offsets[first][0], offsets[-1][1]))
                break
            window_start = offsets[first + min_fill][0]
            window_end = offsets[last_allowed][0]  # start of the first token that would not fit
            best = _best_break(breaks, break_positions, window_start, window_end)
            if best is None:
                # No boundary: cut before the last token that starts a word. Cutting inside a word makes the
                # pieces re-tokenize into more tokens than counted (e.g. 255 > 254 for MiniLM), so the
                # embedder would truncate them.
                cut_token = next(
                    (t for t in range(last_allowed, first + min_fill, -1) if _starts_word(text, offsets, t)),
                    last_allowed,
                )
                cut_char = offsets[cut_token][0]
                priority = 0
            else:
                cut_char, priority = best.position, best.priority
                cut_token = bisect.bisect_left(token_starts, cut_char)
            spans.append((offsets[first][0], _rstrip_to(text, offsets[first][0], cut_char)))
            # No overlap across a heading: the next chunk starts a new subject.
            step_back = 0 if priority == _HEADING else overlap
            next_first = cut_token - step_back
            while next_first < cut_token and not _starts_word(text, offsets, next_first):
                next_first += 1  # the overlap starts at a word, never inside one
            first = max(next_first, first + 1)
        return [(start, end) for start, end in spans if end > start]


def _starts_word(text: str, offsets: Sequence[tuple[int, int]], index: int) -> bool:
    """Token `index` begins a word (not a sub-word piece glued to the previous token)."""
    if index <= 0:
        return True
    start = offsets[index][0]
    if start > offsets[index - 1][1]:
        return True
    return not (text[start - 1].isalnum() and text[start].isalnum())


def _rstrip_to(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _find_breaks(text: str) -> list[_Break]:
    strongest: dict[int, int] = {}
    for priority, pattern in _BREAK_PATTERNS:
        for match in pattern.finditer(text):
            position = match.end()
            if 0 < position < len(text) and strongest.get(position, -1) < priority:
                strongest[position] = priority
    return [_Break(position, priority) for position, priority in sorted(strongest.items())]


def _best_break(breaks: Sequence[_Break], positions: Sequence[int], low: int, high: int) -> _Break | None:
    """The strongest boundary in (low, high]; among equals, the latest (fuller chunks)."""
    lo = bisect.bisect_right(positions, low)
    hi = bisect.bisect_right(positions, high)
    best: _Break | None = None
    for candidate in breaks[lo:hi]:
        if best is None or candidate.priority >= best.priority:
            best = candidate
    return best
