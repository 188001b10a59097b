"""BM25 as sparse vectors, for stores (Qdrant) that score keyword search by sparse dot product.

The client sends each document's BM25-saturated term frequencies; the server multiplies them by
IDF (Qdrant's `modifier=IDF`), so a query vector of 1.0 per term yields the BM25 score
Σ idf(t) · tf(t)·(k1+1) / (tf(t) + k1·(1 − b + b·len/avg_len)).

Tokenisation is deliberately plain and deterministic (lower-case, unicode `\\w+`, a short
stop-word list, no stemming) so that documents written by one process and queries from another
always agree. Term ids are CRC32 of the token: stable across processes, unlike `hash()`.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

K1 = 1.2
B = 0.75
# BM25 needs the corpus' mean document length; a fixed guess keeps vectors independent of what
# else is stored (so re-ingesting one file never rewrites the others). Roughly a chunk's tokens.
DEFAULT_AVG_LEN = 256.0

_TOKEN = re.compile(r"\w+")

STOP_WORDS = frozenset(
    """
    a an and are as at be but by for from has have he her his i if in into is it its me my no not
    of on or our she so than that the their them then there these they this to was we were what
    when which who will with you your
    """.split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of `text`, stop words removed."""
    return [token for token in _TOKEN.findall(text.lower()) if token not in STOP_WORDS]


def term_id(token: str) -> int:
    """Stable unsigned 32-bit id of a token (Qdrant sparse indices are u32)."""
    return zlib.crc32(token.encode("utf-8"))


def _term_counts(tokens: list[str]) -> Counter[int]:
    # Counting by id, not by token, merges the (rare) CRC collisions so indices stay unique,
    # which Qdrant requires.
    return Counter(term_id(token) for token in tokens)


def bm25_document_vector(
    text: str, *, k1: float = K1, b: float = B, avg_len: float = DEFAULT_AVG_LEN
) -> tuple[list[int], list[float]]:
    """(indices, values) of `text`'s BM25 term weights without IDF, sorted by index."""
    tokens = tokenize(text)
    if not tokens:
        return [], []
    length_norm = k1 * (1.0 - b + b * len(tokens) / avg_len)
    counts = _term_counts(tokens)
    indices = sorted(counts)
    values = [counts[i] * (k1 + 1.0) / (counts[i] + length_norm) for i in indices]
    return indices, values


def bm25_query_vector(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a query: each distinct term once with weight 1.0, sorted by index."""
    indices = sorted(_term_counts(tokenize(text)))
    return indices, [1.0] * len(indices)
