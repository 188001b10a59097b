"""Semantic-cache threshold sweep on labelled question pairs: how many queries hit, and how many hits are wrong.

A semantic cache answers a query with the answer of a cached question whose embedding is similar enough. The
threshold trades hits (money saved) against false hits (a different question's answer served). Published
thresholds (GPTCache's 0.8, "use 0.9" in blog posts) were measured with other embedders on other questions, so
the sweep measures them on the team's own labelled pairs — duplicate or not, as in Quora Question Pairs — with
the configured embedder, with and without the match guard (`adaptlab.cache.guard`), and recommends the lowest
threshold whose false-hit rate is below a target with 95% confidence.

Definitions (per threshold t, over labelled pairs (q1, q2)):
- hit: cosine(q1, q2) ≥ t (and, with the guard, the guard accepts the pair) — q2 would be answered from q1;
- hit rate = hits / all pairs;
- false-hit rate = hits among non-duplicate pairs / non-duplicate pairs — how often a different question is
  served a cached answer;
- precision = duplicate hits / hits — the share of served cached answers that were right;
- recall = duplicate hits / duplicate pairs.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptlab.cache.guard import guard_rejection
from adaptlab.errors import InputError
from adaptlab.textfiles import jsonl_lines, read_csv_rows, read_text, sniff_delimiter
from adaptlab.types import FileProblem, line_problem, listed_problems

if TYPE_CHECKING:
    from adaptlab.embed.base import Embedder

ProgressCallback = Callable[[str, int, int], None]  # stage, done, total (as adaptlab.rag.index)

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.50 + 0.01 * i, 2) for i in range(50))  # 0.50 … 0.99
QUESTION1_KEYS = ("question1", "q1")
QUESTION2_KEYS = ("question2", "q2")
LABEL_KEYS = ("duplicate", "is_duplicate", "label")
EMBED_BATCH = 256
EXAMPLE_PAIR = '{"question1": "How do I reset my password?", "question2": "I forgot my password", "duplicate": true}'
_TRUE = {"1", "true", "yes", "y", "t", "duplicate"}
_FALSE = {"0", "false", "no", "n", "f", "different"}


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Rate:
    """k of n, with a Wilson confidence interval; value/low/high are None when n is 0 (nothing to measure)."""

    k: int
    n: int
    value: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def show(self, digits: int | None = None) -> str:
        """"12.5% [3.4–36.0]"; two decimals when the whole interval is below 10% (false-hit rates)."""
        if self.value is None or self.low is None or self.high is None:
            return "n/a"
        if digits is None:
            digits = 2 if self.high < 0.1 else 1
        return f"{100 * self.value:.{digits}f}% [{100 * self.low:.{digits}f}–{100 * self.high:.{digits}f}]"


def wilson(k: int, n: int, confidence: float = 0.95) -> Rate:
    """k/n with its Wilson score interval: unlike the normal approximation it stays inside [0, 1] and is
    informative at k = 0, which is exactly where a false-hit rate should be."""
    if n == 0:
        return Rate(k, n, None, None, None)
    from scipy.stats import binomtest

    interval = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Rate(int(k), int(n), k / n, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class LabelledPair:
    question1: str
    question2: str
    duplicate: bool
    line: int = 0  # line in the pairs file, for messages


@dataclass(frozen=True)
class SweepRow:
    """The cache's behaviour on the pairs at one threshold, with or without the guard."""

    threshold: float
    guard: bool
    hits: int
    hit_rate: Rate
    false_hit_rate: Rate
    precision: Rate
    recall: Rate

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "guard": self.guard, "hits": self.hits,
                "hit_rate": self.hit_rate.to_dict(), "false_hit_rate": self.false_hit_rate.to_dict(),
                "precision": self.precision.to_dict(), "recall": self.recall.to_dict()}


@dataclass(frozen=True)
class GuardExample:
    question1: str
    question2: str
    duplicate: bool
    similarity: float
    reason: str


