"""SNIPS 2017 (bundled, CC0) → a text-to-JSON task: parse a voice-assistant request into {intent, slots}.

`convert_snips` writes chat training data, few-shot examples and held-out eval cases, with the schema and the
system prompt they share; eval cases come only from the validate files, and training picks that repeat one are
skipped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptlab.datasets.common import load_json
from adaptlab.datasets.squad import normalize_answer
from adaptlab.errors import InputError
from adaptlab.textfiles import read_text, write_jsonl_atomic, write_text_atomic


@dataclass(frozen=True)
class SnipsUtterance:
    intent: str
    text: str
    slots: dict[str, str | list[str]] = field(hash=False)  # sorted by slot name
    index: int  # position in its file, for ids that point back at the source

    def target(self) -> dict[str, Any]:
        return {"intent": self.intent, "slots": self.slots}

    def target_json(self) -> str:
        return json.dumps(self.target(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SnipsSplit:
    """What convert_snips wrote: totals, per-intent counts, and what it left out to keep the splits apart."""

    out_dir: Path
    intents: tuple[str, ...]
    train: int
    fewshot: int
    eval: int
    per_intent: dict[str, dict[str, int]]  # intent -> {"train", "fewshot", "eval"}
    dropped_overlap: int  # train-file utterances skipped because they are also eval utterances
    dropped_duplicates: int  # train-file utterances skipped because an earlier pick had the same text
    train_path: Path
    fewshot_path: Path
    eval_path: Path
    schema_path: Path
    system_prompt_path: Path

    def to_dict(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in self.__dict__.items()}


def snips_system_prompt(intents: Sequence[str]) -> str:
    """Short on purpose: it is repeated in every training example, and training truncates long ones."""
    return (
        "You parse voice-assistant requests. Give the request's intent, one of: "
        f"{', '.join(intents)}; and its slots: each slot name with the words of the request that fill it, "
        "copied exactly (a list if the slot occurs twice). Reply with JSON only, no other text: "
        '{"intent": "<intent>", "slots": {"<slot name>": "<words>"}}'
    )


def snips_schema(intents: Sequence[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["intent", "slots"],
        "additionalProperties": False,
        "properties": {
            "intent": {"type": "string", "enum": list(intents)},
            "slots": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]
                },
            },
        },
    }


def read_snips_file(path: str | Path) -> list[SnipsUtterance]:
    """One SNIPS 2017 intent file: {"<Intent>": [{"data": [{"text", "entity"?}, ...]}, ...]}."""
    path = Path(path)
    data = load_json(path, _read_snips_text(path))
    if not isinstance(data, dict) or len(data) != 1:
        raise InputError(str(path), None, "expected {\"<Intent>\": [...]} with one intent",
                         "pass a SNIPS 2017 train_<Intent>_full.json or validate_<Intent>.json file")
    intent, items = next(iter(data.items()))
    utterances: list[SnipsUtterance] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        chunks = item.get("data") if isinstance(item, dict) else None
        if not isinstance(chunks, list) or not all(isinstance(c, dict) and isinstance(c.get("text"), str)
                                                   for c in chunks):
            raise InputError(str(path), None, f"utterance {index} has no list of {{\"text\"}} chunks",
                             "check the file is SNIPS 2017 data")
        slots: dict[str, list[str]] = {}
        for chunk in chunks:
            value = chunk["text"].strip()
            if chunk.get("entity") and value:
                slots.setdefault(chunk["entity"], []).append(value)
        text = "".join(chunk["text"] for chunk in chunks).strip()
        if text:
            ordered = {name: values[0] if len(values) == 1 else values for name, values in sorted(slots.items())}
            utterances.append(SnipsUtterance(intent, text, ordered, index))
    return utterances


def convert_snips(
    snips_dir: str | Path,
    out_dir: str | Path,
    *,
    train_per_intent: int = 60,
    eval_per_intent: int = 30,
    fewshot_per_intent: int = 2,
    seed: int = 0,
) -> SnipsSplit:
    """SNIPS 2017 → train.jsonl (chat), fewshot.jsonl, eval.jsonl (cases), schema.json, system_prompt.txt.

    Eval cases come only from the validate files (the held-out split); training and few-shot examples only
    from the train files, skipping any utterance that is also an eval one (after SQuAD normalisation, the
    check `adaptlab data check` applies) or repeats an earlier pick. Sampling uses random.Random(seed).
    """
    snips_dir, out_dir = Path(snips_dir), Path(out_dir)
    for name, value in (("train_per_intent", train_per_intent), ("eval_per_intent", eval_per_intent),
                        ("fewshot_per_intent", fewshot_per_intent)):
        if value < 0:
            raise InputError(str(snips_dir), None, f"{name} is {value}", "pass a count of 0 or more")
    intents = tuple(sorted(p.name[len("train_"):-len("_full.json")] for p in snips_dir.glob("train_*_full.json")))
    if not intents:
        raise InputError(str(snips_dir), None, "no train_<Intent>_full.json files",
                         "pass the folder of SNIPS 2017 custom-intent-engines data")
    missing = [i for i in intents if not (snips_dir / f"validate_{i}.json").is_file()]
    if missing:
        raise InputError(str(snips_dir), None, f"no validate file for {', '.join(missing)}",
                         "the held-out eval split comes from validate_<Intent>.json: add the files")
    rng = random.Random(seed)
    system_prompt = snips_system_prompt(intents)
    schema = snips_schema(intents)

    per_intent = {intent: {"train": 0, "fewshot": 0, "eval": 0} for intent in intents}
    eval_picks: list[SnipsUtterance] = []
    eval_norms: set[str] = set()
    for intent in intents:
        pool = _unique(read_snips_file(snips_dir / f"validate_{intent}.json"))
        picks = rng.sample(pool, min(eval_per_intent, len(pool)))
        eval_picks.extend(picks)
        eval_norms.update(normalize_answer(u.text) for u in picks)
        per_intent[intent]["eval"] = len(picks)

    train_picks: list[SnipsUtterance] = []
    fewshot_by_intent: list[list[SnipsUtterance]] = []
    used: set[str] = set()
    dropped_overlap = dropped_duplicates = 0
    for intent in intents:
        pool = read_snips_file(snips_dir / f"train_{intent}_full.json")
        rng.shuffle(pool)
        train: list[SnipsUtterance] = []
        fewshot: list[SnipsUtterance] = []
        for utterance in pool:
            if len(train) >= train_per_intent and len(fewshot) >= fewshot_per_intent:
                break
            norm = normalize_answer(utterance.text)
            if norm in eval_norms:
                dropped_overlap += 1
                continue
            if norm in used:
                dropped_duplicates += 1
                continue
            used.add(norm)
            (train if len(train) < train_per_intent else fewshot).append(utterance)
        train_picks.extend(train)
        fewshot_by_intent.append(fewshot)
        per_intent[intent]["train"], per_intent[intent]["fewshot"] = len(train), len(fewshot)

    rng.shuffle(train_picks)
    rng.shuffle(eval_picks)
    # Round-robin by intent: a strategy showing the first k few-shot examples then sees k different intents.
    fewshot_picks = [group[i] for i in range(max(map(len, fewshot_by_intent), default=0))
                     for group in fewshot_by_intent if i < len(group)]

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("train.jsonl", "fewshot.jsonl", "eval.jsonl", "schema.json",
                                               "system_prompt.txt")}
    write_jsonl_atomic(paths["train.jsonl"], (
        {"id": f"snips-train-{u.intent}-{u.index:04d}",
         "messages": [{"role": "system", "content": system_prompt}, {"role": "user", "content": u.text},
                      {"role": "assistant", "content": u.target_json()}],
         "label": u.intent}
        for u in train_picks))
    write_jsonl_atomic(paths["fewshot.jsonl"], ({"question": u.text, "answer": u.target_json()}
                                                 for u in fewshot_picks))
    write_jsonl_atomic(paths["eval.jsonl"], (
        {"id": f"snips-{u.intent}-{u.index:03d}", "question": u.text, "expected_json": u.target(), "schema": schema,
         "label": u.intent, "tags": ["snips", u.intent]}
        for u in eval_picks))
    write_text_atomic(paths["schema.json"], json.dumps(schema, indent=2) + "\n")
    write_text_atomic(paths["system_prompt.txt"], system_prompt + "\n")
    return SnipsSplit(
        out_dir=out_dir, intents=intents, train=len(train_picks), fewshot=len(fewshot_picks), eval=len(eval_picks),
        per_intent=per_intent, dropped_overlap=dropped_overlap, dropped_duplicates=dropped_duplicates,
        train_path=paths["train.jsonl"], fewshot_path=paths["fewshot.jsonl"], eval_path=paths["eval.jsonl"],
        schema_path=paths["schema.json"], system_prompt_path=paths["system_prompt.txt"],
    )


def _unique(utterances: list[SnipsUtterance]) -> list[SnipsUtterance]:
    seen: set[str] = set()
    kept = []
    for utterance in utterances:
        norm = normalize_answer(utterance.text)
        if norm not in seen:
            seen.add(norm)
            kept.append(utterance)
    return kept


def _read_snips_text(path: Path) -> str:
    return read_text(path, decode=_decode_cesu8_emoji)


def _decode_cesu8_emoji(data: bytes) -> str:
    # train_PlayMusic_full.json stores an emoji as two separately UTF-8-encoded surrogates (CESU-8):
    # let them through, then pair them back up into the real character.
    text = data.decode("utf-8", errors="surrogatepass")
    return text.encode("utf-16", errors="surrogatepass").decode("utf-16", errors="replace")
