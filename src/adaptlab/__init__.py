"""adaptlab: decide between prompting, RAG, fine-tuning and caching from measurements."""

import logging as _logging

from adaptlab import runtime as _runtime

_runtime.limit_threads_early()
# bitsandbytes (the QLoRA extra) warns at import, on every command that imports transformers, that the optional
# `kernels` package is missing; its own PyTorch CPU path works without it, and `kernels` would fetch from a hub.
_logging.getLogger("bitsandbytes").setLevel(_logging.ERROR)

__version__ = "0.1.0"