@dataclass
class SweepResult:
    source: str
    embedder: str
    n_pairs: int
    n_duplicates: int
    confidence: float
    target_false_hit_rate: float
    rows: list[SweepRow]  # every threshold without the guard, then every threshold with it
    recommended_threshold: float | None  # without the guard
    recommended_threshold_guard: float | None
    guard_rejected_duplicates: int  # duplicate pairs the guard refuses: lost true hits
    guard_rejected_non_duplicates: int  # non-duplicate pairs the guard refuses: false hits it can prevent
    guard_examples: list[GuardExample] = field(default_factory=list)  # the most similar refused pairs

    @property
    def n_non_duplicates(self) -> int:
        return self.n_pairs - self.n_duplicates

    @property
    def thresholds(self) -> list[float]:
        return [row.threshold for row in self.rows if not row.guard]

    def rows_for(self, guard: bool) -> list[SweepRow]:
        return [row for row in self.rows if row.guard == guard]

    def row(self, threshold: float, guard: bool) -> SweepRow:
        for row in self.rows_for(guard):
            if math.isclose(row.threshold, threshold, abs_tol=1e-9):
                return row
        raise KeyError(f"threshold {threshold} was not swept")

    def min_non_duplicates_needed(self) -> int:
        """Non-duplicate pairs needed before even zero false hits prove the target: the Wilson upper bound
        at k = 0 is z²/(n + z²)."""
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + self.confidence / 2))
        return math.ceil(z * z * (1 - self.target_false_hit_rate) / self.target_false_hit_rate)

    def recommendation(self, guard: bool) -> str:
        threshold = self.recommended_threshold_guard if guard else self.recommended_threshold
        label = "with the guard" if guard else "without the guard"
        if threshold is None:
            if self.n_non_duplicates < self.min_non_duplicates_needed():
                return (f"{label}: none — {self.n_non_duplicates} non-duplicate pairs cannot show a false-hit rate "
                        f"≤ {self.target_false_hit_rate:.1%} at {self.confidence:.0%} confidence; label at least "
                        f"{self.min_non_duplicates_needed()}")
            return (f"{label}: none — no threshold up to {max(self.thresholds):.2f} keeps the false-hit rate's "
                    f"upper bound ≤ {self.target_false_hit_rate:.1%}")
        row = self.row(threshold, guard)
        return (f"{label}: {threshold:.2f} — hit rate {row.hit_rate.show()}, false-hit rate "
                f"{row.false_hit_rate.show()}, precision {row.precision.show()}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "embedder": self.embedder, "n_pairs": self.n_pairs,
            "n_duplicates": self.n_duplicates, "n_non_duplicates": self.n_non_duplicates,
            "confidence": self.confidence, "target_false_hit_rate": self.target_false_hit_rate,
            "recommended_threshold": self.recommended_threshold,
            "recommended_threshold_guard": self.recommended_threshold_guard,
            "recommendation": {"no_guard": self.recommendation(False), "guard": self.recommendation(True)},
            "guard_rejected_duplicates": self.guard_rejected_duplicates,
            "guard_rejected_non_duplicates": self.guard_rejected_non_duplicates,
            "guard_examples": [asdict(e) for e in self.guard_examples],
            "rows": [row.to_dict() for row in self.rows],
        }


# ------------------------------------------------------------------------------------------------ reading


def _line(problem: FileProblem) -> int:
    """Sort key of a problem made by line_problem (which always has a line)."""
    assert problem.line is not None, problem
    return problem.line


class BadLinesError(InputError):
    """An input file has bad lines; `problems` holds all of them, the message the first 20 and how many
    lines were fine (so the user sees whether the file is mostly right or in the wrong format)."""

    def __init__(self, path: str, problems: list[FileProblem], *, good: int, unit: str) -> None:
        self.problems = sorted(problems, key=_line)
        self.good = good
        count = len(self.problems)
        units = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
        reason = (f"{count} bad line{'s' if count != 1 else ''} ({good} good {unit if good == 1 else units} "
                  f"read):\n" + listed_problems(self.problems))
        super().__init__(path, None, reason, "fix or delete these lines and run again")


