"""Generation backends: llama.cpp (local GGUF, default) and any OpenAI-compatible server."""
