"""adaptlab: decide between prompting, RAG, fine-tuning and caching from measurements."""

from adaptlab import runtime as _runtime

_runtime.limit_threads_early()

__version__ = "0.1.0"
