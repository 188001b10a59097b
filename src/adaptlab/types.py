"""Boundary dataclasses: every stage of the data flow hands one of these to the next."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


class _Located:
    """`location` for the types that carry a place in their source (Section, Chunk, Citation)."""

    page: int | None
    slide: int | None
    sheet: str | None
    cells: str | None
    table: int | None

    @property
    def location(self) -> str:
        return location_label(page=self.page, slide=self.slide, sheet=self.sheet, cells=self.cells, table=self.table)


@dataclass(frozen=True)
class Section(_Located):
    """A run of document text that shares one location (a PDF page, a heading's section)."""

    text: str
    char_start: int  # offset of `text` inside Document.text
    page: int | None = None  # 1-based page number for paginated sources
    slide: int | None = None  # 1-based slide number (.pptx)
    sheet: str | None = None  # worksheet name (.xlsx)
    cells: str | None = None  # cell range of a spreadsheet section, e.g. "A1:D12" (.xlsx, .csv)
    table: int | None = None  # 1-based number of the table within its document, when the section is a table
    heading_path: tuple[str, ...] = ()  # the headings the section sits under, outermost first


def location_label(*, page: int | None = None, slide: int | None = None, sheet: str | None = None,
                   cells: str | None = None, table: int | None = None) -> str:
    """Where a piece of a document is, for people and prompts: 'page 3, table 1', 'slide 2', 'Sales!A1:D12'."""
    parts: list[str] = []
    if page:
        parts.append(f"page {page}")
    if slide:
        parts.append(f"slide {slide}")
    if sheet:
        # Excel quotes sheet names that are not plain words: 'Q1 sales'!A1:D4
        name = sheet if sheet.replace("_", "").isalnum() else "'" + sheet.replace("'", "''") + "'"
        parts.append(f"{name}!{cells}" if cells else f"sheet {name}")
    elif cells:
        parts.append(f"cells {cells}")
    if table:
        parts.append(f"table {table}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Document:
    """One loaded source document. `doc_id` is stable across runs for the same source."""

    doc_id: str
    path: str  # file path as given (resolved); for JSON records "file.jsonl#<record id>"
    title: str
    text: str
    content_hash: str  # sha256 of the extracted text + title: the document's version
    sections: tuple[Section, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileProblem:
    """A bad file, or a bad line or record of one, and why — with the fix where one can be said. The rest of the
    work goes on without it (ingestion, eval cases, training data, query logs, labelled pairs all report these)."""

    path: str
    reason: str
    line: int | None = None
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}" + (f" — {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Interval:
    """A measured mean with its confidence interval (eval metrics; tracked runs log them)."""

    value: float  # mean of the non-missing values
    low: float
    high: float
    n: int  # number of non-missing values


def line_problem(path: str, line: int, reason: str, fix: str = "") -> FileProblem:
    """A bad line of a file, in the order its message reads: 'path:line: reason — fix'."""
    return FileProblem(path, reason, line, fix)


MAX_LISTED_PROBLEMS = 20  # problems an error message lists; the error object keeps them all


def listed_problems(problems: list[FileProblem]) -> str:
    """The first MAX_LISTED_PROBLEMS problems, one indented line each, and how many more there are."""
    listed = [f"  {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        listed.append(f"  … and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(listed)


@dataclass(frozen=True)
class Chunk(_Located):
    """A retrievable piece of one document, with everything a citation needs."""

    chunk_id: str  # deterministic UUID from doc_id + doc_hash + index, so re-runs never duplicate
    doc_id: str
    doc_hash: str
    chunk_index: int
    chunk_count: int  # chunks of this document version; lets the indexer detect partial writes
    path: str
    title: str
    text: str  # the chunk's own text, exactly as in the document between char_start and char_end
    index_text: str  # what is embedded and keyword-indexed (the text, optionally prefixed by the title)
    char_start: int
    char_end: int
    page: int | None = None
    tags: tuple[str, ...] = ()
    # Where in the source the chunk sits (see Section); None/() when the format has no such notion.
    slide: int | None = None
    sheet: str | None = None
    cells: str | None = None
    table: int | None = None
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk returned by retrieval. `score` is the fused score; the parts explain it."""

    chunk: Chunk
    score: float
    dense_score: float | None = None  # cosine similarity, when the dense search found it
    keyword_score: float | None = None  # BM25 score, when the keyword search found it
    dense_rank: int | None = None
    keyword_rank: int | None = None
    rerank_score: float | None = None  # the reranker's grade, when one judged this chunk


@dataclass(frozen=True)
class Citation(_Located):
    """A source an answer relies on. `number` is the [n] shown to the model and the user."""

    number: int
    doc_id: str
    path: str
    title: str
    page: int | None
    char_start: int
    char_end: int
    snippet: str
    score: float
    cited_by: Literal["marker", "overlap"] = "marker"
    slide: int | None = None  # the cited chunk's location beyond the page (see Chunk)
    sheet: str | None = None
    cells: str | None = None
    table: int | None = None
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        """Two calls' tokens together (an answer and the model calls made for it: rewrite, rerank, follow-up)."""
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Generation:
    """What a generator backend returns for one call."""

    text: str
    usage: Usage
    latency_ms: float
    model: str
    finish_reason: str | None = None
    retries: int = 0  # requests retried (429/5xx/timeouts) before this one succeeded


@dataclass(frozen=True)
class Sampling:
    """A client's generation parameters (serve): each None keeps the strategy's evaluated setting."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    json_schema: dict[str, Any] | None = None  # response_format: constrain the answer to JSON of this schema

    @property
    def is_default(self) -> bool:
        return self == Sampling()


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation (the question itself is not a Turn)."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class Standalone:
    """A follow-up question made standalone from the conversation before it (the question itself when there was
    nothing before it), with the model tokens the rewrite spent."""

    question: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class TextDelta:
    """A piece of an answer's text, as the model produces it (Generator.stream_chat, Strategy.stream). The pieces
    of one stream join to exactly the final Answer's text."""

    text: str


@dataclass(frozen=True)
class Answer:
    """The unit every strategy returns and the harness, cost model and server consume."""

    text: str
    citations: tuple[Citation, ...] = ()
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    refused: bool = False  # True when the strategy declined to answer (nothing relevant found)
    cache_status: Literal["none", "hit", "miss"] = "none"
    model: str = ""
    retrieved: tuple[ScoredChunk, ...] = ()  # the chunks given to the model as numbered sources
    # Everything retrieval ranked (top_k, best first), of which `retrieved` is the prefix the prompt had room
    # for; the harness scores recall@k / MRR / nDCG on it. Empty for strategies that do not retrieve.
    search_results: tuple[ScoredChunk, ...] = ()
    retries: int = 0  # model requests retried before the answer came (rate limits, 5xx, timeouts)
    # Streamed answers: ms from the request to the first piece of text (time to first token); None when the
    # answer was not streamed.
    first_token_ms: float | None = None
    finish_reason: str = "stop"  # "length" when the answer hit its max_tokens (a client's, in serve)
    standalone_question: str | None = None  # a follow-up, as it was made standalone and answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": [asdict(c) for c in self.citations],
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
            "latency_ms": round(self.latency_ms, 2),
            "refused": self.refused,
            "cache_status": self.cache_status,
            "model": self.model,
        }


@dataclass
class IngestReport:
    """What one `ingest` run did. Counts are documents, not chunks, except the *_chunks fields."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    retired_doc_hashes: list[str] = field(default_factory=list)  # versions replaced or deleted by this run
    cache_entries_invalidated: int = 0  # answers cached from those versions, deleted after the run

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "problems": [str(p) for p in self.problems],
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "total_chunks": self.total_chunks,
            "cache_entries_invalidated": self.cache_entries_invalidated,
            "seconds": round(self.seconds, 2),
        }
