"""The embedder protocol. Vectors come back L2-normalised, so dot product = cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str  # recorded in the collection; a different name or dimension is refused at query time
    dimension: int
    max_tokens: int  # longest input the model reads; longer input is truncated by the model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows L2-normalised."""

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this embedder's tokenizer (the chunker sizes chunks with it)."""

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (no special tokens), for token-aware splitting."""


def clip_to_tokens(embedder: Embedder, text: str, tokens: int) -> str:
    """`text` cut after its first `tokens` tokens in this embedder's tokenizer (all of it when shorter; "" for 0)."""
    if tokens <= 0:
        return ""
    offsets = embedder.token_offsets(text)
    return text if len(offsets) <= tokens else text[: offsets[tokens - 1][1]]


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms
