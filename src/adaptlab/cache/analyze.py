"""Query-log analysis: would an answer cache pay on this traffic? Measured on the team's own log, not assumed.

The rule of thumb of the article "Prompt Caching vs Fine-Tuning: Cost-Effective LLM Strategies" ("if more than 30%
of requests are identical or similar, caching is likely beneficial") needs three numbers nobody has before looking:
how many queries repeat an earlier one exactly (after the cache's own normalisation), how many more are
near-duplicates at a similarity threshold, and how many of those would still find a live entry under a TTL. This
module measures all three from a log of questions with optional timestamps, and prices the hits.

Definitions:
- exact-repeat rate: share of queries whose normalised text (`normalise_question`) appeared earlier;
- near-duplicate rate: share of queries that repeat an earlier one exactly or whose most similar earlier query
  has cosine ≥ threshold (with the guard on, the guard must accept that earlier query);
- replayed hit rate under a TTL: the log replayed in time order through a cache where a miss stores an entry
  that expires `ttl` seconds later (hits do not refresh it); a query hits when a live entry matches exactly or
  semantically. It is lower than the near-duplicate rate: entries expire, and a query that hit stored nothing
  for later paraphrases of itself to match.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptlab.cache.guard import guard_rejection
from adaptlab.cache.keys import normalise_question
from adaptlab.cache.sweep import (
    BadLinesError,
    ProgressCallback,
    Rate,
    csv_header,
    embed_texts,
    is_csv,
    wilson,
)
from adaptlab.errors import InputError
from adaptlab.textfiles import jsonl_lines, read_csv_rows, read_text, sniff_delimiter
from adaptlab.types import FileProblem, line_problem

if TYPE_CHECKING:
    from adaptlab.embed.base import Embedder

QUESTION_KEYS = ("question", "query", "prompt")
TIMESTAMP_KEYS = ("timestamp", "ts", "time")
DEFAULT_TTLS: tuple[float | None, ...] = (300, 3600, 86_400, 7 * 86_400, None)  # None: entries never expire
# "Prompt Caching vs Fine-Tuning": "> 30% of requests identical or similar → caching likely pays"
REPEAT_RULE_OF_THUMB = 0.30
SECONDS_PER_MONTH = 30.4375 * 86_400
CURVE_THRESHOLDS = (0.80, 0.85, 0.90, 0.95, 0.99)
EXAMPLE_QUERY = '{"question": "How do I reset my password?", "timestamp": "2025-03-01T09:30:00Z"}'
# Unix times in milliseconds are ~1.7e12 and in seconds ~1.7e9: anything above 1e11 s (year 5138) is ms.
_MILLISECONDS_ABOVE = 1e11


# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class LoggedQuery:
    question: str
    timestamp: float | None  # unix seconds
    line: int = 0


@dataclass
class QueryLog:
    source: str
    queries: list[LoggedQuery]

    @property
    def has_timestamps(self) -> bool:
        return bool(self.queries) and all(q.timestamp is not None for q in self.queries)

    def most_asked(self) -> list[tuple[str, int]]:
        """Distinct questions (after `normalise_question`), most asked first, each as first asked with its count;
        ties keep first-asked order."""
        counts: Counter[str] = Counter()
        first: dict[str, str] = {}
        for query in self.queries:
            key = normalise_question(query.question)
            counts[key] += 1
            first.setdefault(key, query.question)
        ranked = sorted(counts, key=lambda key: -counts[key])  # stable sort
        return [(first[key], counts[key]) for key in ranked]

    @property
    def span_seconds(self) -> float | None:
        if not self.has_timestamps:
            return None
        times = [q.timestamp for q in self.queries if q.timestamp is not None]
        return max(times) - min(times)


def parse_timestamp(value: Any) -> float:
    """Unix seconds (or milliseconds) as a number or numeric string, or an ISO-8601 string (no zone: UTC)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value!r} is neither ISO-8601 nor unix seconds") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    else:
        raise TypeError(f"{value!r} is not a time")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a unix time")
    return number / 1000 if number > _MILLISECONDS_ABOVE else number


