"""The default embedder: all-MiniLM-L6-v2 (384-d) through sentence-transformers, on the CPU, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from adaptlab.embed.base import normalise_rows
from adaptlab.models.registry import resolve_embedder_dir


class SentenceTransformerEmbedder:
    def __init__(self, model_path: str = "", *, batch_size: int = 32, threads: int = 1) -> None:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        # The weight-loading progress bar and info logs are noise in a CLI that has its own progress.
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()

        torch.set_num_threads(threads)
        directory = resolve_embedder_dir(model_path)
        self._model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self._batch_size = batch_size
        stem = "all-MiniLM-L6-v2" if not model_path else Path(directory).name
        self.name = f"sentence-transformers:{stem}"
        self.dimension = int(self._model.get_embedding_dimension())
        # max_seq_length counts [CLS] and [SEP]; the text itself gets two fewer.
        self.max_tokens = int(self._model.max_seq_length) - 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self._batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise_rows(vectors)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [(int(start), int(end)) for start, end in encoded["offset_mapping"]]