def is_csv(path: Path, text: str) -> bool:
    """By extension, else by content: JSONL lines start with '{'."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return True
    if suffix in (".jsonl", ".json", ".ndjson"):
        return False
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    return not first.startswith("{")


def csv_header(text: str, delimiter: str) -> list[str]:
    try:
        return [name.strip() for name in next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])]
    except csv.Error:
        return []


def load_pairs(path: str | Path) -> list[LabelledPair]:
    """Labelled question pairs from JSONL ({"question1", "question2", "duplicate"}; also q1/q2 and
    label/is_duplicate) or a CSV with a header naming the same columns. Raises BadLinesError listing every bad
    line; nothing is returned unless all lines are good."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise InputError(str(path), None, "the file is empty", f"write one labelled pair per line, e.g. {EXAMPLE_PAIR}")
    pairs, problems = _read_csv_pairs(path, text) if is_csv(path, text) else _read_jsonl_pairs(path, text)
    if problems:
        raise BadLinesError(str(path), problems, good=len(pairs), unit="pair")
    if not pairs:
        raise InputError(str(path), None, "no pairs in the file",
                         f"write one labelled pair per line, e.g. {EXAMPLE_PAIR}")
    return pairs


def _parse_label(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().casefold()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


def _first_key(record: dict[str, Any], keys: Sequence[str]) -> str | None:
    return next((key for key in keys if key in record), None)


def _read_jsonl_pairs(path: Path, text: str) -> tuple[list[LabelledPair], list[FileProblem]]:
    pairs: list[LabelledPair] = []
    problems: list[FileProblem] = []
    for number, stripped in jsonl_lines(text):

        def problem(reason: str, fix: str, number: int = number) -> None:
            problems.append(line_problem(str(path), number, reason, fix))

        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            problem(f"invalid JSON: {exc.msg} (column {exc.colno})",
                    f"write one JSON object per line, e.g. {EXAMPLE_PAIR}")
            continue
        if not isinstance(record, dict):
            problem("expected a JSON object", f"write one object per line, e.g. {EXAMPLE_PAIR}")
            continue
        values: list[str | None] = []
        for keys in (QUESTION1_KEYS, QUESTION2_KEYS):
            key = _first_key(record, keys)
            value = record.get(key) if key else None
            if not isinstance(value, str) or not value.strip():
                problem(f"missing or empty {' / '.join(repr(k) for k in keys)}",
                        f'add "{keys[0]}": "<question text>"')
                values.append(None)
            else:
                values.append(value)
        label_key = _first_key(record, LABEL_KEYS)
        label = _parse_label(record.get(label_key)) if label_key else None
        if label is None:
            shown = f"{label_key!r} is {record.get(label_key)!r}" if label_key else f"no {' / '.join(LABEL_KEYS)}"
            problem(f"{shown}: not a duplicate label", 'add "duplicate": true or false (or 1 / 0)')
        if label is not None and values[0] is not None and values[1] is not None:
            pairs.append(LabelledPair(values[0], values[1], label, number))
    return pairs, problems


def _read_csv_pairs(path: Path, text: str) -> tuple[list[LabelledPair], list[FileProblem]]:
    delimiter = sniff_delimiter(text)
    header = csv_header(text, delimiter)
    names: list[str] = []
    for keys in (QUESTION1_KEYS, QUESTION2_KEYS, LABEL_KEYS):
        name = next((key for key in keys if key in header), None)
        if name is None:
            raise InputError(str(path), 1, f"no column {' or '.join(repr(k) for k in keys)} (columns found: "
                             f"{', '.join(repr(c) for c in header) or 'none'}, delimiter {delimiter!r})",
                             "name the header's columns question1, question2, duplicate")
        names.append(name)
    table = read_csv_rows(path, [(name, f"a {name!r} column") for name in names], required=names,
                          delimiter=delimiter, unit="pair")
    problems = [line_problem(str(path), line, reason, fix) for line, reason, fix in table.problems]
    pairs: list[LabelledPair] = []
    for number, values in table.rows:
        label = _parse_label(values[names[2]])
        if label is None:
            problems.append(line_problem(str(path), number, f"{names[2]!r} is {values[names[2]]!r}: not a duplicate "
                                        "label", "write 1 or 0 (true / false)"))
            continue
        pairs.append(LabelledPair(values[names[0]], values[names[1]], label, number))
    return pairs, problems


# ---------------------------------------------------------------------------------------------- embedding


def embed_texts(embedder: Embedder, texts: Sequence[str], *, progress: ProgressCallback | None = None,
                stage: str = "Embedding", batch: int = EMBED_BATCH) -> np.ndarray:
    """Embed `texts`, each distinct text once (query logs and pair sets repeat texts), in batches that report
    progress. Rows are aligned with `texts`."""
    unique: dict[str, int] = {}
    index = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts))
    distinct = list(unique)
    parts: list[np.ndarray] = []
    for start in range(0, len(distinct), batch):
        parts.append(np.asarray(embedder.embed(distinct[start:start + batch]), dtype=np.float32))
        if progress:
            progress(stage, min(start + batch, len(distinct)), len(distinct))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)[index]


# ------------------------------------------------------------------------------------------------- sweep


def sweep(
    pairs: Sequence[LabelledPair],
    embedder: Embedder,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    target_false_hit_rate: float = 0.01,
    confidence: float = 0.95,
    source: str = "",
    progress: ProgressCallback | None = None,
) -> SweepResult:
    """Hit rate, false-hit rate, precision and recall with Wilson CIs at every threshold, without and with the
    guard, and the lowest threshold whose false-hit rate's upper bound is ≤ `target_false_hit_rate`."""
    if not pairs:
        raise ValueError("no pairs to sweep")
    if not 0 < target_false_hit_rate < 1:
        raise ValueError(f"target_false_hit_rate must be between 0 and 1, got {target_false_hit_rate}")
    thresholds = sorted({round(float(t), 6) for t in thresholds})
    vectors = embed_texts(embedder, [p.question1 for p in pairs] + [p.question2 for p in pairs], progress=progress)
    first, second = vectors[: len(pairs)], vectors[len(pairs):]
    similarity = np.einsum("ij,ij->i", first, second)  # rows are L2-normalised: dot = cosine
    duplicate = np.fromiter((p.duplicate for p in pairs), dtype=bool, count=len(pairs))
    reasons = [guard_rejection(p.question2, p.question1) for p in pairs]  # q2 asks, q1 is cached
    accepted = np.fromiter((r is None for r in reasons), dtype=bool, count=len(pairs))

    rows: list[SweepRow] = []
    recommended: dict[bool, float | None] = {False: None, True: None}
    for use_guard in (False, True):
        for threshold in thresholds:
            hit = similarity >= threshold
            if use_guard:
                hit &= accepted
            row = _row(threshold, use_guard, hit, duplicate, confidence)
            rows.append(row)
            upper = row.false_hit_rate.high
            if recommended[use_guard] is None and upper is not None and upper <= target_false_hit_rate:
                recommended[use_guard] = threshold

    refused = [i for i in range(len(pairs)) if not accepted[i]]
    refused.sort(key=lambda i: -float(similarity[i]))
    examples = [GuardExample(pairs[i].question1, pairs[i].question2, pairs[i].duplicate, round(float(similarity[i]), 4),
                             reasons[i] or "") for i in refused[:10]]
    return SweepResult(
        source=source, embedder=getattr(embedder, "name", type(embedder).__name__), n_pairs=len(pairs),
        n_duplicates=int(duplicate.sum()), confidence=confidence, target_false_hit_rate=target_false_hit_rate,
        rows=rows, recommended_threshold=recommended[False], recommended_threshold_guard=recommended[True],
        guard_rejected_duplicates=int((~accepted & duplicate).sum()),
        guard_rejected_non_duplicates=int((~accepted & ~duplicate).sum()), guard_examples=examples,
    )


