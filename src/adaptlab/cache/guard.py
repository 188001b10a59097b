"""Semantic-cache match guard: refuse a cached answer when the two questions differ in a way embeddings blur.

Sentence embeddings place "Is ibuprofen safe for COVID patients?" and "Is ibuprofen not safe for COVID
patients?" closer together than most true paraphrases (cosine 0.995 with all-MiniLM-L6-v2), and likewise
questions that differ only in a number ("dose for 5 year olds" / "dose for 12 year olds") or a name ("incubation
of MERS" / "of SARS"). A threshold cannot separate those from true paraphrases, so a semantic hit is checked by
cheap, explainable rules first: the two questions must agree on

- negation (not, no, never, n't, without, none, cannot, neither …), counted;
- numbers (digits, decimals, ordinals like "2nd", number words one … twenty, tens, hundred, thousand, million …,
  years), compared as multisets of values so "five" and "5" agree;
- dates (month and weekday names);
- named entities, by a heuristic instead of an NER model (no spaCy or NER weights are installed, and the guard
  runs on every semantic hit): capitalised words that do not start a sentence, acronyms and camel case
  ("COVID", "MERS", "mRNA"), and tokens mixing letters and digits ("H1N1", "GPT-4", "COVID-19"). A name only
  counts as missing from the other question when that question lacks the word in any case, in a word form
  ("Python" / "Pythonic") and spelled out ("ML" / "machine learning", "JS" / "JavaScript").

The rules are deliberately conservative: a wrongly rejected paraphrase costs one model call, a wrongly accepted
one serves a wrong answer. `adaptlab cache sweep` measures both effects on labelled pairs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["GuardFeatures", "features", "guard_rejection"]

# Hyphen and apostrophe compounds stay one token ("COVID-19", "isn't", "5-year-olds"); parts are split later.
_TOKEN = re.compile(r"\w+(?:[-'’.]\w+)*")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_POSSESSIVE = re.compile(r"['’]s$")
# Between two tokens, these start a sentence (or a line, a quote, a list item): the next word's capital letter
# is grammar, not a name.
_SENTENCE_BREAK = re.compile(r"[.?!:;\"“”(\[•*\n]")

_NEGATIONS = frozenset({
    "not", "no", "never", "none", "without", "cannot", "neither", "nobody", "nothing", "nowhere", "noone",
    # contractions typed without the apostrophe
    "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt", "shouldnt", "wouldnt",
    "wont", "havent", "hasnt", "hadnt", "mustnt", "aint", "neednt",
})
# "nor" is left out: it only appears next to "neither"/"not", which already count.

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    # Ordinal words from "third" on: "first" and "second" are too often not numbers ("first symptoms",
    # "a second opinion") to reject paraphrases over them.
    "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
    "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000,
           "trillion": 1_000_000_000_000}
# "which one", "no one", "the one": a pronoun, not the number.
_ONE_PRONOUN_BEFORE = frozenset({"which", "no", "any", "every", "each", "this", "that", "the", "another", "a",
                                 "new", "other", "same", "right", "wrong", "last", "next", "previous"})
_ONE_PRONOUN_AFTER = frozenset({"can", "could", "should", "must", "may", "might", "would", "will", "needs", "has"})
# Skipped in initials ("Centers for Disease Control" → CDC), and never the start of an abbreviation.
_FUNCTION_WORDS = frozenset({"and", "for", "the", "what", "which", "how", "why", "when", "where", "who", "does",
                             "did", "can", "are", "was", "were", "has", "have", "with", "from", "that", "this",
                             "you", "your", "there", "their", "its", "into", "about", "not"})
# Word forms of one name: "Python" / "Pythonic", "American" / "Americans".
_NAME_SUFFIXES = frozenset({"s", "es", "ic", "ian", "ians", "ish", "ese", "al", "an", "ans"})
_CAMEL = re.compile(r"[A-Z][a-z]+|[A-Z]+(?![a-z])|[a-z]+")
# Digits with an optional decimal part, ordinal suffix or short unit ("2nd", "2.5mg", "10k", "1990s").
# Letters before the digits ("H1N1") make a name instead.
_NUMERIC = re.compile(r"(\d+)(\.\d+)?(?:st|nd|rd|th|s|[a-zA-Z]{1,3})?")

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE_WORDS = {name: name for name in _MONTHS + _WEEKDAYS}
_DATE_WORDS.update({"jan": "january", "feb": "february", "sept": "september", "oct": "october",
                    "nov": "november", "dec": "december"})

_PRONOUN_I = frozenset({"i", "i'm", "i've", "i'd", "i'll", "i’m", "i’ve", "i’d", "i’ll"})


@dataclass(frozen=True)
class GuardFeatures:
    """What the guard compares, extracted once per text (cached: a sweep checks each text many times)."""

    negations: tuple[str, ...]  # every negation cue, in order ("n't" for contractions)
    numbers: tuple[str, ...]  # sorted values as canonical strings ("5", "2.5", "1000")
    dates: tuple[str, ...]  # sorted month / weekday names
    entities: frozenset[str]  # casefolded
    words: frozenset[str]  # every casefolded token and hyphen part, to excuse capitalisation-only differences
    # initials → the words they abbreviate: "machine learning" → "ml", "JavaScript" → "js", "Centers for
    # Disease Control" → "cdc"; an acronym on one side spelled out on the other is the same name
    spelled_out: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False, compare=False)


@lru_cache(maxsize=100_000)
def features(text: str) -> GuardFeatures:
    """The negation cues, numbers, dates and entity-like tokens of `text`."""
    text = _THOUSANDS.sub("", text)  # "1,000" is one number
    tokens = list(_TOKEN.finditer(text))
    letters = [c for c in text if c.isalpha()]
    # SHOUTED TEXT makes every word look like an acronym, Title Case every word like a name: then the case of a
    # word says nothing and only letter-digit mixes count as names.
    acronyms_signal = not letters or sum(c.isupper() for c in letters) <= 0.6 * len(letters)
    alphabetic = [m.group() for m in tokens if m.group()[:1].isalpha()]
    capitals_signal = acronyms_signal and not (
        len(alphabetic) >= 4 and sum(w[:1].isupper() for w in alphabetic) > 0.6 * len(alphabetic))
    negations: list[str] = []
    numbers: list[str] = []
    dates: list[str] = []
    entities: set[str] = set()
    words: set[str] = set()
    number_run: list[str] = []  # consecutive number words ("twenty five", "two hundred") form one value

    def flush_run() -> None:
        if number_run:
            numbers.append(_canonical(_words_to_number(number_run)))
            number_run.clear()

    previous = ""
    lowered = [m.group().casefold() for m in tokens]
    for position, match in enumerate(tokens):
        token = _POSSESSIVE.sub("", match.group())  # "Pfizer's" names Pfizer
        low = token.casefold()
        parts = [p for p in token.split("-") if p]
        words.add(low)
        words.update(p.casefold() for p in parts)
        gap = text[tokens[position - 1].end():match.start()] if position else ""
        sentence_start = position == 0 or bool(_SENTENCE_BREAK.search(gap))
        following = text[match.end():].lstrip()[:1]
        next_word = lowered[position + 1] if position + 1 < len(tokens) else ""

        if low.endswith(("n't", "n’t")):
            negations.append("n't")
        elif low in _NEGATIONS and not (low == "no" and sentence_start and following in ("", ",", ".", "!")):
            negations.append(low)  # (a sentence that is just "No," answers; it negates nothing in the question)
        date = _DATE_WORDS.get(low)
        # "may" is the verb unless it is capitalised inside a sentence ("in May").
        if date and (low != "may" or (token == "May" and not sentence_start and capitals_signal)):
            flush_run()
            dates.append(date)
            previous = low
            continue
        if low not in _PRONOUN_I and _is_entity(token, parts, sentence_start, acronyms_signal, capitals_signal):
            flush_run()
            entities.add(low)
            previous = low
            continue
        for part in parts:
            part_low = part.casefold()
            numeric = _NUMERIC.fullmatch(part)
            if numeric and len(parts) == 1 and following == ")" and len(part) <= 2:
                flush_run()  # a list marker: "1) download, 2) prepare"
            elif numeric:
                flush_run()
                numbers.append(_canonical(float(numeric.group(1) + (numeric.group(2) or ""))))
            elif part_low == "one" and (previous in _ONE_PRONOUN_BEFORE or next_word in _ONE_PRONOUN_AFTER
                                        or sentence_start):
                flush_run()  # "which one", "one can", "One should": the pronoun
            elif part_low in _UNITS or part_low in _SCALES:  # a scale also alone: "a hundred" is 100
                number_run.append(part_low)
            elif part_low == "and" and number_run:
                pass  # "one hundred and five" is one number
            else:
                flush_run()
            previous = part_low
    flush_run()
    return GuardFeatures(tuple(negations), tuple(sorted(numbers)), tuple(sorted(dates)), frozenset(entities),
                         frozenset(words), _spelled_out([m.group() for m in tokens]))


def guard_rejection(query: str, candidate: str) -> str | None:
    """None when the cached question `candidate` may answer `query`, else a short reason why not."""
    a, b = features(query), features(candidate)
    if len(a.negations) != len(b.negations):
        return f"negation differs ({_show(a.negations)} vs {_show(b.negations)})"
    if a.numbers != b.numbers:
        return f"numbers differ ({_show(a.numbers)} vs {_show(b.numbers)})"
    if a.dates != b.dates:
        return f"dates differ ({_show(a.dates)} vs {_show(b.dates)})"
    # An entity of one text counts as missing from the other only when the other does not contain the word at
    # all: "covid" typed in lower case, or a name that starts the sentence, still agrees; so do word forms
    # ("Python" / "Pythonic") and an acronym spelled out on the other side ("ML" / "machine learning").
    only_a = {e for e in a.entities if e not in b.words and not _word_form(e, b.words)}
    only_b = {e for e in b.entities if e not in a.words and not _word_form(e, a.words)}
    for acronym in list(only_a):
        if acronym in b.spelled_out:
            only_a.discard(acronym)
            only_b -= b.spelled_out[acronym]
    for acronym in list(only_b):
        if acronym in a.spelled_out:
            only_b.discard(acronym)
            only_a -= a.spelled_out[acronym]
    if only_a or only_b:
        return f"named entities differ ({_show(sorted(only_a))} vs {_show(sorted(only_b))})"
    return None


# ------------------------------------------------------------------------------------------------ helpers


def _is_entity(token: str, parts: list[str], sentence_start: bool, acronyms_signal: bool,
               capitals_signal: bool) -> bool:
    if any(_mixes_letters_and_digits(p) for p in parts):
        return True  # H1N1, GPT4, B12 — but not "2nd" or "10mg", which are numbers
    if any(p.isdigit() for p in parts) and any(p.isalpha() and p[:1].isupper() for p in parts) and acronyms_signal:
        return True  # COVID-19, GPT-4, Covid-19: the digits belong to the name
    if acronyms_signal and any(sum(c.isupper() for c in p) >= 2 or (p[:1].islower() and any(c.isupper() for c in p))
                               for p in parts):
        return True  # acronyms and camel case: MERS, SARS-CoV-2, mRNA, U.S
    return capitals_signal and token[:1].isupper() and not sentence_start


def _mixes_letters_and_digits(part: str) -> bool:
    return any(c.isdigit() for c in part) and any(c.isalpha() for c in part) and not _NUMERIC.fullmatch(part)


def _word_form(entity: str, words: frozenset[str]) -> bool:
    """`entity` and some word of the other text are forms of one name ("python" / "pythonic")."""
    if not entity.isalpha() or len(entity) < 3:
        return False
    return any(w.isalpha() and len(w) >= 3 and (w[len(entity):] in _NAME_SUFFIXES if w.startswith(entity) else
                                                 entity[len(w):] in _NAME_SUFFIXES if entity.startswith(w) else False)
               for w in words)


def _spelled_out(tokens: list[str]) -> dict[str, frozenset[str]]:
    """Initials of every run of 2–5 consecutive words (function words skipped) and of the camel-case parts of single
    words, mapped to the words they cover."""
    found: dict[str, frozenset[str]] = {}
    # Runs of content words only: "is", "what", "can" would make random initials match short acronyms.
    content = [t for t in tokens if t.isalpha() and len(t) >= 3 and t.casefold() not in _FUNCTION_WORDS]
    for size in range(2, 6):
        for start in range(len(content) - size + 1):
            run = content[start:start + size]
            found.setdefault("".join(w[0] for w in run).casefold(), frozenset(w.casefold() for w in run))
    for token in tokens:
        pieces = _CAMEL.findall(token)
        if 2 <= len(pieces) <= 5 and "-" not in token:
            found.setdefault("".join(p[0] for p in pieces).casefold(), frozenset({token.casefold()}))
    return found


def _words_to_number(run: list[str]) -> float:
    """["two", "hundred", "five"] → 205; ["thousand"] → 1000 ("thousands of" still names a magnitude)."""
    total, current = 0, 0
    for word in run:
        if word in _UNITS:
            current += _UNITS[word]
        else:
            scale = _SCALES[word]
            current = max(current, 1) * scale
            if scale >= 1000:
                total += current
                current = 0
    return float(total + current)


def _canonical(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _show(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(i) for i in items) if items else "none"
