"""Incremental indexing: reconcile the files on disk with what the store holds, by content hash.

The store is the only record of what is indexed (no side manifest that could disagree with it after a
crash). Each run:
  1. loads every file under the given paths and hashes each document's text;
  2. compares with the store's (doc_id, doc_hash, rows) list;
  3. writes new and changed documents — whole documents per commit, new version first, old version deleted
     after, so a reader never sees a document missing;
  4. deletes documents whose files are gone (only under the paths given, so ingesting one folder never
     removes another's documents); a file that fails to load keeps its previously indexed chunks.
A run killed at any point leaves committed documents intact; the next run finds partial or stale versions
by their row counts and hashes and repairs them: no duplicates, no orphans.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from adaptlab.config import AdaptlabConfig
from adaptlab.embed.base import Embedder
from adaptlab.errors import IngestError
from adaptlab.rag.chunk import Chunker
from adaptlab.rag.context import ChunkContextWriter
from adaptlab.rag.load import TableBudget, discover, load_file
from adaptlab.rag.store import DocVersion, VectorStore
from adaptlab.types import Chunk, Document, FileProblem, IngestReport

# stage name, items done, items total
ProgressCallback = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class _Plan:
    to_write: list[Document] = field(default_factory=list)
    stale_versions: list[tuple[str, str]] = field(default_factory=list)  # deleted after the new version lands
    removed_doc_ids: list[str] = field(default_factory=list)
    # Content hashes of document versions that are no longer current (changed or deleted documents): answers
    # cached from them are now stale.
    retired_hashes: list[str] = field(default_factory=list)


def _under_roots(path: str, roots: Sequence[Path]) -> bool:
    """Is a stored document's path inside one of the ingested roots? ("file.jsonl#7" belongs to file.jsonl.)"""
    file_part = path.split("#", 1)[0]
    for root in roots:
        root_str = str(root)
        if file_part == root_str or file_part.startswith(root_str.rstrip(os.sep) + os.sep):
            return True
    return False


def load_documents(
    paths: Sequence[str | Path], config: AdaptlabConfig, tags: Sequence[str] = (),
    progress: ProgressCallback = _no_progress, embedder: Embedder | None = None,
) -> tuple[list[Document], list[FileProblem], list[Path]]:
    """`embedder`: its tokenizer sizes tables' row groups to chunk.size_tokens exactly (without it, estimated)."""
    files, problems = discover(paths, config.ingest)
    documents: list[Document] = []
    tables = TableBudget(config.chunk.size_tokens)
    if embedder is not None:
        tables = TableBudget(config.chunk.size_tokens, lambda text: len(embedder.token_offsets(text)))
    for done, file in enumerate(files, start=1):
        docs, file_problems = load_file(file, config.ingest, extra_tags=tags, tables=tables)
        documents.extend(docs)
        problems.extend(file_problems)
        progress("load", done, len(files))
    return documents, problems, files


def with_index_version(documents: Sequence[Document], config: AdaptlabConfig) -> list[Document]:
    """Each document's version as indexed: its content hash folded with the [chunk] settings, which change what is
    stored (chunk boundaries, the indexed text, generated contexts). Re-ingesting after a [chunk] change then
    re-chunks every document instead of keeping chunks made under the old settings."""
    settings = config.chunk.model_dump_json()
    if config.chunk.context != "none":  # a context written by another model is another index
        generator = config.generators.get(config.chunk.context_generator, config.generator)
        settings += generator.model_dump_json()
    fingerprint = hashlib.sha256(settings.encode("utf-8")).hexdigest()
    return [replace(d, content_hash=hashlib.sha256(f"{d.content_hash}:{fingerprint}".encode()).hexdigest())
            for d in documents]


