"""Tests for adaptlab.rag.chunk: exact slices, token budgets, break preferences, overlap, pages, ids, titles.

The real all-MiniLM-L6-v2 tokenizer is used where token counts matter (loaded once for the module); the
HashEmbedder (one token per word or punctuation mark) makes token positions easy to reason about.
"""

from __future__ import annotations

import random
import string

import pytest

from adaptlab.config import ChunkConfig
from adaptlab.errors import ConfigError
from adaptlab.rag.chunk import Chunker, chunk_id_for
from adaptlab.testing.fakes import HashEmbedder
from adaptlab.types import Chunk, Document, Section

SUBJECTS = ["The committee", "Our new model", "A small team", "The city council", "Each volunteer", "The vaccine trial",
            "This report", "The survey", "Local farmers", "The research group"]
VERBS = ["reviewed", "described", "measured", "questioned", "published", "compared", "funded", "predicted"]
OBJECTS = ["the annual budget for public transport", "several unexpected results in the northern region",
           "a detailed plan for the coming winter", "the effect of rainfall on wheat harvests",
           "new guidelines for hospital staff", "the cost of maintaining old bridges",
           "a long list of recommendations", "the number of patients admitted last year"]


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(count)]


def paragraph(count: int, seed: int = 0) -> str:
    return " ".join(sentences(count, seed))


def make_doc(text: str, *, title: str = "Annual Report", sections: tuple[Section, ...] = (),
             doc_id: str = "doc-1", content_hash: str = "hash-1", tags: tuple[str, ...] = ()) -> Document:
    return Document(doc_id=doc_id, path=f"/data/{doc_id}.md", title=title, text=text, content_hash=content_hash,
                    sections=sections, tags=tags)


def assert_well_formed(doc: Document, chunks: list[Chunk], embedder, size: int) -> None:
    assert chunks, "a non-empty document gives chunks"
    for index, chunk in enumerate(chunks):
        assert doc.text[chunk.char_start : chunk.char_end] == chunk.text  # an exact slice
        assert chunk.text == chunk.text.strip() and chunk.text
        assert chunk.chunk_index == index and chunk.chunk_count == len(chunks)
        assert embedder.count_tokens(chunk.text) <= size, (index, embedder.count_tokens(chunk.text))
        assert embedder.count_tokens(chunk.index_text) <= embedder.max_tokens
        assert chunk.doc_id == doc.doc_id and chunk.doc_hash == doc.content_hash and chunk.path == doc.path
    # In order, always advancing, and every word of the document is in some chunk.
    for previous, current in zip(chunks, chunks[1:]):
        assert current.char_start > previous.char_start
        assert current.char_end > previous.char_end
    covered = [False] * len(doc.text)
    for chunk in chunks:
        covered[chunk.char_start : chunk.char_end] = [True] * (chunk.char_end - chunk.char_start)
    missed = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert missed == []


# `minilm` (the real all-MiniLM-L6-v2 embedder, loaded once per session) comes from tests/conftest.py.


@pytest.fixture()
def hash_embedder() -> HashEmbedder:
    return HashEmbedder(dimension=16, max_tokens=256)


@pytest.fixture(params=["hash", "minilm"])
def embedder(request):
    return request.getfixturevalue("hash_embedder" if request.param == "hash" else "minilm")


def long_markdown() -> str:
    parts = ["# Annual report", "", paragraph(9, 1), "", "## Transport", "", paragraph(14, 2), "", paragraph(5, 3),
             "", "- first item of a list", "- second item of a list", "", "## Health", "", paragraph(30, 4),
             "", "### Hospitals", "", paragraph(3, 5), "", paragraph(22, 6)]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- invariants with the real tokenizer


@pytest.mark.parametrize("size,overlap", [(200, 32), (64, 8), (254, 0), (254, 40), (32, 0)])
def test_minilm_chunks_are_exact_slices_within_token_budget(minilm, size: int, overlap: int) -> None:
    doc = make_doc(long_markdown())
    chunks = Chunker(ChunkConfig(size_tokens=size, overlap_tokens=overlap), minilm).chunk(doc)
    assert_well_formed(doc, chunks, minilm, size)
    assert len(chunks) > 1


def test_minilm_words_without_boundaries_never_exceed_the_model_limit(minilm) -> None:
    """Random words, no punctuation or newlines: every cut is a forced one. Cutting inside a word used to make
    the pieces re-tokenize into one token more than counted (255 > 254: silently truncated by the model)."""
    rng = random.Random(0)
    text = " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 14)))
                    for _ in range(900))
    doc = make_doc(text, title="")
    for size, overlap in [(254, 0), (254, 16), (200, 32), (64, 8)]:
        chunks = Chunker(ChunkConfig(size_tokens=size, overlap_tokens=overlap), minilm).chunk(doc)
        assert_well_formed(doc, chunks, minilm, size)
        for chunk in chunks:
            # Cuts fall between words, so no chunk starts or ends inside a word.
            assert chunk.char_start == 0 or text[chunk.char_start - 1] == " "
            assert chunk.char_end == len(text) or text[chunk.char_end] == " "


