"""Unit tests for adaptlab.eval.metrics, checked against values worked out by hand."""

from __future__ import annotations

import math
import re

import jsonschema
import numpy as np
import pytest

from adaptlab.eval.metrics import (
    FieldScores,
    citation_precision_recall,
    exact_match,
    field_scores,
    groundedness,
    is_refusal,
    label_correct,
    ndcg_at_k,
    normalize_answer,
    parse_json_output,
    recall_at_k,
    reciprocal_rank,
    schema_valid,
    source_matches,
    split_sentences,
    token_f1,
)

# --- extractive QA ---------------------------------------------------------------------------------


def test_normalize_answer_follows_squad() -> None:
    # lower → "the  quick, brown_fox an apple!"; punctuation (incl. '_') gone → "the  quick brownfox an apple";
    # articles gone and whitespace collapsed → "quick brownfox apple"
    assert normalize_answer("The  Quick, brown_fox an Apple!") == "quick brownfox apple"
    # "a" inside a word is not an article
    assert normalize_answer("Banana a") == "banana"


def test_exact_match() -> None:
    assert exact_match("The Cat!", ["dog", "cat"]) == 1.0
    assert exact_match("cats", ["cat"]) == 0.0
    with pytest.raises(ValueError):
        exact_match("x", [])


def test_token_f1_hand_computed() -> None:
    # pred "cat sat on mat" (4 tokens), gold "cat sat" (2 tokens), overlap 2
    # P = 2/4 = 0.5, R = 2/2 = 1, F1 = 2·0.5·1 / 1.5 = 2/3
    assert token_f1("the cat sat on mat", ["a cat sat"]) == pytest.approx(2 / 3)
    # max over answers: "dog" gives 0, "the cat" gives 1
    assert token_f1("cat", ["dog", "the cat"]) == 1.0
    # repeated tokens count as a multiset: pred "cat cat", gold "cat" → overlap 1, P = 1/2, R = 1, F1 = 2/3
    assert token_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)


def test_token_f1_empties() -> None:
    assert token_f1("the", ["a"]) == 1.0  # both normalise to empty
    assert token_f1("", ["cat"]) == 0.0
    assert token_f1("cat", ["an"]) == 0.0
    with pytest.raises(ValueError):
        token_f1("cat", [])


# --- classification --------------------------------------------------------------------------------

LABELS = ["play_music", "set_alarm", "music", "get_weather"]


def test_label_correct_exact_and_casing() -> None:
    assert label_correct("play_music", "play_music") == 1.0
    assert label_correct("  PLAY_MUSIC. ", "play_music") == 1.0
    assert label_correct("play music", "play_music") == 0.0  # the underscore is part of the label


def test_label_correct_in_sentence_needs_label_set() -> None:
    text = "The intent is: play_music."
    assert label_correct(text, "play_music", LABELS) == 1.0
    # without the known labels only an exact match counts
    assert label_correct(text, "play_music") == 0.0
    # "music" does not occur as a whole word inside "play_music" ('_' is a word character)
    assert label_correct(text, "music", LABELS) == 0.0
    assert label_correct("The intent is: set_alarm.", "play_music", LABELS) == 0.0


def test_label_correct_ambiguous_and_nested_labels() -> None:
    # two different known labels named → ambiguous → wrong
    assert label_correct("Either play_music or set_alarm.", "play_music", LABELS) == 0.0
    # the same label twice is still one label
    assert label_correct("play_music, definitely play_music", "play_music", LABELS) == 1.0
    # "music" only occurs inside the longer label "play music", so only "play music" is found
    spaced = ["play music", "music"]
    assert label_correct("I think: play music", "play music", spaced) == 1.0
    assert label_correct("I think: play music", "music", spaced) == 0.0
    # but a separate "music" elsewhere makes it ambiguous
    assert label_correct("play music or just music", "play music", spaced) == 0.0


# --- JSON output -----------------------------------------------------------------------------------


def test_parse_json_output_variants() -> None:
    assert parse_json_output('[1, 2]') == (True, [1, 2])
    fenced = 'Here you go:\n```json\n{"a": [1, 2]}\n```\nThanks!'
    assert parse_json_output(fenced) == (True, {"a": [1, 2]})
    prose = 'The answer is {"name": "Ann", "age": 3} as requested.'
    assert parse_json_output(prose) == (True, {"name": "Ann", "age": 3})
    # an unparseable '{' earlier in the text is skipped; the first balanced object wins
    assert parse_json_output('use {x} then {"a": 1} or {"b": 2}') == (True, {"a": 1})
    assert parse_json_output("no json here {oops") == (False, None)
    assert parse_json_output("") == (False, None)


SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}},
    "required": ["a"],
}


def test_schema_valid() -> None:
    assert schema_valid({"a": 1}, SCHEMA) is True
    assert schema_valid({"a": "x"}, SCHEMA) is False
    assert schema_valid({}, SCHEMA) is False
    with pytest.raises(jsonschema.SchemaError):
        schema_valid({"a": 1}, {"type": 5})


def test_field_scores_nested_with_list() -> None:
    expected = {"name": "Ann", "tags": ["red", "blue"], "addr": {"city": "Paris", "zip": 75001}}
    predicted = {
        "name": "ann.",  # correct after normalisation
        "tags": ["red", "green"],  # tags[0] correct, tags[1] wrong
        "addr": {"city": "Paris", "zip": 75001.0},  # both correct (numbers compared as floats)
        "extra": 1,  # not in expected
    }
    # expected leaves: name, tags[0], tags[1], addr.city, addr.zip = 5
    # predicted leaves: the same 5 paths + extra = 6; correct = 4
    # accuracy = recall = 4/5, precision = 4/6, F1 = 2·(2/3)·(4/5) / (2/3 + 4/5) = 8/11
    scores = field_scores(predicted, expected)
    assert scores.accuracy == pytest.approx(0.8)
    assert scores.recall == pytest.approx(0.8)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(8 / 11)


def test_field_scores_edge_cases() -> None:
    assert field_scores(None, {"a": 1}) == FieldScores(0.0, 0.0, 0.0, 0.0)
    assert field_scores({"a": 1}, {"a": 1}) == FieldScores(1.0, 1.0, 1.0, 1.0)
    # a bool is not the number 1
    assert field_scores({"a": True}, {"a": 1}).accuracy == 0.0
    # an empty list is a leaf: matching [] with [] is correct
    assert field_scores({"a": []}, {"a": []}).f1 == 1.0
    # wrong structure: expected leaf "a.b", predicted leaf "a" → nothing correct
    assert field_scores({"a": 5}, {"a": {"b": 5}}).f1 == 0.0


# --- retrieval and citations -----------------------------------------------------------------------


def _doc(name: str) -> tuple[str, str]:
    return name, f"/data/proj/articles/{name}.txt"


def test_source_matches() -> None:
    doc_id, path = "123", "/x/y/articles/123.txt"
    assert source_matches("123", doc_id, path)
    assert source_matches("/x/y/articles/123.txt", doc_id, path)
    assert source_matches("articles/123.txt", doc_id, path)
    assert source_matches("./articles/123.txt", doc_id, path)
    assert source_matches("articles\\123.txt", doc_id, path)
    assert not source_matches("les/123.txt", doc_id, path)  # must end at a path separator
    assert not source_matches("124", doc_id, path)
    assert not source_matches("", doc_id, path)


def test_recall_at_k_dedupes_chunks_before_cut() -> None:
    ranked = [_doc("d1"), _doc("d1"), _doc("d1"), _doc("d2"), _doc("d3")]
    gold = ["d2", "articles/d3.txt"]
    # unique docs: d1, d2, d3 → top-2 = d1, d2 → 1 of 2 gold found
    assert recall_at_k(ranked, gold, 2) == 0.5
    # top-3 = d1, d2, d3 → 2 of 2
    assert recall_at_k(ranked, gold, 3) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(ranked, [], 3)


def test_reciprocal_rank() -> None:
    ranked = [_doc("d1"), _doc("d1"), _doc("d2"), _doc("d3")]
    # unique ranks: d1=1, d2=2, d3=3 → first gold (d3 or d2) is d2 at rank 2
    assert reciprocal_rank(ranked, ["d3", "d2"]) == 0.5
    assert reciprocal_rank(ranked, ["zzz"]) == 0.0


def test_ndcg_gold_at_ranks_2_and_4_of_5() -> None:
    ranked = [_doc(f"d{i}") for i in range(1, 6)]
    # DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677 = 1.061606
    # IDCG (2 relevant at the top) = 1/log2(2) + 1/log2(3) = 1 + 0.630930 = 1.630930
    # nDCG = 1.061606 / 1.630930 = 0.650921
    assert ndcg_at_k(ranked, ["d2", "d4"], 5) == pytest.approx(0.650921, abs=1e-6)
    assert ndcg_at_k(ranked, ["d1", "d2"], 5) == pytest.approx(1.0)
    assert ndcg_at_k(ranked, ["d9"], 5) == 0.0


