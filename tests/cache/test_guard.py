"""The semantic-cache match guard: rejects questions that embed close but ask something else, keeps paraphrases."""

from __future__ import annotations

import pytest

from adaptlab.cache.guard import features, guard_rejection


@pytest.mark.parametrize(("query", "candidate", "kind"), [
    ("Is ibuprofen safe for COVID patients?", "Is ibuprofen not safe for COVID patients?", "negation"),
    ("Can I take it with food?", "Can't I take it with food?", "negation"),
    ("Do masks work?", "Do masks never work?", "negation"),
    ("Is there a cure?", "Is there no cure?", "negation"),
    ("Can I travel with symptoms?", "Can I travel without symptoms?", "negation"),
    ("How long is the incubation of MERS?", "How long is the incubation of SARS?", "entities"),
    ("Is H1N1 dangerous?", "Is H5N1 dangerous?", "entities"),
    ("What does GPT-4 cost?", "What does GPT-3 cost?", "entities"),
    ("Where is the clinic in Boston?", "Where is the clinic in Denver?", "entities"),
    ("vitamin D dose", "vitamin C dose", "entities"),
    ("dose for 5 year olds", "dose for 12 year olds", "numbers"),
    ("Is 2.5 mg enough?", "Is 5 mg enough?", "numbers"),
    ("How many beds for twenty patients?", "How many beds for 30 patients?", "numbers"),
    ("When is the 2nd dose due?", "When is the 3rd dose due?", "numbers"),
    ("Cases in 2020?", "Cases in 2021?", "numbers"),
    ("Is the clinic open on Monday?", "Is the clinic open on tuesday?", "dates"),
    ("How many cases in March?", "How many cases in April?", "dates"),
])
def test_rejects_questions_that_ask_something_else(query: str, candidate: str, kind: str) -> None:
    reason = guard_rejection(query, candidate)
    assert reason is not None and reason.startswith({"negation": "negation", "entities": "named entities",
                                                     "numbers": "numbers", "dates": "dates"}[kind]), reason
    assert guard_rejection(candidate, query) is not None  # symmetric: either side may be the cached one


@pytest.mark.parametrize(("query", "candidate"), [
    ("What are the symptoms of COVID-19?", "Which symptoms does COVID-19 cause?"),
    ("Why isn't the vaccine working?", "Why is the vaccine not working?"),  # negation re-worded, same count
    ("I can't sleep", "I cannot sleep"),
    ("dose for 5-year-olds", "dose for five year olds"),  # number word vs digits
    ("How many died in 1,000 cases?", "How many died in one thousand cases?"),
    ("twenty five people", "25 people"),
    ("two hundred and five beds", "205 beds"),
    ("the third dose", "the 3rd dose"),
    ("what is covid", "What is COVID?"),  # typed in lower case
    ("Paris hotels?", "Hotels in Paris?"),  # a name that starts the sentence
    ("Does Pfizer's vaccine work?", "Does the Pfizer vaccine work?"),  # possessive
    ("May I take ibuprofen?", "Can I take ibuprofen?"),  # the verb, not the month
    ("Which one is better?", "Which is better?"),  # "one" as a pronoun
    ("WHAT IS THE DOSE FOR KIDS", "what is the dose for kids"),  # shouting is not a name
    ("What Are The Symptoms Of COVID-19", "Which symptoms does COVID-19 cause?"),  # Title Case
    ("Q: How do I reset my password?", "How can I reset my password?"),
])
def test_accepts_paraphrases(query: str, candidate: str) -> None:
    assert guard_rejection(query, candidate) is None


def test_features_are_what_the_reason_names() -> None:
    found = features("How many of the 1,500 patients in Wuhan got H1N1 on a Monday in May? May I ask?")
    assert found.numbers == ("1500",)
    assert found.dates == ("may", "monday")  # the second "May" starts a sentence: the verb
    assert found.entities == {"wuhan", "h1n1"}
    assert found.negations == ()
    reason = guard_rejection("Is ibuprofen safe?", "Is ibuprofen not safe?")
    assert reason == "negation differs (none vs 'not')"
    assert guard_rejection("MERS incubation", "SARS incubation") == "named entities differ ('mers' vs 'sars')"


def test_the_guard_catches_what_minilm_cannot_separate(minilm) -> None:
    """Why the guard exists: with the real embedder the negated question is closer to the original than a
    true paraphrase is, so no threshold keeps the paraphrase and drops the negation."""
    original = "Is ibuprofen safe for COVID patients?"
    negated = "Is ibuprofen not safe for COVID patients?"
    paraphrase = "Can COVID patients safely take ibuprofen?"
    vectors = minilm.embed([original, negated, paraphrase])
    negated_cosine, paraphrase_cosine = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert negated_cosine > 0.95 and negated_cosine > paraphrase_cosine
    assert guard_rejection(negated, original) is not None
    assert guard_rejection(paraphrase, original) is None
