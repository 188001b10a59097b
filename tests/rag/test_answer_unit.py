"""Unit tests for adaptlab.rag.answer: citations (markers and overlap), prompts, refusal and context trimming."""

from __future__ import annotations

from pathlib import Path

from adaptlab.config import AnswerConfig
from adaptlab.logs import CallLog
from adaptlab.rag.answer import RagAnswerer, best_snippet, build_messages, find_citations, source_label
from adaptlab.rag.retrieve import RetrievalResult
from adaptlab.rag.store import SearchFilter
from adaptlab.testing.fakes import FakeGenerator
from adaptlab.types import Chunk, ScoredChunk, Usage

SOLAR = ("Solar panels convert sunlight into electricity. The panels on the town hall roof produce "
         "forty kilowatts at noon. Maintenance costs are low.")
BREAD = "Sourdough bread needs a starter culture. The dough rises overnight in a cool kitchen."
TRAINS = "The night train leaves the central station at ten. Tickets are sold online and at the counter."


def scored(name: str, text: str, score: float, *, page: int | None = None, dense: float | None = 0.5) -> ScoredChunk:
    chunk = Chunk(chunk_id=f"id-{name}", doc_id=f"doc-{name}", doc_hash="h", chunk_index=0, chunk_count=1,
                  path=f"/docs/{name}.pdf", title=name.title(), text=text, index_text=text, char_start=100,
                  char_end=100 + len(text), page=page)
    return ScoredChunk(chunk, score, dense_score=dense)


SOURCES = [scored("solar", SOLAR, 0.0512345678, page=3), scored("bread", BREAD, 0.04), scored("trains", TRAINS, 0.03)]


# --------------------------------------------------------------------------- find_citations


def test_markers_are_parsed_in_order_deduped_and_range_checked() -> None:
    answer = "Forty kilowatts [2]. Low costs [1][2]. Not [7], nor [0], nor [12]."
    citations = find_citations(answer, SOURCES)
    assert [c.number for c in citations] == [2, 1]
    assert all(c.cited_by == "marker" for c in citations)
    bread, solar = citations
    assert bread.doc_id == "doc-bread" and bread.path == "/docs/bread.pdf" and bread.title == "Bread"
    assert (solar.page, solar.char_start, solar.char_end) == (3, 100, 100 + len(SOLAR))
    assert solar.score == round(0.0512345678, 6)


def test_snippet_is_the_sentence_sharing_most_words() -> None:
    [citation] = find_citations("The roof panels produce forty kilowatts [1].", SOURCES)
    assert citation.snippet == "The panels on the town hall roof produce forty kilowatts at noon."


def test_overlap_attribution_without_markers() -> None:
    citations = find_citations("The dough rises overnight in a cool kitchen", SOURCES)
    assert len(citations) == 1
    assert citations[0].number == 2
    assert citations[0].cited_by == "overlap"
    assert citations[0].snippet == "The dough rises overnight in a cool kitchen."


def test_out_of_range_markers_fall_back_to_overlap() -> None:
    citations = find_citations("Tickets are sold online [9].", SOURCES)
    assert [(c.number, c.cited_by) for c in citations] == [(3, "overlap")]


def test_no_citation_when_answer_shares_few_words() -> None:
    # 1 of 4 content words (electricity) is in a source: below the 0.6 share.
    assert find_citations("Wind farms make electricity cheaply.", SOURCES) == []
    assert find_citations("I do not know.", SOURCES) == []  # stop words only
    assert find_citations("", SOURCES) == []


def test_overlap_tie_goes_to_the_better_ranked_source() -> None:
    same = [scored("first", "Alpha beta gamma.", 0.2), scored("second", "Alpha beta gamma.", 0.1)]
    [citation] = find_citations("alpha beta gamma", same)
    assert citation.number == 1


def test_no_sources_means_no_citations() -> None:
    assert find_citations("Solar panels [1] convert sunlight", []) == []


def test_best_snippet_splits_lines_and_truncates() -> None:
    text = "Heading line\nThe answer sits on this line\nAnother line"
    assert best_snippet(text, "answer line") == "The answer sits on this line"
    assert best_snippet(text, "zebra") == "Heading line The answer sits on this line Another line"  # nothing shared
    long_text = "word " * 200
    snippet = best_snippet(long_text, "word")
    assert len(snippet) == 300 and snippet.endswith("…")


