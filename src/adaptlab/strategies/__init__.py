"""Strategies: one protocol (answer(query) -> Answer) behind prompt, RAG and later fine-tuned/cached variants."""
