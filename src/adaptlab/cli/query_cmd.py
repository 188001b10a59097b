"""`adaptlab retrieve` (retrieval only) and `adaptlab ask` (answer with citations)."""

from __future__ import annotations

import json

import typer

from adaptlab.errors import ConfigError, IngestError
from adaptlab.project import Project
from adaptlab.rag.store import SearchFilter

FILTER_HELP = "Metadata filter, repeatable: 'path=GLOB' (e.g. 'path=*/reports/*') or 'tag=NAME'."


def parse_filters(filters: list[str]) -> SearchFilter | None:
    path_glob: str | None = None
    tags: list[str] = []
    for item in filters:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not value or key not in {"path", "tag"}:
            raise ConfigError(f"--filter {item!r}: expected 'path=GLOB' or 'tag=NAME'.")
        if key == "path":
            path_glob = value
        else:
            tags.append(value)
    flt = SearchFilter(path_glob=path_glob, tags=tuple(tags))
    return None if flt.is_empty() else flt


def _location(chunk) -> str:
    where = f"{chunk.location}, " if chunk.location else ""  # page / slide / sheet!cells / table
    return f"{where}chars {chunk.char_start}-{chunk.char_end}"


def location_fields(located) -> dict:
    """A chunk's or citation's location for --json output (null / [] where the format has none)."""
    return {"page": located.page, "slide": located.slide, "sheet": located.sheet, "cells": located.cells,
            "table": located.table, "heading_path": list(located.heading_path), "location": located.location}


