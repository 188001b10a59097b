"""Unit tests of the retrieval techniques around the Retriever: query rewriting (HyDE, multi-query) fused with the
question, the generator-judged reranker, contextual chunks (headings and a cached generator context in the indexed
text) and a rag strategy's retrieval overrides. Real-model measurements: benchmarks/retrieval_quality.py."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from test_retrieve_unit import StubStore, hits, make_chunk

from adaptlab.config import AdaptlabConfig, ChunkConfig, RetrieveConfig
from adaptlab.models.base import ChatMessage
from adaptlab.project import Project
from adaptlab.rag.chunk import Chunker
from adaptlab.rag.context import ContextCache, GeneratorContextWriter
from adaptlab.rag.rerank import GeneratorReranker, parse_grade
from adaptlab.rag.retrieve import Retriever, fuse_ranked_lists
from adaptlab.rag.rewrite import GeneratorQueryRewriter
from adaptlab.rag.store import SearchFilter, StoreHit
from adaptlab.strategies.factory import build_strategy
from adaptlab.testing.fakes import FakeGenerator, HashEmbedder
from adaptlab.types import Document, Generation, ScoredChunk, Section, Usage


class ScriptedGenerator(FakeGenerator):
    """Replies by the first rule whose key appears in the last user message."""

    def __init__(self, rules: dict[str, str], default: str = "") -> None:
        super().__init__()
        self._rules = rules
        self._default = default

    def chat(self, messages: Sequence[ChatMessage], **options) -> Generation:  # type: ignore[override]
        super().chat(messages, **options)
        content = messages[-1]["content"]
        reply = next((r for key, r in self._rules.items() if key in content), self._default)
        return Generation(reply, Usage(10, 2), 1.0, self.name, "stop")


class PerQueryStore(StubStore):
    """Keyword hits depend on the query text: each query searched finds its own chunks."""

    def __init__(self, by_query: dict[str, list[StoreHit]]) -> None:
        super().__init__([], [])
        self.by_query = by_query

    def keyword_search(self, query: str, k: int, flt: SearchFilter | None = None, *,
                       with_vectors: bool = False) -> list[StoreHit]:
        self.keyword_calls.append((query, k, flt))
        return self.by_query.get(query, [])[:k]


@pytest.fixture()
def embedder() -> HashEmbedder:
    return HashEmbedder(dimension=16)


# --------------------------------------------------------------------------- fusion of several queries


def test_fusion_over_several_lists_adds_up_and_keeps_the_questions_own_ranks() -> None:
    question = hits(("a", 9.0), ("b", 8.0))
    rewrite = hits(("b", 7.0), ("c", 6.0))
    fused = fuse_ranked_lists([], [question, rewrite], dense_weight=0.7, keyword_weight=1.0, rrf_k=10)
    by_id = {s.chunk.chunk_id: s for s in fused}
    assert by_id["b"].score == pytest.approx(1 / 12 + 1 / 11)
    assert (by_id["b"].keyword_score, by_id["b"].keyword_rank) == (8.0, 2)  # the question's list came first
    assert [s.chunk.chunk_id for s in fused] == ["b", "a", "c"]


# --------------------------------------------------------------------------- query rewriting


def test_hyde_passage_is_searched_beside_the_question(embedder) -> None:
    passage = "Masks reduce droplet spread."
    generator = ScriptedGenerator({"do masks work": passage})
    store = PerQueryStore({"do masks work": hits(("a", 3.0)), passage: hits(("m", 5.0), ("a", 1.0))})
    rewriter = GeneratorQueryRewriter(generator, mode="hyde", queries=2, max_tokens=64)
    retriever = Retriever(store, embedder, RetrieveConfig(dense_weight=0.0, top_k=2), rewriter=rewriter)
    result = retriever.retrieve("do masks work")
    assert [q for q, _, _ in store.keyword_calls] == ["do masks work", passage]
    assert result.rewrites == (passage,)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (10, 2)  # the rewrite's generation
    assert [s.chunk.chunk_id for s in result.chunks] == ["a", "m"]  # a: found by both lists
    assert generator.call_options[0]["max_tokens"] == 64


def test_multi_query_rewrites_are_cleaned_deduplicated_and_capped() -> None:
    generator = ScriptedGenerator({"q?": "1. Q?\n- first way\n* second way\nthird way\n\nfirst way"})
    rewriter = GeneratorQueryRewriter(generator, mode="multi_query", queries=2, max_tokens=64)
    rewritten = rewriter.rewrite("q?")
    assert rewritten.queries == ("first way", "second way")  # the question itself is not a rewrite
    assert rewritten.usage.prompt_tokens == 10 and rewritten.usage.completion_tokens == 2
    assert "2 different ways" in generator.calls[0][0]["content"]


def test_refusal_signal_comes_from_the_question_not_the_rewrite(embedder) -> None:
    """A HyDE passage resembles chunks of any subject: best_dense_score must stay the question's own."""
    generator = ScriptedGenerator({}, default="solar panels on the roof")
    chunk_text = "solar panels on the roof"
    vector = embedder.embed([chunk_text])[0]

    class DenseStore(StubStore):
        def dense_search(self, query_vector, k, flt=None, *, with_vectors=True):
            return [StoreHit(make_chunk("s", chunk_text), float(vector @ query_vector), vector)]

    store = DenseStore([], [])
    rewriter = GeneratorQueryRewriter(generator, mode="hyde", queries=1, max_tokens=32)
    result = Retriever(store, embedder, RetrieveConfig(keyword_weight=0.0), rewriter=rewriter).retrieve(
        "football world cup winner")
    question_similarity = float(vector @ embedder.embed(["football world cup winner"])[0])
    assert result.best_dense_score == pytest.approx(question_similarity)
    assert result.best_dense_score < 0.5


