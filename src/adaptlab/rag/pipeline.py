"""Assemble retrieval and answering from a project's configured components."""

from __future__ import annotations

from adaptlab.project import Project
from adaptlab.rag.answer import RagAnswerer
from adaptlab.rag.retrieve import Retriever


def build_retriever(project: Project) -> Retriever:
    return Retriever(project.store, project.embedder, project.config.retrieve)


def build_answerer(project: Project) -> RagAnswerer:
    generator = project.generator
    return RagAnswerer(
        build_retriever(project), generator, project.config.answer,
        max_tokens=project.config.generator.max_tokens,
        n_ctx=getattr(generator, "n_ctx", project.config.generator.n_ctx),
        log=project.logger,
    )