def register(app: typer.Typer) -> None:
    @app.command("retrieve")
    def retrieve(
        ctx: typer.Context,
        question: str = typer.Argument(..., help="The query."),
        top_k: int | None = typer.Option(None, "--top-k", "-k", help="Chunks returned (default retrieve.top_k)."),
        filters: list[str] = typer.Option([], "--filter", "-f", help=FILTER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        strategy_name: str = typer.Option(
            "", "--strategy", "-s", help="Retrieve with this rag strategy's overrides of [retrieve] (rewrite, "
            "rerank, weights) instead of [retrieve] itself."),
    ) -> None:
        """Run retrieval only and print the ranked chunks with path, location and scores."""
        from adaptlab.cli.common import load_project
        from adaptlab.cli.main import console
        from adaptlab.config import RagStrategyConfig

        flt = parse_filters(filters)  # before loading models: a bad --filter fails fast
        project = load_project(ctx)
        settings, chunking = project.config.retrieve, project.config.chunk
        if strategy_name:
            section = project.config.strategies.get(strategy_name)
            if not isinstance(section, RagStrategyConfig):
                rag = ", ".join(n for n, s in project.config.strategies.items() if isinstance(s, RagStrategyConfig))
                raise ConfigError(f"--strategy {strategy_name!r} is not a retrieving strategy — known: {rag}.")
            settings, chunking = section.retrieve_settings(settings), section.chunk_settings(chunking)
        if project.store_for(chunking).count() == 0:
            check_index(project)  # the main index empty: "run ingest" (else: this strategy's own index is)
            raise IngestError(f"The index of {strategy_name!r} (chunk_context = {chunking.context!r}) in "
                              f"{project.home} is empty — run `adaptlab ingest PATH...` again: it builds every "
                              f"strategy's index.")
        result = project.retriever_for(settings, chunking).retrieve(question, top_k=top_k, flt=flt)
        if as_json:
            print(json.dumps({
                "query": question, "latency_ms": round(result.latency_ms, 2),
                "best_dense_score": result.best_dense_score, "rewrites": list(result.rewrites),
                "chunks": [{
                    "rank": rank, "score": round(s.score, 6), "dense_score": s.dense_score,
                    "keyword_score": s.keyword_score, "rerank_score": s.rerank_score,
                    "path": s.chunk.path, "title": s.chunk.title,
                    **location_fields(s.chunk), "char_start": s.chunk.char_start, "char_end": s.chunk.char_end,
                    "doc_id": s.chunk.doc_id, "chunk_id": s.chunk.chunk_id, "text": s.chunk.text,
                } for rank, s in enumerate(result.chunks, start=1)],
            }, indent=2))
            return
        for rank, scored in enumerate(result.chunks, start=1):
            chunk = scored.chunk
            dense = f"{scored.dense_score:.3f}" if scored.dense_score is not None else "-"
            bm25 = f"{scored.keyword_score:.2f}" if scored.keyword_score is not None else "-"
            judged = f" grade {scored.rerank_score:.0f}" if scored.rerank_score is not None else ""
            console.print(f"[bold]{rank}.[/] {chunk.path} ({_location(chunk)})  fused {scored.score:.4f} "
                          f"cosine {dense} bm25 {bm25}{judged}", highlight=False)
            console.print(f"   [dim]{' '.join(chunk.text.split())[:240]}[/]", highlight=False)
        for rewrite in result.rewrites:
            console.print(f"[dim]also searched: {' '.join(rewrite.split())[:240]}[/]", highlight=False)
        console.print(f"[dim]{result.latency_ms:.1f} ms[/]")

    @app.command("ask")
    def ask(
        ctx: typer.Context,
        question: str = typer.Argument(..., help="The question."),
        strategy_name: str = typer.Option(
            "rag", "--strategy", "-s",
            help="The [strategies.NAME] that answers: the same object eval, bench and serve use (rag, prompt, a "
                 "cached or fine-tuned one...)."),
        top_k: int | None = typer.Option(
            None, "--top-k", "-k", help="Chunks retrieved (default: the strategy's top_k, else retrieve.top_k)."),
        filters: list[str] = typer.Option([], "--filter", "-f", help=FILTER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the Answer as JSON."),
    ) -> None:
        """Answer a question with a strategy (default: rag, from the indexed documents, citing its sources)."""
        from adaptlab.cli.common import load_project
        from adaptlab.cli.main import console
        from adaptlab.strategies.base import AskOptions
        from adaptlab.strategies.factory import build_strategy

        flt = parse_filters(filters)  # before loading models: a bad --filter fails fast
        project = load_project(ctx)
        strategy = build_strategy(project, strategy_name)
        options = AskOptions(top_k=top_k, flt=flt)
        if not options.is_default and not strategy.retrieves:
            raise ConfigError(f"--top-k and --filter choose what a strategy retrieves; {strategy_name!r} "
                              f"({strategy.kind}) retrieves nothing — drop them or ask a retrieving strategy.")
        if strategy.retrieves:
            check_index(project)
        answer = strategy.answer(question, options=options)
        if as_json:
            data = answer.to_dict()
            for shown, citation in zip(data["citations"], answer.citations):
                shown["location"] = citation.location  # the readable label beside the fields
            data["sources"] = [{"number": n, "path": s.chunk.path, "title": s.chunk.title, **location_fields(s.chunk),
                                "char_start": s.chunk.char_start, "char_end": s.chunk.char_end,
                                "score": round(s.score, 6)} for n, s in enumerate(answer.retrieved, start=1)]
            print(json.dumps(data, indent=2, ensure_ascii=False))
            return
        console.print(answer.text, highlight=False)
        if answer.citations:
            console.print("\n[bold]Sources[/]")
            for citation in answer.citations:
                where = f", {citation.location}" if citation.location else ""
                console.print(f"  [{citation.number}] {citation.title} — {citation.path}{where} "
                              f"(chars {citation.char_start}-{citation.char_end}, {citation.cited_by})",
                              highlight=False, soft_wrap=True)
                console.print(f"      [dim]“{citation.snippet}”[/]", highlight=False)
        elif answer.retrieved and not answer.refused:
            console.print("\n[bold]Context given to the model[/] [dim](the answer cites none of it)[/]")
            for number, scored in enumerate(answer.retrieved, start=1):
                console.print(f"  [{number}] {scored.chunk.title} — {scored.chunk.path}", highlight=False)
        usage = answer.usage
        cache = {"hit": ", cache hit", "miss": ", cache miss (stored)"}.get(answer.cache_status, "")
        console.print(f"[dim]{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
                      f"{answer.latency_ms:.0f} ms, {answer.model}, strategy {strategy.name}{cache}[/]",
                      highlight=False)


def check_index(project: Project) -> Project:
    from adaptlab.errors import IngestError

    if project.store.count() == 0:
        raise IngestError(f"The index in {project.home} is empty — run `adaptlab ingest PATH...` first.")
    return project