def _row(threshold: float, guard: bool, hit: np.ndarray, duplicate: np.ndarray, confidence: float) -> SweepRow:
    hits = int(hit.sum())
    duplicate_hits = int((hit & duplicate).sum())
    n_duplicates = int(duplicate.sum())
    return SweepRow(
        threshold=threshold, guard=guard, hits=hits,
        hit_rate=wilson(hits, len(hit), confidence),
        false_hit_rate=wilson(hits - duplicate_hits, len(hit) - n_duplicates, confidence),
        precision=wilson(duplicate_hits, hits, confidence),
        recall=wilson(duplicate_hits, n_duplicates, confidence),
    )


# -------------------------------------------------------------------------------------------------- HTML


_COLOURS = {"hit": "#1f77b4", "false": "#d62728", "precision": "#2ca02c"}


def write_sweep_html(result: SweepResult, path: str | Path) -> Path:
    """A self-contained HTML page (inline SVG, no scripts, nothing fetched): the curves, the recommendation and
    the table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series_all: list[_Series] = []
    series_false: list[_Series] = []
    for guard in (False, True):
        rows = result.rows_for(guard)
        dash = "6,4" if guard else ""
        suffix = " (guard)" if guard else ""
        series_all.append(_Series(f"hit rate{suffix}", _COLOURS["hit"], dash, rows, "hit_rate"))
        series_all.append(_Series(f"false-hit rate{suffix}", _COLOURS["false"], dash, rows, "false_hit_rate"))
        series_all.append(_Series(f"precision{suffix}", _COLOURS["precision"], dash, rows, "precision"))
        series_false.append(_Series(f"false-hit rate{suffix}", _COLOURS["false"], dash, rows, "false_hit_rate"))
    highs = [row.false_hit_rate.high or 0.0 for row in result.rows]
    zoom_max = max(min(1.0, max(highs, default=0.0)), 2 * result.target_false_hit_rate)
    marks = [(t, f"recommended{' (guard)' if g else ''} {t:.2f}", "6,4" if g else "")
             for g, t in ((False, result.recommended_threshold), (True, result.recommended_threshold_guard))
             if t is not None]
    charts = (_svg_chart(series_all, result.thresholds, 1.0, "Rates vs threshold (bands: 95% CI)", marks)
              + _svg_chart(series_false, result.thresholds, zoom_max, "False-hit rate, zoomed (dotted: target)",
                           marks, target=result.target_false_hit_rate))
    table_rows = []
    for row_plain in result.rows_for(False):
        row_guard = result.row(row_plain.threshold, True)
        recommended = row_plain.threshold in (result.recommended_threshold, result.recommended_threshold_guard)
        cells = [f"{row_plain.threshold:.2f}"] + [r.show() for r in (row_plain.hit_rate, row_guard.hit_rate)] + \
                [r.show() for r in (row_plain.false_hit_rate, row_guard.false_hit_rate)] + \
                [r.show() for r in (row_plain.precision, row_guard.precision)]
        style = ' style="font-weight:bold;background:#fff3cd"' if recommended else ""
        table_rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    examples = "".join(
        f"<tr><td>{html.escape(e.question1)}</td><td>{html.escape(e.question2)}</td>"
        f"<td>{'yes' if e.duplicate else 'no'}</td><td>{e.similarity:.3f}</td><td>{html.escape(e.reason)}</td></tr>"
        for e in result.guard_examples)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Semantic-cache threshold sweep</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;
font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
svg{{display:block;margin:1em 0}}.note{{color:#555}}</style></head><body>
<h1>Semantic-cache threshold sweep</h1>
<p>{html.escape(result.source)} — {result.n_pairs} pairs ({result.n_duplicates} duplicates,
{result.n_non_duplicates} non-duplicates), embedder {html.escape(result.embedder)}.
Target: false-hit rate ≤ {result.target_false_hit_rate:.2%} at {result.confidence:.0%} confidence
(upper Wilson bound).</p>
<ul><li>{html.escape(result.recommendation(False))}</li><li>{html.escape(result.recommendation(True))}</li></ul>
<p class="note">hit rate = pairs with similarity ≥ threshold / all pairs; false-hit rate = hits among
non-duplicate pairs / non-duplicate pairs; precision = duplicate hits / hits. The guard refused
{result.guard_rejected_non_duplicates} non-duplicate and {result.guard_rejected_duplicates} duplicate pairs.</p>
{charts}
<h2>Every threshold</h2>
<table><tr><th>threshold</th><th>hit rate</th><th>hit rate (guard)</th><th>false-hit rate</th>
<th>false-hit rate (guard)</th><th>precision</th><th>precision (guard)</th></tr>
{''.join(table_rows)}</table>
<h2>Most similar pairs the guard refused</h2>
<table><tr><th>question 1 (cached)</th><th>question 2 (asked)</th><th>duplicate</th><th>cosine</th><th>reason</th></tr>
{examples}</table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path


@dataclass
class _Series:
    label: str
    colour: str
    dash: str
    rows: list[SweepRow]
    metric: str


def _svg_chart(series: list[_Series], thresholds: list[float], y_max: float, title: str,
               marks: list[tuple[float, str, str]], target: float | None = None) -> str:
    width, height, left, right, top, bottom = 760, 340, 60, 190, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    x_lo, x_hi = min(thresholds), max(thresholds)
    x_span = (x_hi - x_lo) or 1.0
    y_max = y_max or 1.0

    def x(t: float) -> float:
        return left + (t - x_lo) / x_span * plot_w

    def y(v: float) -> float:
        return top + plot_h - min(v, y_max) / y_max * plot_h

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
              f'aria-label="{html.escape(title)}"><text x="{left}" y="18" font-size="14">{html.escape(title)}</text>'),
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for i in range(5):
        value = y_max * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">'
                     f'{100 * value:.{0 if y_max >= 0.2 else 1}f}%</text>')
    step = 0.05 if x_span > 0.2 else 0.01
    tick = math.ceil(x_lo / step - 1e-9) * step
    while tick <= x_hi + 1e-9:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
                     f'stroke="#999"/><text x="{x(tick):.1f}" y="{top + plot_h + 16}" font-size="11" '
                     f'text-anchor="middle">{tick:.2f}</text>')
        tick += step
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
                 'similarity threshold</text>')
    if target is not None:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                     'stroke="#555" stroke-dasharray="2,3"/>')
    for threshold, label, dash in marks:
        parts.append(f'<line x1="{x(threshold):.1f}" x2="{x(threshold):.1f}" y1="{top}" y2="{top + plot_h}" '
                     f'stroke="#b8860b" stroke-dasharray="{dash or "none"}"><title>{html.escape(label)}</title></line>')
    for number, s in enumerate(series):
        rates = [(row.threshold, getattr(row, s.metric)) for row in s.rows]
        band = [(t, r) for t, r in rates if r.low is not None and r.high is not None]
        if band:
            upper = " ".join(f"{x(t):.1f},{y(r.high):.1f}" for t, r in band)
            lower = " ".join(f"{x(t):.1f},{y(r.low):.1f}" for t, r in reversed(band))
            parts.append(f'<polygon points="{upper} {lower}" fill="{s.colour}" fill-opacity="0.10" stroke="none"/>')
        points = " ".join(f"{x(t):.1f},{y(r.value):.1f}" for t, r in rates if r.value is not None)
        dash_attr = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="2"{dash_attr}/>')
        legend_y = top + 14 + 18 * number
        parts.append(f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 40}" y1="{legend_y - 4}" '
                     f'y2="{legend_y - 4}" stroke="{s.colour}" stroke-width="2"{dash_attr}/>'
                     f'<text x="{left + plot_w + 46}" y="{legend_y}" font-size="12">{html.escape(s.label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
