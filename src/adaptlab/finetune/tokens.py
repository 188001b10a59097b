"""Count an example's tokens the way training sees it: after the base model's chat template.

The tokenizer comes from the base model itself — for a GGUF file, transformers rebuilds the Hugging Face
tokenizer from the GGUF metadata (needs the `gguf` package; several seconds, since it parses the whole
vocabulary). It is then saved under the cache dir and reloaded from there (a fraction of a second) next time.
The cache key is the GGUF file's name and size: cheap to compute, unlike hashing ~100 MB on every check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptlab.errors import ModelNotFoundError
from adaptlab.finetune.data import TrainingExample
from adaptlab.models.registry import resolve_gguf


def tokenizer_cache_key(gguf: Path) -> str:
    return hashlib.sha256(f"{gguf.stat().st_size}:{gguf.name}".encode()).hexdigest()[:12]


class ChatTokenCounter:
    """Callable(TrainingExample) -> tokens after the chat template; the tokenizer loads on first use.

    `base`: "" (the bundled GGUF), a .gguf file, or a Hugging Face model directory. `cache_dir`: where a
    tokenizer rebuilt from a GGUF is kept (None: rebuilt in every process).
    """

    def __init__(self, base: str | Path = "", *, cache_dir: str | Path | None = None) -> None:
        self.base = str(base)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.load_seconds: float | None = None
        self.loaded_from: str | None = None  # "gguf", "cache" or "directory": for reports and timing
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            started = time.perf_counter()
            tokenizer, self.loaded_from = self._load()
            self.load_seconds = time.perf_counter() - started
            if not getattr(tokenizer, "chat_template", None):
                raise ModelNotFoundError(
                    f"The tokenizer of {self.base or 'the bundled model'} has no chat template — use an instruct/chat "
                    "base model, or pass --no-tokens to skip token counts."
                )
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> tuple[Any, str]:
        from transformers import AutoTokenizer

        path = Path(self.base).expanduser() if self.base else None
        if path is not None and path.is_dir():
            return AutoTokenizer.from_pretrained(str(path)), "directory"
        gguf = resolve_gguf(self.base)
        cached = self.cache_dir / f"tokenizer-{tokenizer_cache_key(gguf)}" if self.cache_dir else None
        if cached is not None and (cached / "tokenizer_config.json").is_file():
            try:
                return AutoTokenizer.from_pretrained(str(cached)), "cache"
            except (OSError, ValueError):
                shutil.rmtree(cached, ignore_errors=True)  # a damaged cache: rebuild it below
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        if cached is not None:
            _save_atomic(tokenizer, cached)
        return tokenizer, "gguf"

    def count_messages(self, messages: Sequence[Mapping[str, str]]) -> int:
        ids = self.tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=True)
        if isinstance(ids, Mapping) or hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)

    def count(self, example: TrainingExample) -> int:
        """Chat: the conversation; completion: [user prompt, assistant completion]; preference: the prompt with
        the longer (in tokens) of chosen and rejected."""
        if example.kind == "preference":
            return max(self.count_messages(example.conversation(reply)) for reply in
                       (example.chosen or "", example.rejected or ""))
        return self.count_messages(example.conversation())

    __call__ = count


def _save_atomic(tokenizer: Any, target: Path) -> None:
    """Save into a temp folder, then rename: a crash or a concurrent run never leaves a half cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        tokenizer.save_pretrained(str(temp))
        os.replace(temp, target)
    except OSError:
        pass  # another process won the race, or the cache is not writable: counting works without it
    finally:
        shutil.rmtree(temp, ignore_errors=True)
