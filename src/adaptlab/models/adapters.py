"""Several LoRA adapters on one loaded base model (llama.cpp).

Fine-tuned strategies on the same base GGUF share one `llama_cpp.Llama` (the weights, the KV cache, the compute
buffers): each call takes the base's lock, sets its strategy's adapter on the shared context and answers. Adapters
are loaded on first use and at most `max_loaded` stay loaded per base; using one more frees the least recently
used, which is loaded again when asked for.

llama.cpp applies an adapter in the compute graph, so an answer is the one a base loaded with that adapter alone
gives — provided no KV cache computed under another adapter is reused: Llama keeps the last prompt's tokens and
reuses their KV for a shared prefix, so the context is reset whenever the active adapter changes.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptlab.errors import BackendError
from adaptlab.types import Generation, TextDelta

if TYPE_CHECKING:
    from llama_cpp import Llama

    from adaptlab.models.base import ChatMessage, Generator


@dataclass(frozen=True)
class BaseKey:
    """What makes two generators able to share one loaded base: the same GGUF and the same context."""

    model_path: str
    n_ctx: int
    seed: int


def lora_problem(path: Path, architecture: str | None = None) -> str | None:
    """Why `path` is not a GGUF LoRA adapter (for a base of `architecture`), or None. Reads the metadata only,
    so the caller can name the fault before llama.cpp, which only says that loading failed."""
    import gguf

    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            return f"{path} is not a GGUF file"
    try:
        fields = gguf.GGUFReader(str(path)).fields
    except (ValueError, OSError, IndexError) as exc:
        return f"{path} is not a readable GGUF file ({exc})"

    def text(key: str) -> str | None:
        field = fields.get(key)
        return str(field.contents()) if field is not None else None

    if text("general.type") != "adapter" or text("adapter.type") != "lora":
        return (f"{path} is a GGUF of type {text('general.type') or 'model'!r}, not a LoRA adapter "
                f"(general.type = 'adapter', adapter.type = 'lora')")
    adapter_architecture = text("general.architecture")
    if architecture and adapter_architecture and adapter_architecture != architecture:
        return f"{path} adapts a {adapter_architecture!r} model; the base is {architecture!r}"
    return None


class SharedBase:
    """One loaded base GGUF with a bounded pool of LoRA adapters, one of them (or none) active on its context.

    Every use holds the lock: one context answers one call at a time, and an adapter is never freed while a call
    runs with it."""

    def __init__(self, llama: Llama, *, name: str, max_loaded: int) -> None:
        if max_loaded < 1:
            raise ValueError("max_loaded must be at least 1")
        self.llama = llama
        self.name = name  # the base GGUF's file name, for messages
        self.max_loaded = max_loaded
        self.lock = threading.Lock()
        # adapter path -> (llama.cpp handle, the file's stamp when loaded), least recently used first
        self._loaded: OrderedDict[str, tuple[Any, tuple[int, int] | None]] = OrderedDict()
        self._active: str | None = None  # the adapter set on the context (None: the bare base)

    @contextmanager
    def using(self, adapter: Path | None) -> Iterator[Llama]:
        """The base with `adapter` active (None: no adapter), held for the duration of the block."""
        with self.lock:
            self._activate(str(adapter) if adapter is not None else None)
            yield self.llama

    def load(self, adapter: Path) -> None:
        """Load `adapter` now (it counts as the most recently used): a file llama.cpp cannot apply to this base
        fails here, with the reason, rather than at its first answer."""
        with self.lock:
            self._handle(str(adapter))

    def unload(self, adapter: Path) -> bool:
        """Free `adapter` if it is loaded (a later use loads it again); whether it was."""
        with self.lock:
            return self._free(str(adapter))

    def is_loaded(self, adapter: Path) -> bool:
        # Without the lock (one dict look-up is atomic): a status query must not wait for a running generation.
        return str(adapter) in self._loaded

    def loaded(self) -> list[str]:
        """The loaded adapters' paths, least recently used first."""
        with self.lock:
            return list(self._loaded)

    def close(self) -> None:
        """Free the adapters, then the base (llama.cpp frees a model's adapters with it: never the other way)."""
        with self.lock:
            for path in list(self._loaded):
                self._free(path)
            self.llama.close()

    # ---------------------------------------------------------------------------- with the lock held

    def _activate(self, adapter: str | None) -> None:
        handle = self._handle(adapter) if adapter is not None else None
        if adapter == self._active:
            return
        self._set(handle)
        self._active = adapter

    def _handle(self, adapter: str) -> Any:
        """The loaded adapter, loading it (and freeing the least recently used beyond max_loaded) if need be."""
        stamp = _stamp(adapter)
        if adapter in self._loaded:
            handle, loaded_stamp = self._loaded[adapter]
            if stamp is None or stamp == loaded_stamp:
                self._loaded.move_to_end(adapter)
                return handle
            self._free(adapter)  # retrained into the same path: answer with the new file, as a fresh load would
        import llama_cpp

        # Freed before the new one loads, so that no more than max_loaded are ever in memory.
        while len(self._loaded) >= self.max_loaded:
            self._free(next(iter(self._loaded)))
        handle = llama_cpp.llama_adapter_lora_init(self.llama.model, adapter.encode("utf-8"))
        if not handle:  # a NULL pointer: llama.cpp gave up (its log says why, but verbose=False hides it)
            reason = lora_problem(Path(adapter), self.llama.metadata.get("general.architecture")) \
                or "its tensors do not fit this base (an adapter trained on another model?)"
            raise BackendError(f"llama.cpp could not load {adapter} as a LoRA adapter of {self.name}: {reason} — "
                               f"export one from an adapter trained on this base (`adaptlab export`).")
        self._loaded[adapter] = (handle, stamp)
        return handle

    def _free(self, adapter: str) -> bool:
        import llama_cpp

        entry = self._loaded.pop(adapter, None)
        if entry is None:
            return False
        handle = entry[0]
        if adapter == self._active:  # the context must not point at a freed adapter
            self._set(None)
            self._active = None
        llama_cpp.llama_adapter_lora_free(handle)
        return True

    def _set(self, handle: Any) -> None:
        import llama_cpp

        ctx = self.llama.ctx
        if handle is None:
            failed = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
            failed = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        if failed:
            raise BackendError(f"llama.cpp could not set a LoRA adapter on {self.name} (error {failed}).")
        # The tokens evaluated so far were computed under the previous adapter: their KV must not be reused.
        self.llama.reset()


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        stat = Path(path).stat()
    except OSError:
        return None  # gone since: keep answering with what is loaded
    return stat.st_mtime_ns, stat.st_size


class AdaptedGenerator:
    """A generator answering with one adapter on a shared base. `inner` answers on the shared Llama with the
    generator settings (sampling, max_tokens) of its section; this holds the base with the adapter set around
    each call, for a stream until it ends or is closed."""

    max_parallel: int | None = 1  # the shared context answers one call at a time

    def __init__(self, base: SharedBase, adapter: Path, inner: Generator) -> None:
        self._base = base
        self._inner = inner
        self.adapter = adapter
        self.name = f"{inner.name}+{adapter.name}"

    # The options are the Generator protocol's keywords, passed on unchanged.
    def chat(self, messages: Sequence[ChatMessage], **options: Any) -> Generation:
        with self._base.using(self.adapter):
            generation = self._inner.chat(messages, **options)
        return replace(generation, model=self.name)

    def stream_chat(self, messages: Sequence[ChatMessage], **options: Any) -> Iterator[TextDelta | Generation]:
        with self._base.using(self.adapter):
            items = self._inner.stream_chat(messages, **options)
            try:
                for item in items:
                    yield replace(item, model=self.name) if isinstance(item, Generation) else item
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # stops llama.cpp's generation before the lock is released

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)
