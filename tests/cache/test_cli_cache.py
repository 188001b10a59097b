"""The cache through the real commands and real model: eval a cached strategy, stats, re-ingest, clear."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_adaptlab as adaptlab
from conftest import write_config

CONFIG = """
[generator]
max_tokens = 8

[strategies.cached_rag]
kind = "cached"
wraps = "rag"
"""


def test_eval_stats_reingest_and_clear(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "clinic.txt").write_text("Clinic hours\nThe clinic opens at 9 am on weekdays.\n", encoding="utf-8")
    (docs / "parking.txt").write_text("Parking\nVisitors park free of charge in lot B.\n", encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"question": "When does the clinic open?", "answers": ["9 am"]}) + "\n"
                     + json.dumps({"question": "Where do visitors park?", "answers": ["lot B"]}) + "\n")
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home", CONFIG)
    assert adaptlab(config, "ingest", str(docs)).returncode == 0

    run = adaptlab(config, "eval", "-s", "cached_rag", "--cases", str(cases), "--repeats", "2", "--json")
    assert run.returncode == 0, run.stderr
    metrics = json.loads(run.stdout)["strategies"][0]["metrics"]
    assert metrics["cache_hit_rate"]["value"] == 0.5

    stats = json.loads(adaptlab(config, "cache", "stats", "--json").stdout)
    assert stats["entries"] == 2 and stats["hits"] == 2 and stats["misses"] == 2 and stats["tokens_saved"] > 0

    (docs / "clinic.txt").write_text("Clinic hours\nThe clinic opens at 10 am on weekdays.\n", encoding="utf-8")
    reingest = adaptlab(config, "ingest", str(docs))
    assert reingest.returncode == 0 and "invalidated" in reingest.stdout, reingest.stdout
    after = json.loads(adaptlab(config, "cache", "stats", "--json").stdout)["entries"]
    assert after < 2

    wrong = adaptlab(config, "cache", "clear")
    assert wrong.returncode != 0 and "--source" in wrong.stderr
    cleared = adaptlab(config, "cache", "clear", "--all")
    assert cleared.returncode == 0 and f"{after} cached answer(s) deleted" in cleared.stdout
    assert json.loads(adaptlab(config, "cache", "stats", "--json").stdout)["entries"] == 0