def test_minilm_title_prefix_kept_within_model_limit(minilm) -> None:
    title = "A very long title " + " ".join(f"about subject number {i}" for i in range(40))
    doc = make_doc(paragraph(60, 7), title=title)
    chunker = Chunker(ChunkConfig(size_tokens=200, overlap_tokens=20), minilm)
    chunks = chunker.chunk(doc)
    assert_well_formed(doc, chunks, minilm, 200)
    prefix = chunks[0].index_text[: len(chunks[0].index_text) - len(chunks[0].text)]
    assert prefix.endswith(": ") and title.startswith(prefix[:-2])
    assert len(prefix) < len(title)  # truncated: 48 tokens at most
    assert minilm.count_tokens(prefix) <= 48 + 1  # budget + the colon
    # At the model's full size there is no room for a title at all.
    full = Chunker(ChunkConfig(size_tokens=minilm.max_tokens, overlap_tokens=0), minilm).chunk(doc)
    assert all(c.index_text == c.text for c in full)


def test_size_above_embedder_limit_is_a_config_error(minilm, hash_embedder) -> None:
    with pytest.raises(ConfigError) as info:
        Chunker(ChunkConfig(size_tokens=minilm.max_tokens + 1, overlap_tokens=0), minilm)
    message = str(info.value)
    assert str(minilm.max_tokens + 1) in message and str(minilm.max_tokens) in message
    assert "chunk.size_tokens" in message
    Chunker(ChunkConfig(size_tokens=minilm.max_tokens, overlap_tokens=0), minilm)  # the limit itself is fine
    with pytest.raises(ConfigError):
        Chunker(ChunkConfig(size_tokens=300, overlap_tokens=0), hash_embedder)


# --------------------------------------------------------------------------- break preferences


def _fill_to(embedder, target_tokens: int, seed: int) -> str:
    """Sentences appended until the text has at least `target_tokens` tokens in this embedder."""
    text, n = "", 0
    while embedder.count_tokens(text) < target_tokens:
        text = paragraph(n + 1, seed)
        n += 1
    return text


def test_heading_inside_window_ends_the_chunk_right_before_it(embedder) -> None:
    size = 64
    before = _fill_to(embedder, 36, seed=11)  # the heading lies well inside the window (16..64 tokens)
    after_heading = paragraph(2, 12) + "\n\n" + paragraph(12, 13)  # paragraph and sentence breaks later on
    text = before + "\n\n## Findings\n\n" + after_heading
    doc = make_doc(text)
    chunks = Chunker(ChunkConfig(size_tokens=size, overlap_tokens=16), embedder).chunk(doc)
    assert_well_formed(doc, chunks, embedder, size)
    heading_at = text.index("## Findings")
    assert chunks[0].char_end == len(before)
    assert chunks[0].text == before
    # The next chunk starts at the heading: no overlap across a heading break.
    assert chunks[1].char_start == heading_at
    assert chunks[1].text.startswith("## Findings")


def test_paragraph_break_beats_later_sentence_breaks(embedder) -> None:
    size = 64
    first = _fill_to(embedder, 36, seed=21)
    text = first + "\n\n" + paragraph(20, 22)
    doc = make_doc(text)
    chunks = Chunker(ChunkConfig(size_tokens=size, overlap_tokens=0), embedder).chunk(doc)
    assert_well_formed(doc, chunks, embedder, size)
    assert chunks[0].text == first
    assert chunks[1].char_start == len(first) + 2


def test_line_break_beats_sentence_break(hash_embedder) -> None:
    first = _fill_to(hash_embedder, 36, seed=31)
    text = first + "\n" + paragraph(20, 32)
    chunks = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=0), hash_embedder).chunk(make_doc(text))
    assert chunks[0].text == first


def test_sentences_end_chunks_when_there_is_no_stronger_break(embedder) -> None:
    text = paragraph(40, 41)
    doc = make_doc(text)
    chunks = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=0), embedder).chunk(doc)
    assert_well_formed(doc, chunks, embedder, 64)
    assert len(chunks) >= 4
    for chunk in chunks:
        assert chunk.text.endswith(".")  # every chunk ends at a sentence end ...
        assert chunk.text[0].isupper()  # ... and the next starts at a sentence start
    # Fuller chunks are preferred: each (but the last) holds more than a quarter of the budget.
    assert all(embedder.count_tokens(c.text) > 64 // 4 for c in chunks[:-1])


def test_without_any_boundary_chunks_are_full_size(hash_embedder) -> None:
    text = " ".join(f"word{i}" for i in range(100))
    chunks = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=0), hash_embedder).chunk(make_doc(text))
    assert [hash_embedder.count_tokens(c.text) for c in chunks] == [32, 32, 32, 4]
    assert chunks[1].text.split()[0] == "word32"


