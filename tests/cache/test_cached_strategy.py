"""The cached strategy over a real RAG pipeline (MiniLM + LanceDB): hits, misses, and no stale answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_project

from adaptlab.cache.factory import invalidate_after_ingest
from adaptlab.errors import ConfigError
from adaptlab.rag.index import ingest
from adaptlab.strategies.factory import build_strategy
from adaptlab.testing.fakes import FakeGenerator
from adaptlab.types import Generation, Usage


class EchoSourceGenerator(FakeGenerator):
    """Answers with the last line of source [1]: an answer that changes when the document does."""

    def chat(self, messages, **kwargs) -> Generation:
        super().chat(messages, **kwargs)
        blocks = messages[-1]["content"].split("\n\n")
        first_source = next((b for b in blocks if b.startswith("[1]")), "[1]\nnothing")
        text = first_source.strip().split("\n")[-1] + " [1]"
        return Generation(text, Usage(300, 12), 1.0, self.name, "stop")


def project_with_docs(tmp_path: Path, minilm, **cache_section):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "clinic.txt").write_text("Clinic hours\nThe clinic opens at 9 am on weekdays.\n", encoding="utf-8")
    (docs / "parking.txt").write_text("Parking\nVisitors park free of charge in lot B.\n", encoding="utf-8")
    project = make_project(
        tmp_path / "home", embedder=minilm, cache=cache_section,
        strategies={"cached": {"kind": "cached", "wraps": "rag", "threshold": 0.8}},
        answer={"min_relevance": 0.0, "context_chunks": 1},  # one source per answer: clear lineage
        generator=(generator := EchoSourceGenerator()),
    )
    ingest([docs], project.config, store=project.store, embedder=project.embedder)
    return project, docs, generator


def test_hits_skip_the_model_and_say_so(tmp_path: Path, minilm) -> None:
    project, _, generator = project_with_docs(tmp_path, minilm)
    strategy = build_strategy(project, "cached")
    first = strategy.answer("When does the clinic open?")
    assert first.cache_status == "miss" and "9 am" in first.text and first.usage.prompt_tokens == 300
    again = strategy.answer("when does the clinic open")
    paraphrase = strategy.answer("At what time does the clinic open?")
    assert again.cache_status == paraphrase.cache_status == "hit"
    assert again.text == paraphrase.text == first.text and again.usage.total_tokens == 0
    assert again.citations == first.citations and again.retrieved == first.retrieved  # scored like a miss
    assert len(generator.calls) == 1
    events = project.logger.rows("cache")
    assert [e["detail"]["status"] for e in events] == ["miss", "exact", "semantic"]
    assert events[1]["prompt_tokens"] == 300 and events[1]["completion_tokens"] == 12  # tokens saved


def test_a_changed_document_is_never_served_stale(tmp_path: Path, minilm) -> None:
    """Ask, change the source document, re-ingest, ask again: the fresh answer, not the cached one."""
    project, docs, _generator = project_with_docs(tmp_path, minilm)
    strategy = build_strategy(project, "cached")
    parking = strategy.answer("Where do visitors park?")
    assert "9 am" in strategy.answer("When does the clinic open?").text
    (docs / "clinic.txt").write_text("Clinic hours\nThe clinic opens at 10 am on weekdays.\n", encoding="utf-8")
    report = ingest([docs], project.config, store=project.store, embedder=project.embedder)
    assert invalidate_after_ingest(project, report) is None
    assert report.cache_entries_invalidated == 1  # exactly the clinic answer; parking's stays
    fresh = strategy.answer("When does the clinic open?")
    assert fresh.cache_status == "miss" and "10 am" in fresh.text
    assert strategy.answer("Where do visitors park?").cache_status == "hit"
    assert strategy.answer("Where do visitors park?").text == parking.text
    # Deleting the document invalidates too.
    (docs / "parking.txt").unlink()
    report = ingest([docs], project.config, store=project.store, embedder=project.embedder)
    invalidate_after_ingest(project, report)
    assert report.cache_entries_invalidated == 1
    assert strategy.answer("Where do visitors park?").cache_status == "miss"


def test_cache_clear_by_source_and_all(tmp_path: Path, minilm) -> None:
    project, docs, _ = project_with_docs(tmp_path, minilm)
    strategy = build_strategy(project, "cached")
    strategy.answer("When does the clinic open?")
    strategy.answer("Where do visitors park?")
    assert project.cache.clear(source=str((docs / "clinic.txt").resolve())) == 1
    assert strategy.answer("Where do visitors park?").cache_status == "hit"
    assert strategy.answer("When does the clinic open?").cache_status == "miss"
    assert project.cache.clear() == 2


def test_another_system_prompt_is_another_cache(tmp_path: Path, minilm) -> None:
    project, _, _ = project_with_docs(tmp_path, minilm)
    build_strategy(project, "cached").answer("When does the clinic open?")
    changed = make_project(
        project.home, embedder=minilm,
        answer={"min_relevance": 0.0, "context_chunks": 1, "system_prompt": "Answer in French."},
        strategies={"cached": {"kind": "cached", "wraps": "rag"}}, generator=EchoSourceGenerator(),
    )
    assert build_strategy(changed, "cached").answer("When does the clinic open?").cache_status == "miss"


def test_wrapping_a_missing_or_cached_strategy_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path, strategies={"a": {"kind": "cached", "wraps": "nope"},
                                                 "b": {"kind": "cached", "wraps": "a"}})
    with pytest.raises(ConfigError, match="does not exist"):
        build_strategy(project, "a")
    with pytest.raises(ConfigError, match="itself a cached strategy"):
        build_strategy(project, "b")


def test_the_harness_measures_hit_rate_and_quality_on_hits_vs_misses(tmp_path: Path, minilm) -> None:
    import json

    from adaptlab.eval.session import EvalRequest, evaluate

    project, _docs, _generator = project_with_docs(tmp_path, minilm)
    project.config.tracking.enabled = False
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in [
        {"question": "When does the clinic open?", "answers": ["9 am"], "gold_sources": ["clinic.txt"]},
        {"question": "Where do visitors park?", "answers": ["lot B"], "gold_sources": ["parking.txt"]},
    ]) + "\n", encoding="utf-8")
    report = evaluate(project, EvalRequest(["rag", "cached"], cases, repeats=2, out_dir=tmp_path / "out"))
    rag_run, cached_run = report.runs
    assert "cache_hit_rate" not in rag_run.metrics
    assert cached_run.metrics["cache_hit_rate"].value == 0.5  # repeat 1 misses, repeat 2 hits
    split = cached_run.cache_split()
    assert split["token_f1"]["hit_n"] == split["token_f1"]["miss_n"] == 2
    assert split["token_f1"]["hit"] == split["token_f1"]["miss"]  # a hit answers exactly as the miss did
    assert split["prompt_tokens"]["hit"] == 0 and split["prompt_tokens"]["miss"] == 300
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["strategies"][1]["cache_split"]["token_f1"]["hit_n"] == 2
    assert data["strategies"][1]["params"]["wraps"] == "rag"