# --------------------------------------------------------------------------- reranking


def test_reranker_orders_by_grade_and_keeps_fused_order_among_equals(embedder) -> None:
    candidates = [ScoredChunk(make_chunk(name, f"passage {name}"), score) for name, score in
                  [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6)]]
    generator = ScriptedGenerator({"passage a": '{"grade": 1}', "passage b": '{"grade": 3}',
                                   "passage c": "not json"})
    reranker = GeneratorReranker(generator, embedder, depth=3, passage_tokens=50)
    result = reranker.rerank("which?", candidates)
    reranked = result.chunks
    assert [s.chunk.chunk_id for s in reranked] == ["b", "a", "c", "d"]  # c: ungraded counts as 1; d: not judged
    assert [s.rerank_score for s in reranked] == [3.0, 1.0, None, None]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 6)  # 3 judge calls, priced
    assert len(generator.calls) == 3
    assert generator.call_options[0]["json_schema"]["properties"]["grade"]["enum"] == [0, 1, 2, 3]
    question_first = generator.calls[0][-1]["content"]
    assert question_first.startswith("Question: which?")  # the shared prefix comes first (llama.cpp reuses it)


def test_reranker_clips_long_passages(embedder) -> None:
    long_text = " ".join(f"word{i}" for i in range(500))
    generator = ScriptedGenerator({}, default='{"grade": 2}')
    GeneratorReranker(generator, embedder, depth=2, passage_tokens=20).rerank(
        "q", [ScoredChunk(make_chunk("x", long_text), 1.0)])
    shown = generator.calls[0][-1]["content"]
    assert "word5 " in shown and "word100" not in shown


@pytest.mark.parametrize(("reply", "grade"), [('{"grade": 2}', 2), ("3", 3), ('{"grade": 7}', None), ("", None),
                                              ('["x"]', None)])
def test_parse_grade(reply, grade) -> None:
    assert parse_grade(reply) == grade


# --------------------------------------------------------------------------- contextual chunks


def _document(text: str, sections: tuple[Section, ...] = ()) -> Document:
    return Document(doc_id="d1", path="/docs/guide.md", title="Guide", text=text, content_hash="h1",
                    sections=sections or (Section(text, 0),), tags=())


def test_heading_path_and_title_prefix_the_indexed_text_not_the_chunk(embedder) -> None:
    text = "Install the panels facing south."
    section = Section(text, 0, heading_path=("Guide", "Installation", "Roof"))
    chunk = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=8), embedder).chunk(_document(text, (section,)))[0]
    assert chunk.text == text
    assert chunk.index_text == "Guide › Installation › Roof: Install the panels facing south."  # title said once
    assert chunk.heading_path == ("Guide", "Installation", "Roof")
    plain = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=8, prefix_headings=False), embedder)
    assert plain.chunk(_document(text, (section,)))[0].index_text == f"Guide: {text}"


def test_generated_context_is_indexed_cached_and_reused(tmp_path, embedder) -> None:
    text = ("The rate rose to 12% in March, the highest of the year in every region we counted.\n\n"
            "It fell again in May, after the schools had closed and most offices had sent staff home.")
    generator = ScriptedGenerator({"March": "From a study of infection rates.", "May": "Later months of the study."})
    cache = ContextCache(tmp_path / "chunk-context.sqlite")
    writer = GeneratorContextWriter(generator, embedder, cache, document_tokens=3)
    chunker = Chunker(ChunkConfig(size_tokens=20, overlap_tokens=0), embedder, context_writer=writer)
    chunks = chunker.chunk(_document(text))
    assert len(chunks) == 2
    first = "The rate rose to 12% in March, the highest of the year in every region we counted."
    assert chunks[0].index_text == f"Guide: From a study of infection rates. {first}"
    assert chunks[0].text == first  # citations show the chunk's own words
    assert chunks[1].index_text.startswith("Guide: Later months of the study. It fell again in May")
    assert writer.generated == 2
    prompt = generator.calls[0][-1]["content"]
    assert prompt.startswith("Document: Guide\nThe rate rose\n") and prompt.endswith(first)

    # A new writer on the same cache file (a re-ingest, another process) generates nothing.
    again = GeneratorContextWriter(generator, embedder, ContextCache(tmp_path / "chunk-context.sqlite"),
                                   document_tokens=3)
    assert [c.index_text for c in Chunker(ChunkConfig(size_tokens=20, overlap_tokens=0), embedder,
                                          context_writer=again).chunk(_document(text))] == \
        [c.index_text for c in chunks]
    assert again.generated == 0 and len(generator.calls) == 2