# --------------------------------------------------------------------------- overlap


def test_overlap_shares_text_between_consecutive_chunks(hash_embedder) -> None:
    text = " ".join(f"word{i}" for i in range(100))
    chunks = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=8), hash_embedder).chunk(make_doc(text))
    for previous, current in zip(chunks, chunks[1:]):
        assert current.char_start < previous.char_end
        shared = text[current.char_start : previous.char_end]
        assert previous.text.endswith(shared) and current.text.startswith(shared)
        assert hash_embedder.count_tokens(shared) == 8
    assert [c.text.split()[0] for c in chunks[:3]] == ["word0", "word24", "word48"]


def test_overlap_with_real_tokenizer_and_sentences(minilm) -> None:
    text = paragraph(60, 51)
    doc = make_doc(text)
    chunks = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=12), minilm).chunk(doc)
    assert_well_formed(doc, chunks, minilm, 64)
    for previous, current in zip(chunks, chunks[1:]):
        assert current.char_start < previous.char_end  # shares text ...
        shared = text[current.char_start : previous.char_end]
        assert 0 < minilm.count_tokens(shared) <= 12  # ... at most overlap_tokens of it


def test_no_overlap_when_zero(embedder) -> None:
    doc = make_doc(paragraph(60, 52))
    chunks = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=0), embedder).chunk(doc)
    assert len(chunks) > 2
    for previous, current in zip(chunks, chunks[1:]):
        assert current.char_start >= previous.char_end


# --------------------------------------------------------------------------- sections (PDF pages)


def test_pages_are_kept_and_chunks_never_cross_sections(embedder) -> None:
    pages = [paragraph(25, 61), "## Page two heading\n\n" + paragraph(25, 62), paragraph(4, 63)]
    text, sections = "", []
    for number, page_text in enumerate(pages, start=1):
        if text:
            text += "\n\n"
        sections.append(Section(page_text, len(text), number))
        text += page_text
    doc = make_doc(text, sections=tuple(sections))
    chunks = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=16), embedder).chunk(doc)
    assert_well_formed(doc, chunks, embedder, 64)
    assert {c.page for c in chunks} == {1, 2, 3}
    for chunk in chunks:
        section = sections[chunk.page - 1]
        assert section.char_start <= chunk.char_start < chunk.char_end <= section.char_start + len(section.text)
    pages_in_order = [c.page for c in chunks]
    assert pages_in_order == sorted(pages_in_order)
    for page in (1, 2, 3):
        first = next(c for c in chunks if c.page == page)
        assert first.char_start == sections[page - 1].char_start  # each page starts a fresh chunk, no overlap
    assert sum(c.page == 3 for c in chunks) == 1


def test_document_without_sections_has_no_page(hash_embedder) -> None:
    chunks = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=4), hash_embedder).chunk(make_doc(paragraph(10)))
    assert all(c.page is None for c in chunks)


def test_empty_and_blank_documents_give_no_chunks(embedder) -> None:
    chunker = Chunker(ChunkConfig(size_tokens=64, overlap_tokens=8), embedder)
    assert chunker.chunk(make_doc("")) == []
    assert chunker.chunk(make_doc("   \n\n\t  ")) == []


# --------------------------------------------------------------------------- ids, titles, metadata


def test_chunk_ids_are_deterministic_and_distinct(hash_embedder) -> None:
    chunker = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=4), hash_embedder)
    doc = make_doc(paragraph(30, 71))
    first = chunker.chunk(doc)
    second = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=4), hash_embedder).chunk(doc)
    ids = [c.chunk_id for c in first]
    assert ids == [c.chunk_id for c in second]
    assert len(set(ids)) == len(ids) > 1
    assert ids == [chunk_id_for(doc.doc_id, doc.content_hash, i) for i in range(len(ids))]
    changed = chunker.chunk(make_doc(doc.text, content_hash="hash-2"))
    assert not set(ids) & {c.chunk_id for c in changed}  # a new version never reuses an old version's ids
    other = chunker.chunk(make_doc(doc.text, doc_id="doc-2"))
    assert not set(ids) & {c.chunk_id for c in other}


def test_title_prefix_is_in_index_text_not_in_text(hash_embedder) -> None:
    doc = make_doc(paragraph(12, 81), title="Annual Report 2023", tags=("finance", "2023"))
    chunks = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=4), hash_embedder).chunk(doc)
    for chunk in chunks:
        assert chunk.index_text == f"Annual Report 2023: {chunk.text}"
        assert "Annual Report" not in chunk.text
        assert chunk.title == "Annual Report 2023"
        assert chunk.tags == ("finance", "2023")
    no_prefix = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=4, prefix_title=False), hash_embedder)
    assert all(c.index_text == c.text for c in no_prefix.chunk(doc))
    untitled = Chunker(ChunkConfig(size_tokens=32, overlap_tokens=4), hash_embedder).chunk(
        make_doc(doc.text, title=" "))
    assert all(c.index_text == c.text for c in untitled)
