"""The 'hash' embedder (embedder.backend = "hash"): fast, deterministic, offline, and meaningless.

Not a model: each word hashes to a fixed random direction and a text is the sum of its words, so texts sharing
words are close. It exists for pipelines' own tests (ours and users'): never measure quality with it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from adaptlab.embed.base import normalise_rows

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag-of-words random projection: each word hashes to a fixed random vector; a text is their sum."""

    def __init__(self, dimension: int = 64, max_tokens: int = 256) -> None:
        self.name = f"hash-{dimension}"
        self.dimension = dimension
        self.max_tokens = max_tokens

    def _word_vector(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                matrix[row] += self._word_vector(word)
        return normalise_rows(matrix)

    def count_tokens(self, text: str) -> int:
        return len(self.token_offsets(text))

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