def plan_changes(
    documents: Sequence[Document], stored: Sequence[DocVersion], roots: Sequence[Path],
    failed_paths: set[str], report: IngestReport,
) -> _Plan:
    plan = _Plan()
    by_doc: dict[str, list[DocVersion]] = {}
    for version in stored:
        by_doc.setdefault(version.doc_id, []).append(version)
    current_ids = set()
    for document in documents:
        current_ids.add(document.doc_id)
        versions = by_doc.get(document.doc_id, [])
        complete = [v for v in versions if v.doc_hash == document.content_hash and v.rows == v.chunk_count]
        others = [(v.doc_id, v.doc_hash) for v in versions if v not in complete]
        plan.retired_hashes.extend(h for _, h in others if h != document.content_hash)
        if complete:
            plan.stale_versions.extend(others)  # leftovers of a run killed between write and delete
            (report.updated if others else report.unchanged).append(document.path)
        else:
            plan.to_write.append(document)
            plan.stale_versions.extend(others)  # includes a partial write of this very version
            (report.updated if versions else report.added).append(document.path)
    for doc_id, versions in by_doc.items():
        path = versions[0].path
        if doc_id in current_ids or not _under_roots(path, roots):
            continue
        if path.split("#", 1)[0] in failed_paths:
            continue  # the file is still there but failed to load this time: keep what was indexed
        plan.removed_doc_ids.append(doc_id)
        plan.retired_hashes.extend(v.doc_hash for v in versions)
        report.removed.append(path)
    return plan


def ingest(
    paths: Sequence[str | Path],
    config: AdaptlabConfig,
    *,
    store: VectorStore,
    embedder: Embedder,
    tags: Sequence[str] = (),
    progress: ProgressCallback = _no_progress,
    context_writer: ChunkContextWriter | None = None,
) -> IngestReport:
    """Bring the store in line with the files under `paths`. Bad files are reported in the result, never
    raised: the caller decides whether they make the run fail (the CLI's --strict).

    context_writer: writes each new chunk's context sentence (chunk.context = "generator"; see rag/context.py)."""
    started = time.perf_counter()
    report = IngestReport()
    roots = [Path(p).expanduser().resolve() for p in paths]
    documents, problems, files = load_documents(paths, config, tags, progress, embedder=embedder)
    report.problems = problems
    if not files and not documents:
        raise IngestError(
            "Nothing to ingest: " + ("; ".join(str(p) for p in problems) if problems else "no supported files")
            + f" — supported types: {', '.join(config.ingest.extensions)}."
        )
    documents = with_index_version(documents, config)
    failed_paths = {problem.path for problem in problems}
    plan = plan_changes(documents, store.list_versions(), roots, failed_paths, report)

    chunker = Chunker(config.chunk, embedder, context_writer=context_writer)
    total_docs = len(plan.to_write)
    pending: list[Chunk] = []

    def flush() -> None:
        if not pending:
            return
        vectors = embedder.embed([chunk.index_text for chunk in pending])
        store.add_chunks(pending, vectors)  # whole documents only: a crash never splits one
        report.chunks_written += len(pending)
        pending.clear()

    new_versions = {(d.doc_id, d.content_hash) for d in plan.to_write}
    # Delete partial rows of the versions about to be written *before* writing them (else they'd duplicate).
    partial = [v for v in plan.stale_versions if v in new_versions]
    report.chunks_deleted += store.delete_versions(partial)
    for done, document in enumerate(plan.to_write, start=1):
        pending.extend(chunker.chunk(document))
        if len(pending) >= config.ingest.commit_every_chunks:
            flush()
        progress("embed", done, total_docs)
    flush()

    report.chunks_deleted += store.delete_versions([v for v in plan.stale_versions if v not in new_versions])
    report.chunks_deleted += store.delete_documents(plan.removed_doc_ids)
    progress("optimize", 0, 1)
    store.finalize()
    progress("optimize", 1, 1)
    report.total_chunks = store.count()
    report.retired_doc_hashes = sorted(set(plan.retired_hashes))
    report.seconds = time.perf_counter() - started
    return report
