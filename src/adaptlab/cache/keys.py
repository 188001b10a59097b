"""Cache keys: the normalised question plus a fingerprint of everything else that changes an answer.

Two requests share a cached answer only when their question normalises to the same text (exact cache) or is
similar enough (semantic cache) AND their context fingerprint is equal: same model, adapter, system prompt,
generation parameters, few-shot set, schema and retrieval-index configuration. Known complaint about other
caches: keys that ignore the model or system prompt serve one model's answers to another.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?.!…]+$")


def normalise_question(text: str) -> str:
    """Case, Unicode form, whitespace and trailing ?.! do not change a question; everything else does.

    Deliberately conservative: "is X safe" and "is X not safe" must stay different keys, so no stop-word or
    punctuation stripping inside the text."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text).strip()
    return _TRAILING.sub("", text)


def fingerprint(parts: dict[str, Any]) -> str:
    """SHA-256 of canonical JSON: key order and formatting never change it."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def exact_key(context: str, question: str) -> str:
    """The exact-cache key of `question` under context fingerprint `context`."""
    return hashlib.sha256(f"{context}\n{normalise_question(question)}".encode()).hexdigest()