def test_context_is_clipped_to_what_the_embedder_reads_beyond_the_chunk(tmp_path, embedder) -> None:
    generator = ScriptedGenerator({}, default=" ".join(["context"] * 200))
    writer = GeneratorContextWriter(generator, embedder, ContextCache(tmp_path / "c.sqlite"), document_tokens=0)
    config = ChunkConfig(size_tokens=embedder.max_tokens - 20, overlap_tokens=0)
    chunk = Chunker(config, embedder, context_writer=writer).chunk(_document("Short text."))[0]
    prefix = chunk.index_text.removesuffix("Short text.")
    assert len(embedder.token_offsets(prefix)) <= 18


# --------------------------------------------------------------------------- a rag strategy's overrides


def test_rag_strategies_override_retrieval_on_the_same_index(tmp_path, embedder) -> None:
    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path / "home"), "embedder": {"backend": "hash"},
        "strategies": {"rag_bm25": {"kind": "rag", "dense_weight": 0.0},
                       "rag_rerank": {"kind": "rag", "rerank": True, "rerank_depth": 4},
                       "rag_hyde": {"kind": "rag", "rewrite": "hyde"}},
    })
    project = Project(config, generator=FakeGenerator("ok"), embedder=embedder)
    described = {name: build_strategy(project, name).describe() for name in ("rag", "rag_bm25", "rag_rerank",
                                                                             "rag_hyde")}
    assert described["rag"]["dense_weight"] == 0.7 and described["rag"]["rerank"] == 0
    assert described["rag_bm25"]["dense_weight"] == 0.0
    assert described["rag_rerank"]["rerank"] == 4 and described["rag_rerank"]["rewrite"] == "none"
    assert described["rag_hyde"]["rewrite"] == "hyde"
    assert json.dumps(described)  # settings are plain values (they are recorded with every result)
    assert project.retriever_for(config.retrieve) is project.retriever


def test_a_strategys_chunk_context_is_its_own_index(tmp_path, embedder) -> None:
    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path / "home"), "embedder": {"backend": "hash"},
        "strategies": {"rag_context": {"kind": "rag", "chunk_context": "generator"},
                       "rag_same": {"kind": "rag", "chunk_context": "none"}},
    })
    project = Project(config, generator=FakeGenerator("ok"), embedder=embedder)
    main, contextual = project.index_settings()
    assert main == config.chunk and contextual.context == "generator"
    assert project.index_settings(["rag", "rag_same"]) == [config.chunk]  # only the strategies named
    assert project.config_for_index(main) is config
    assert project.config_for_index(contextual).store.collection == "chunks_context_generator"
    assert project.store_for(contextual) is not project.store
    assert project.store_for(main) is project.store
    assert build_strategy(project, "rag_context").describe()["chunk_context"] == "generator"
    assert build_strategy(project, "rag_same").describe()["chunk_context"] == "none"
    assert project.chunk_context_writer() is None
    assert project.chunk_context_writer(chunk=contextual) is not None



def test_the_eval_plan_counts_the_judges_and_the_rewriters_prompts(tmp_path, embedder) -> None:
    from adaptlab.eval.cases import EvalCase
    from adaptlab.eval.plan import estimate_run

    config = AdaptlabConfig.model_validate({
        "home": str(tmp_path / "home"), "embedder": {"backend": "hash"},
        "strategies": {"rag_rerank": {"kind": "rag", "rerank": True, "rerank_depth": 10},
                       "rag_hyde": {"kind": "rag", "rewrite": "hyde"}},
    })
    project = Project(config, generator=FakeGenerator("ok"), embedder=embedder)
    strategies = [build_strategy(project, name) for name in ("rag", "rag_rerank", "rag_hyde")]
    cases = [EvalCase(case_id="1", question="How long is the incubation period of the virus?")]
    estimate = {s.name: s.prompt_tokens for s in estimate_run("e", strategies, cases, repeats=1,
                                                              concurrency=1).strategies}
    assert estimate["rag_rerank"] >= estimate["rag"] + 10 * config.chunk.size_tokens
    assert estimate["rag"] < estimate["rag_hyde"] < estimate["rag_rerank"]