# --------------------------------------------------------------------------- prompt building


def test_build_messages_numbers_sources_with_pages() -> None:
    messages = build_messages("How much power?", SOURCES, "SYSTEM PROMPT")
    assert messages[0] == {"role": "system", "content": "SYSTEM PROMPT"}
    assert messages[1]["role"] == "user"
    user = messages[1]["content"]
    assert user.startswith("Sources:\n\n[1] Solar, page 3\n" + SOLAR)
    assert f"\n\n[2] Bread\n{BREAD}" in user
    assert f"\n\n[3] Trains\n{TRAINS}" in user
    assert user.index("[1] Solar") < user.index("[2] Bread") < user.index("[3] Trains")
    assert user.endswith("\n\nQuestion: How much power?")
    assert source_label(2, SOURCES[1]) == "[2] Bread"


# --------------------------------------------------------------------------- RagAnswerer


class StubRetriever:
    def __init__(self, chunks: list[ScoredChunk], best_dense: float | None) -> None:
        self.chunks = chunks
        self.best_dense = best_dense
        self.calls: list[tuple[str, int | None, SearchFilter | None]] = []

    def retrieve(self, query: str, *, top_k: int | None = None, flt: SearchFilter | None = None) -> RetrievalResult:
        self.calls.append((query, top_k, flt))
        return RetrievalResult(query, tuple(self.chunks), self.best_dense, 1.5)


def make_answerer(retriever, generator, *, n_ctx: int = 4096, max_tokens: int = 64, log=None, **answer_cfg):
    return RagAnswerer(retriever, generator, AnswerConfig(**answer_cfg), max_tokens=max_tokens, n_ctx=n_ctx, log=log)


def test_refuses_below_min_relevance_without_calling_the_model(tmp_path: Path) -> None:
    generator = FakeGenerator(reply="should not be used")
    log = CallLog(tmp_path / "logs.db")
    answerer = make_answerer(StubRetriever(SOURCES, best_dense=0.10), generator, min_relevance=0.25,
                             refusal_text="Not covered.", log=log)
    answer = answerer.answer("What is the capital of Peru?")
    assert answer.refused is True
    assert answer.text == "Not covered."
    assert generator.calls == []
    assert answer.citations == ()
    assert answer.usage.total_tokens == 0
    assert answer.retrieved == tuple(SOURCES)
    assert answer.latency_ms >= 0
    assert [r["kind"] for r in log.rows()] == ["retrieval", "answer"]
    assert log.rows("answer")[0]["detail"]["refused"] is True
    log.close()


def test_refuses_when_nothing_is_retrieved() -> None:
    generator = FakeGenerator(reply="x")
    answer = make_answerer(StubRetriever([], best_dense=None), generator).answer("anything")
    assert answer.refused and generator.calls == []


def test_answers_at_or_above_min_relevance_and_fills_usage(tmp_path: Path) -> None:
    generator = FakeGenerator(reply="The roof panels produce forty kilowatts [1].")
    retriever = StubRetriever(SOURCES, best_dense=0.25)
    log = CallLog(tmp_path / "logs.db")
    flt = SearchFilter(tags=("energy",))
    answerer = make_answerer(retriever, generator, min_relevance=0.25, context_chunks=2, log=log)
    answer = answerer.answer("How much power do the panels make?", top_k=4, flt=flt)

    assert answer.refused is False
    assert retriever.calls == [("How much power do the panels make?", 4, flt)]
    assert len(generator.calls) == 1
    sent = generator.calls[0]
    assert sent == build_messages("How much power do the panels make?", SOURCES[:2], AnswerConfig().system_prompt)
    assert "[3]" not in sent[1]["content"]  # only context_chunks sources go into the prompt
    assert answer.text == "The roof panels produce forty kilowatts [1]."
    assert [(c.number, c.cited_by) for c in answer.citations] == [(1, "marker")]
    assert answer.retrieved == tuple(SOURCES[:2])
    assert answer.usage.prompt_tokens == sum(len(m["content"].split()) for m in sent)
    assert answer.usage.completion_tokens == 7
    assert answer.latency_ms > 0
    assert answer.model == "fake-generator"
    kinds = [r["kind"] for r in log.rows()]
    assert kinds == ["retrieval", "llm", "answer"]
    llm = log.rows("llm")[0]
    assert (llm["prompt_tokens"], llm["completion_tokens"]) == (answer.usage.prompt_tokens, 7)
    log.close()


