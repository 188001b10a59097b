"""The two 12-month TCO scenarios of the article "Fine-Tuning vs RAG: Which Is More Cost-Effective in 2026?",
reproduced from the inputs it states (examples/workloads/finetune-vs-rag-*.toml, priced with the shipped catalog).
docs/measured.md shows these figures next to the article's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ADAPTLAB_BIN

from adaptlab.cost.advise import advise
from adaptlab.cost.catalog import load_catalog
from adaptlab.cost.inputs import build_scenario
from adaptlab.cost.workload import load_workload

WORKLOADS = Path(__file__).resolve().parents[2] / "examples" / "workloads"


def totals(name: str) -> dict[str, float]:
    advice = advise(build_scenario(load_workload(WORKLOADS / name), load_catalog()), with_sensitivity=False)
    return {r.name: r.tco.total for r in advice.ranked}


def test_support_bot_at_1m_queries_a_day_matches_the_article():
    cost = totals("finetune-vs-rag-support-bot.toml")
    # The article: fine-tuning ~$4,400 (one-time $200 + 12 × ~$350 inference).
    assert cost["finetuned"] == pytest.approx(4400, rel=0.10)
    # The article: RAG ~$6,000–8,000 (+40–80% inference for ~500 context tokens, vector DB, embedding API).
    assert 6000 <= cost["rag"] <= 8000
    assert cost["finetuned"] < cost["rag"]  # "Fine-tuning wins over 12 months in high-volume scenarios"


def test_internal_knowledge_base_at_10k_queries_a_day_keeps_the_articles_order():
    cost = totals("finetune-vs-rag-internal-kb.toml")
    assert 500 <= cost["rag"] <= 800  # the article: ~$500–800
    # The article: ~$350. Ours is far lower: the article keeps its $200 one-time fine-tune and charges 3.6× more per
    # query than in its own 1M/day scenario; we price the 4 H100 hours it states and per-token GPU time.
    assert cost["finetuned"] < 350
    assert cost["finetuned"] < cost["rag"]  # "Still fine-tuning wins, but the gap is smaller"
    # The gap is smaller in dollars, as in the article (in ratio it grows: fixed vector DB hosting dominates RAG here).
    support = totals("finetune-vs-rag-support-bot.toml")
    assert cost["rag"] - cost["finetuned"] < support["rag"] - support["finetuned"]


def test_advise_cli_on_both_article_scenarios(tmp_path: Path):
    for name in ("finetune-vs-rag-support-bot", "finetune-vs-rag-internal-kb"):
        out = tmp_path / name
        result = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "advise", "--workload",
                                 str(WORKLOADS / f"{name}.toml"), "--out", str(out)],
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr
        assert "estimates" in result.stdout and "Recommendation:" in result.stdout
        data = json.loads((out / "advice.json").read_text())
        assert data["estimate"] is True and data["recommendation"]
        assert {s["name"] for s in data["strategies"]} >= {"finetuned", "rag", "finetuned_rag"}
        assert "prompt" not in {s["name"] for s in data["strategies"]}  # workload.consider leaves it out
        for chart in ("tco_by_month.svg", "break_even.svg", "quality_vs_cost.svg"):
            assert (out / chart).read_text().lstrip().startswith(("<?xml", "<svg"))
        assert "| rank | strategy |" in (out / "advice.md").read_text()


def test_advise_cli_errors_are_clear(tmp_path: Path):
    bad = tmp_path / "w.toml"
    bad.write_text("[workload]\nqueries_per_day = 10\n[serving]\ngpu = 'nvidia/h9000'\n")
    result = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "advise", "--workload", str(bad)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nvidia/h9000" in result.stderr
    missing_run = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "advise", "--workload",
                                  str(WORKLOADS / "finetune-vs-rag-internal-kb.toml"), "--from", "nope"],
                                 capture_output=True, text=True, timeout=300, check=False)
    assert missing_run.returncode != 0 and "no bench run here" in missing_run.stderr


def test_advise_predicts_the_cache_hit_rate_from_a_query_log(tmp_path: Path):
    questions = [f"What are the opening hours of branch {i}?" for i in range(10)]
    log = tmp_path / "queries.jsonl"
    log.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions + questions), encoding="utf-8")
    workload = tmp_path / "w.toml"
    workload.write_text("[workload]\nqueries_per_day = 50000\nconsider = ['rag']\n"
                        "[serving]\ngpu_usd_per_hour = 1.0\n[cache]\nquery_log = 'queries.jsonl'\nsemantic = false\n")
    result = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "advise", "--workload", str(workload),
                             "--json", "--no-charts"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    cached = next(s for s in json.loads(result.stdout)["strategies"] if s["name"] == "rag+cache")
    assert cached["hit_rate"] == pytest.approx(0.5)  # every question asked twice: the second asking hits
    assert cached["hit_rate_source"] == "predicted from queries.jsonl, 20 queries"