def load_query_log(path: str | Path, *, question_column: str | None = None, timestamp_column: str | None = None,
                   delimiter: str | None = None) -> QueryLog:
    """A query log from JSONL ({"question"|"query"|"prompt", "timestamp"|"ts"|"time"}) or CSV with a header.
    Raises BadLinesError listing every bad line (with how many were good); returns only when all are good."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise InputError(str(path), None, "the log is empty", f"write one query per line, e.g. {EXAMPLE_QUERY}")
    if is_csv(path, text):
        queries, problems = _read_csv_log(path, text, question_column, timestamp_column, delimiter)
    else:
        queries, problems = _read_jsonl_log(path, text, question_column, timestamp_column)
    if problems:
        raise BadLinesError(str(path), problems, good=len(queries), unit="query")
    if not queries:
        raise InputError(str(path), None, "no queries in the log", f"write one query per line, e.g. {EXAMPLE_QUERY}")
    return QueryLog(str(path), queries)


def _read_jsonl_log(path: Path, text: str, question_column: str | None,
                    timestamp_column: str | None) -> tuple[list[LoggedQuery], list[FileProblem]]:
    question_keys = (question_column,) if question_column else QUESTION_KEYS
    timestamp_keys = (timestamp_column,) if timestamp_column else TIMESTAMP_KEYS
    queries: list[LoggedQuery] = []
    problems: list[FileProblem] = []
    for number, stripped in jsonl_lines(text):
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            problems.append(line_problem(str(path), number, f"invalid JSON: {exc.msg} (column {exc.colno})",
                                        f"write one JSON object per line, e.g. {EXAMPLE_QUERY}"))
            continue
        if not isinstance(record, dict):
            problems.append(line_problem(str(path), number, "expected a JSON object",
                                        f"write one object per line, e.g. {EXAMPLE_QUERY}"))
            continue
        key = next((k for k in question_keys if k in record), None)
        question = record.get(key) if key else None
        bad = False
        if not isinstance(question, str) or not question.strip():
            shown = f"{key!r} is {question!r}" if key else f"no {' / '.join(repr(k) for k in question_keys)}"
            problems.append(line_problem(str(path), number, f"{shown}: not a question",
                                        f'add "{question_keys[0]}": "<the query text>"'
                                        + ("" if question_column else " (or pass --question-column)")))
            bad = True
        timestamp = None
        time_key = next((k for k in timestamp_keys if k in record), None)
        if time_key is not None and record[time_key] is not None:
            try:
                timestamp = parse_timestamp(record[time_key])
            except (TypeError, ValueError) as exc:
                problems.append(line_problem(str(path), number, f"bad {time_key!r}: {exc}",
                                            'write ISO-8601 ("2025-03-01T09:30:00Z") or unix seconds'))
                bad = True
        if not bad:
            assert isinstance(question, str)  # else bad
            queries.append(LoggedQuery(question, timestamp, number))
    return _require_consistent_times(path, queries, problems, explicit=timestamp_column is not None)


def _read_csv_log(path: Path, text: str, question_column: str | None, timestamp_column: str | None,
                  delimiter: str | None) -> tuple[list[LoggedQuery], list[FileProblem]]:
    delimiter = delimiter or sniff_delimiter(text)
    header = csv_header(text, delimiter)
    question_name = question_column or next((k for k in QUESTION_KEYS if k in header), QUESTION_KEYS[0])
    time_name = timestamp_column or next((k for k in TIMESTAMP_KEYS if k in header), None)
    table = read_csv_rows(path, [(question_name, "--question-column"), (time_name, "--timestamp-column")],
                          required=[question_name], delimiter=delimiter, unit="query")
    problems = [line_problem(str(path), line, reason, fix) for line, reason, fix in table.problems]
    queries: list[LoggedQuery] = []
    for number, values in table.rows:
        timestamp = None
        if time_name is not None and values[time_name]:
            try:
                timestamp = parse_timestamp(values[time_name])
            except (TypeError, ValueError) as exc:
                problems.append(line_problem(str(path), number, f"bad {time_name!r}: {exc}",
                                            'write ISO-8601 ("2025-03-01T09:30:00Z") or unix seconds'))
                continue
        queries.append(LoggedQuery(values[question_name], timestamp, number))
    return _require_consistent_times(path, queries, problems, explicit=timestamp_column is not None)


def _require_consistent_times(path: Path, queries: list[LoggedQuery], problems: list[FileProblem], *,
                              explicit: bool) -> tuple[list[LoggedQuery], list[FileProblem]]:
    """A TTL replay needs every query's time: once some lines have one (or the column was named), a line
    without one is a problem rather than silently dropping the timestamps of all the others."""
    if explicit or any(q.timestamp is not None for q in queries):
        missing = [q for q in queries if q.timestamp is None]
        problems.extend(line_problem(str(path), q.line, "no timestamp, but other lines have one",
                                    "add the time of this query, or remove the timestamps from every line")
                        for q in missing)
        queries = [q for q in queries if q.timestamp is not None]
    return queries, problems


# ----------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TtlResult:
    """The log replayed through a cache whose entries live `ttl_seconds` (None: never expire)."""

    ttl_seconds: float | None
    hit_rate: Rate
    exact_hits: int
    semantic_hits: int
    tokens_saved: int | None  # hits × tokens per query; None when tokens per query are unknown
    money_saved: float | None  # over the whole log, in the currency of the price
    money_saved_per_month: float | None  # scaled by the log's time span; None without timestamps

    @property
    def hits(self) -> int:
        return self.exact_hits + self.semantic_hits

    def to_dict(self) -> dict[str, Any]:
        return {"ttl_seconds": self.ttl_seconds, "hit_rate": self.hit_rate.to_dict(), "hits": self.hits,
                "exact_hits": self.exact_hits, "semantic_hits": self.semantic_hits,
                "tokens_saved": self.tokens_saved, "money_saved": self.money_saved,
                "money_saved_per_month": self.money_saved_per_month}


@dataclass
class LogAnalysis:
    source: str
    embedder: str
    n_queries: int
    n_distinct: int  # distinct normalised questions
    has_timestamps: bool
    span_seconds: float | None
    threshold: float
    guard: bool
    exact_repeat_rate: Rate
    near_duplicate_rate: Rate  # exact repeats included
    near_duplicate_curve: dict[float, Rate]  # near-duplicate rate at other thresholds (without the guard)
    ttl_results: list[TtlResult]
    prompt_tokens: int | None
    completion_tokens: int | None
    price_per_1k_tokens: float | None
    top_repeated: list[tuple[str, int]]  # the most asked normalised questions
    notes: list[str] = field(default_factory=list)
    verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "embedder": self.embedder, "n_queries": self.n_queries,
            "n_distinct": self.n_distinct, "has_timestamps": self.has_timestamps,
            "span_seconds": self.span_seconds, "threshold": self.threshold, "guard": self.guard,
            "exact_repeat_rate": self.exact_repeat_rate.to_dict(),
            "near_duplicate_rate": self.near_duplicate_rate.to_dict(),
            "near_duplicate_curve": {f"{t:.2f}": r.to_dict() for t, r in self.near_duplicate_curve.items()},
            "ttl_results": [r.to_dict() for r in self.ttl_results],
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "price_per_1k_tokens": self.price_per_1k_tokens,
            "top_repeated": [{"question": q, "count": c} for q, c in self.top_repeated],
            "notes": list(self.notes), "verdict": self.verdict,
        }


# ------------------------------------------------------------------------------------------------ analysis


def measured_tokens_per_query(log_path: Path) -> tuple[int, int, int] | None:
    """(mean prompt tokens, mean completion tokens, calls) of the LLM calls in a project's logs.db — what a
    cache hit would have saved, measured instead of assumed; None when nothing is logged yet."""
    if not Path(log_path).is_file():
        return None
    from adaptlab.logs import CallLog

    log = CallLog(Path(log_path))
    try:
        rows = log.rows("llm")
    finally:
        log.close()
    if not rows:
        return None
    prompt = sum(r["prompt_tokens"] or 0 for r in rows) / len(rows)
    completion = sum(r["completion_tokens"] or 0 for r in rows) / len(rows)
    return round(prompt), round(completion), len(rows)



def analyze_log(
    log: QueryLog,
    embedder: Embedder,
    *,
    threshold: float = 0.9,
    guard: bool = False,
    ttls: Sequence[float | None] = DEFAULT_TTLS,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    price_per_1k_tokens: float | None = None,
    block: int = 2048,
    max_neighbours: int = 16,
    progress: ProgressCallback | None = None,
    confidence: float = 0.95,
) -> LogAnalysis:
    """Exact-repeat and near-duplicate rates, the hit rate replayed under each TTL, and what the hits save.

    Distinct questions are embedded once; similarities between them are computed in block × block tiles of
    the lower triangle, so 50k queries need ~16 MB of scores at a time, not 10 GB. Each distinct question keeps
    at most `max_neighbours` similar questions per tile — enough for any real log; a pathological one (thousands
    of paraphrases of one question) then slightly under-counts semantic hits under short TTLs."""
    if not log.queries:
        raise ValueError("empty log")
    if any(ttl is not None and ttl <= 0 for ttl in ttls):
        raise ValueError("every TTL must be positive (None: never expire)")
    notes: list[str] = []
    queries = list(log.queries)
    timed = log.has_timestamps
    if timed:
        queries.sort(key=lambda q: q.timestamp or 0.0)  # stable: equal times keep file order
    else:
        notes.append("the log has no timestamps: queries are taken in file order and entries never expire "
                     "(TTL infinite)")
        ttls = [None]

    # Distinct normalised questions, numbered in order of first appearance.
    key_of: dict[str, int] = {}
    texts: list[str] = []
    keys = np.empty(len(queries), dtype=np.int64)
    for position, query in enumerate(queries):
        normalised = normalise_question(query.question)
        if normalised not in key_of:
            key_of[normalised] = len(texts)
            texts.append(query.question)
        keys[position] = key_of[normalised]
    n, u = len(queries), len(texts)

    vectors = embed_texts(embedder, texts, progress=progress, stage="Embedding distinct questions")
    best_earlier, pairs = _earlier_neighbours(vectors, threshold, block=block, cap=max_neighbours,
                                              progress=progress)
    if guard and len(pairs):
        keep = np.fromiter((guard_rejection(texts[i], texts[j]) is None for i, j in pairs), dtype=bool,
                           count=len(pairs))
        pairs = pairs[keep]
    has_earlier = np.zeros(u, dtype=bool)
    has_earlier[pairs[:, 0]] = True

    exact_repeats = n - u
    near = exact_repeats + int(has_earlier.sum())
    curve = {t: wilson(exact_repeats + int((best_earlier >= t).sum()), n, confidence) for t in CURVE_THRESHOLDS}

    neighbours: list[list[int]] = [[] for _ in range(u)]
    for i, j in pairs.tolist():
        neighbours[i].append(j)
        neighbours[j].append(i)  # a question first asked later can still hold a live entry
    times = [q.timestamp or 0.0 for q in queries] if timed else [float(i) for i in range(n)]
    span = log.span_seconds
    tokens_per_query = None
    if prompt_tokens is not None or completion_tokens is not None:
        tokens_per_query = (prompt_tokens or 0) + (completion_tokens or 0)
    ttl_results = []
    for ttl in ttls:
        exact_hits, semantic_hits = _replay(keys.tolist(), times, neighbours, ttl)
        hits = exact_hits + semantic_hits
        tokens = hits * tokens_per_query if tokens_per_query is not None else None
        money = tokens / 1000 * price_per_1k_tokens if tokens is not None and price_per_1k_tokens is not None \
            else None
        monthly = money * SECONDS_PER_MONTH / span if money is not None and span else None
        ttl_results.append(TtlResult(ttl, wilson(hits, n, confidence), exact_hits, semantic_hits, tokens, money,
                                     monthly))
    if tokens_per_query is None:
        notes.append("tokens per query unknown: pass prompt and completion tokens to price the hits")
    elif price_per_1k_tokens is not None and timed and not span:
        notes.append("every query has the same timestamp: no monthly figure")

    counts = Counter(keys.tolist())
    top = [(normalise_question(texts[k]), c) for k, c in counts.most_common(10) if c > 1]
    analysis = LogAnalysis(
        source=log.source, embedder=getattr(embedder, "name", type(embedder).__name__), n_queries=n,
        n_distinct=u, has_timestamps=timed, span_seconds=span, threshold=threshold, guard=guard,
        exact_repeat_rate=wilson(exact_repeats, n, confidence), near_duplicate_rate=wilson(near, n, confidence),
        near_duplicate_curve=curve, ttl_results=ttl_results, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, price_per_1k_tokens=price_per_1k_tokens, top_repeated=top,
        notes=notes,
    )
    analysis.verdict = verdict(analysis)
    return analysis


def verdict(analysis: LogAnalysis) -> str:
    """The "Prompt Caching vs Fine-Tuning" article's rule of thumb, applied to the measured near-duplicate rate
    (not to a quoted range)."""
    rate = analysis.near_duplicate_rate.value or 0.0
    exact = analysis.exact_repeat_rate.value or 0.0
    measured = (f"{rate:.1%} of {analysis.n_queries} queries repeat an earlier one (exact {exact:.1%}, "
                f"near-duplicates at cosine ≥ {analysis.threshold:.2f}{' with the guard' if analysis.guard else ''} "
                f"add {rate - exact:.1%})")
    if rate > REPEAT_RULE_OF_THUMB:
        judged = f"above the {REPEAT_RULE_OF_THUMB:.0%} rule of thumb: caching likely pays"
    else:
        judged = f"below the {REPEAT_RULE_OF_THUMB:.0%} rule of thumb: caching alone is unlikely to pay much"
    text = f"{measured} — {judged}."
    finite = [r for r in analysis.ttl_results if r.ttl_seconds is not None]
    if finite:
        low, high = finite[0], analysis.ttl_results[-1]
        text += (f" Replayed with expiry, the hit rate is {low.hit_rate.value or 0:.1%} at a "
                 f"{format_ttl(low.ttl_seconds)} TTL and {high.hit_rate.value or 0:.1%} at "
                 f"{format_ttl(high.ttl_seconds)}.")
    return text


def format_ttl(seconds: float | None) -> str:
    if seconds is None:
        return "no expiry"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _earlier_neighbours(vectors: np.ndarray, threshold: float, *, block: int, cap: int,
                        progress: ProgressCallback | None) -> tuple[np.ndarray, np.ndarray]:
    """For each row i: the best cosine with any row j < i (-inf for row 0), and the (i, j) pairs, j < i, with
    cosine ≥ threshold (at most `cap` per row per tile, the most similar)."""
    u = len(vectors)
    best = np.full(u, -np.inf, dtype=np.float32)
    found: list[np.ndarray] = []
    tiles = sum(1 + start // block for start in range(0, u, block))
    done = 0
    for row_start in range(0, u, block):
        row_end = min(row_start + block, u)
        rows = vectors[row_start:row_end]
        for col_start in range(0, row_end, block):
            col_end = min(col_start + block, row_end)
            scores = rows @ vectors[col_start:col_end].T
            if col_end > row_start:  # the tile crosses the diagonal: only earlier columns count
                later = np.arange(col_start, col_end)[None, :] >= np.arange(row_start, row_end)[:, None]
                scores[later] = -np.inf
            if scores.shape[1]:
                np.maximum(best[row_start:row_end], scores.max(axis=1), out=best[row_start:row_end])
            r, c = np.nonzero(scores >= threshold)
            if len(r):
                per_row = np.bincount(r, minlength=len(rows))
                if per_row.max() > cap:
                    keep = np.ones(len(r), dtype=bool)
                    for row in np.flatnonzero(per_row > cap):
                        members = np.flatnonzero(r == row)
                        order = np.argsort(-scores[row, c[members]], kind="stable")
                        keep[members[order[cap:]]] = False
                    r, c = r[keep], c[keep]
                found.append(np.stack([r + row_start, c + col_start], axis=1))
            done += 1
            if progress:
                progress("Comparing questions", done, tiles)
    pairs = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
    return best, pairs.astype(np.int64)


def _replay(keys: list[int], times: list[float], neighbours: list[list[int]],
            ttl: float | None) -> tuple[int, int]:
    """(exact hits, semantic hits) of a cache that stores an entry at every miss, alive for `ttl` seconds."""
    life = math.inf if ttl is None else float(ttl)
    expiry = [-math.inf] * len(neighbours)
    exact = semantic = 0
    for key, now in zip(keys, times):
        if expiry[key] > now:
            exact += 1
        elif any(expiry[other] > now for other in neighbours[key]):
            semantic += 1
        else:
            expiry[key] = now + life
    return exact, semantic