def test_unknown_relevance_does_not_refuse() -> None:
    generator = FakeGenerator(reply="ok")
    answer = make_answerer(StubRetriever(SOURCES, best_dense=None), generator).answer("q")
    assert not answer.refused and len(generator.calls) == 1


def _tokens(messages) -> int:
    return sum(len(m["content"].split()) + 4 for m in messages)  # FakeGenerator counts words


def test_context_is_trimmed_to_fit_the_window() -> None:
    long_sources = [scored(f"s{i}", " ".join(f"w{i}x{j}" for j in range(200)) + ".", 1.0 - i / 10)
                    for i in range(4)]
    question = "What do the sources say?"
    system = AnswerConfig().system_prompt
    two = _tokens(build_messages(question, long_sources[:2], system))
    three = _tokens(build_messages(question, long_sources[:3], system))
    max_tokens = 100
    n_ctx = two + max_tokens + 16 + (three - two) // 2  # room for two sources, not three

    generator = FakeGenerator(reply="Nothing relevant.")
    answerer = make_answerer(StubRetriever(long_sources, 0.9), generator, n_ctx=n_ctx, max_tokens=max_tokens,
                             context_chunks=4)
    answer = answerer.answer(question)
    sent = generator.calls[0]
    assert sent == build_messages(question, long_sources[:2], system)  # the lowest-ranked were dropped
    assert _tokens(sent) + max_tokens + 16 <= n_ctx
    assert answer.retrieved == tuple(long_sources[:2])
    assert answerer.prompt_for(question) == sent

    # However small the window, the best source is kept — clipped to the share that fits.
    tiny = FakeGenerator(reply="x")
    answer = make_answerer(StubRetriever(long_sources, 0.9), tiny, n_ctx=300, max_tokens=100,
                           context_chunks=4).answer(question)
    [kept] = answer.retrieved
    assert kept.chunk.chunk_id == long_sources[0].chunk.chunk_id
    assert long_sources[0].chunk.text.startswith(kept.chunk.text) and len(kept.chunk.text) < len(
        long_sources[0].chunk.text)
    assert kept.chunk.char_end - kept.chunk.char_start == len(kept.chunk.text)
    assert _tokens(tiny.calls[0]) + 100 + 16 <= 300


def test_citation_numbers_refer_to_the_sources_actually_sent() -> None:
    generator = FakeGenerator(reply="Tickets are sold online [3].")
    answer = make_answerer(StubRetriever(SOURCES, 0.8), generator, context_chunks=3).answer("tickets?")
    [citation] = answer.citations
    assert citation.number == 3 and citation.doc_id == "doc-trains"
    assert answer.to_dict()["citations"][0]["doc_id"] == "doc-trains"

    # With only two sources in the prompt, a [3] is out of range: attribution falls back to overlap (none here).
    two = FakeGenerator(reply="Tickets are sold online [3].")
    answer = make_answerer(StubRetriever(SOURCES, 0.8), two, context_chunks=2).answer("tickets?")
    assert answer.citations == ()


def test_prompt_for_does_not_call_the_model() -> None:
    generator = FakeGenerator(reply="x")
    messages = make_answerer(StubRetriever(SOURCES, 0.8), generator).prompt_for("power?")
    assert generator.calls == []
    assert messages == build_messages("power?", SOURCES, AnswerConfig().system_prompt)


def test_the_rewriters_and_rerankers_tokens_are_part_of_the_answers_usage() -> None:
    """Query rewriting and reranking call the model too: an answer's usage (what it is priced by) includes them."""

    class SpendingRetriever(StubRetriever):
        def retrieve(self, query, *, top_k=None, flt=None) -> RetrievalResult:
            return RetrievalResult(query, tuple(self.chunks), self.best_dense, 1.5, usage=Usage(300, 20))

    generator = FakeGenerator(reply="Three tickets [1].")
    answer = make_answerer(SpendingRetriever(SOURCES, 0.8), generator).answer("tickets?")
    generated = generator.count_tokens("Three tickets [1].")
    assert answer.usage.completion_tokens == 20 + generated
    assert answer.usage.prompt_tokens > 300
    refused = make_answerer(SpendingRetriever(SOURCES, 0.1), generator, min_relevance=0.25).answer("off topic")
    assert refused.refused and (refused.usage.prompt_tokens, refused.usage.completion_tokens) == (300, 20)
