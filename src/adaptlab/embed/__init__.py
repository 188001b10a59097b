"""Embedding backends: packaged all-MiniLM-L6-v2 (default) and any OpenAI-compatible server."""