def test_ndcg_credits_each_gold_once_and_dedupes() -> None:
    # d2 appears twice (two chunks) → unique docs d1, d2, d3; gold "d2" and its path alias are one doc
    ranked = [_doc("d1"), _doc("d2"), _doc("d2"), _doc("d3")]
    # gold d2 at unique rank 2: DCG = 1/log2(3) = 0.630930; IDCG (1 gold, k=3) = 1 → 0.630930
    assert ndcg_at_k(ranked, ["d2"], 3) == pytest.approx(1 / math.log2(3))
    # IDCG uses min(|gold|, k): 3 gold with k=1, d1 at rank 1 → DCG 1, IDCG 1 → 1.0
    assert ndcg_at_k(ranked, ["d1", "d2", "d3"], 1) == 1.0


def test_citation_precision_recall() -> None:
    # nothing cited → precision undefined, recall 0
    assert citation_precision_recall([], ["d1"]) == (None, 0.0)
    # cited d1 (twice) and d3 → unique cited {d1, d3}; gold {d1, d2}
    # precision = 1 matching / 2 cited = 0.5; recall = 1 gold found / 2 gold = 0.5
    cited = [_doc("d1"), _doc("d1"), _doc("d3")]
    assert citation_precision_recall(cited, ["d1", "articles/d2.txt"]) == (0.5, 0.5)
    assert citation_precision_recall([_doc("d1")], ["d1"]) == (1.0, 1.0)


# --- answer text -----------------------------------------------------------------------------------


def test_split_sentences() -> None:
    text = "First one [1]. Second one?[2][3] Third\nFourth line!\n...\nPi is 3.14 roughly."
    assert split_sentences(text) == ["First one.", "Second one?", "Third", "Fourth line!", "Pi is 3.14 roughly."]
    assert split_sentences("  [1] ") == []


def _bag_of_words_embedder(calls: list[list[str]]):
    """A deterministic fake encoder: L2-normalised word counts over the batch's vocabulary."""

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        tokens = [re.findall(r"[a-z]+", t.lower()) for t in texts]
        vocab = sorted({w for ts in tokens for w in ts})
        rows = np.zeros((len(texts), len(vocab)))
        for i, ts in enumerate(tokens):
            for w in ts:
                rows[i, vocab.index(w)] += 1
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return embed


def test_groundedness_with_fake_embedder() -> None:
    answer = "Cats sleep all day. Dogs bark [1]. Fish can fly."
    evidence = ["Cats sleep all day. Dogs bark at night.", "Fish swim."]
    # S1 {cats sleep all day} vs E1 (same words): cos = 1
    # S2 {dogs bark} vs E2 {dogs bark at night}: cos = 2 / (√2·√4) = 0.7071
    # S3 {fish can fly} vs E3 {fish swim}: cos = 1 / (√3·√2) = 0.4082
    calls: list[list[str]] = []
    embed = _bag_of_words_embedder(calls)
    assert groundedness(answer, evidence, embed, threshold=0.7) == pytest.approx(2 / 3)  # S1, S2
    assert len(calls) == 1  # one batch: 3 answer + 3 evidence sentences
    assert calls[0] == [
        "Cats sleep all day.", "Dogs bark.", "Fish can fly.",
        "Cats sleep all day.", "Dogs bark at night.", "Fish swim.",
    ]
    calls.clear()
    assert groundedness(answer, evidence, embed, threshold=0.75) == pytest.approx(1 / 3)  # S1 only
    assert len(calls) == 1


def test_groundedness_degenerate_inputs_skip_the_model() -> None:
    calls: list[list[str]] = []
    embed = _bag_of_words_embedder(calls)
    assert groundedness("[1]", ["Cats sleep."], embed, threshold=0.5) is None  # no answer sentences
    assert groundedness("Cats sleep.", [], embed, threshold=0.5) == 0.0  # no evidence
    assert groundedness("Cats sleep.", ["..."], embed, threshold=0.5) == 0.0
    assert calls == []


def test_is_refusal() -> None:
    refusal = "I don't know."
    assert is_refusal("I don't know", refusal)
    assert is_refusal("I DON'T KNOW. The documents do not say.", refusal)
    assert not is_refusal("I don't knowingly guess: 5", refusal)
    assert not is_refusal("The answer is 5.", refusal)
