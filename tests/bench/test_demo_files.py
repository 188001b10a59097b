"""The files the demo writes for each task, checked without running the bench: every config plans cleanly, and
the knowledge task's hybrid config measures finetuned_rag on training data disjoint from its eval cases."""

from __future__ import annotations

import json
from pathlib import Path

from adaptlab.bench.plan import plan_bench
from adaptlab.config import load_config
from adaptlab.demo import QUICK, prepare_intents, prepare_knowledge


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_knowledge_task_also_writes_a_hybrid_config_with_disjoint_training_data(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    default = plan_bench(load_config(prepare_knowledge(folder, QUICK, threads=1)))
    assert default.strategies == ["prompt", "rag"] and default.train is None  # the demo's own run stays short
    hybrid = plan_bench(load_config(folder / "hybrid.toml"))
    assert hybrid.strategies == ["rag", "finetuned_rag"] and hybrid.needs_adapter == ["finetuned_rag"]
    assert hybrid.skipped == [] and hybrid.train == folder / "data" / "train.jsonl"
    asked = {case["question"] for case in _lines(folder / "data" / "cases.jsonl")}
    train = _lines(folder / "data" / "train.jsonl")
    assert train and not asked & {example["messages"][0]["content"] for example in train}


def test_the_intents_task_probes_forgetting_with_the_knowledge_questions(tmp_path: Path) -> None:
    prepare_knowledge(tmp_path / "knowledge", QUICK, threads=1)
    config = load_config(prepare_intents(tmp_path / "intents", QUICK, threads=1))
    plan = plan_bench(config)
    assert plan.forgetting_cases == tmp_path / "intents" / "data" / "probe.jsonl"
    probe = _lines(plan.forgetting_cases)
    assert len(probe) == QUICK.probe_cases and all(case["answers"] for case in probe)
    assert config.bench.learning_curve == list(QUICK.learning_curve)
