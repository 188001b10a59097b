"""`adaptlab cache sweep | analyze | prompt-sim` through the command line, with the real MiniLM embedder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ADAPTLAB_BIN
from typer.testing import CliRunner

from adaptlab.cli.main import app
from adaptlab.logs import CallLog

PAIRS = [
    ("What is the incubation period of COVID-19?", "How long is the incubation period for COVID-19?", True),
    ("What are the symptoms of COVID-19?", "Which symptoms does COVID-19 cause?", True),
    ("How do I reset my password?", "How can I change my password if I forgot it?", True),
    ("Does hand washing prevent infection?", "Can washing your hands stop infection?", True),
    ("Is ibuprofen safe for COVID patients?", "Is ibuprofen not safe for COVID patients?", False),
    ("What is the dose for 5 year olds?", "What is the dose for 12 year olds?", False),
    ("How do I reset my password?", "What is the capital of France?", False),
    ("What is the mortality rate of MERS?", "How do I cook rice?", False),
]


@pytest.fixture
def runner(monkeypatch, minilm) -> CliRunner:
    """The commands build the project's configured embedder; hand them the session's already-loaded MiniLM."""
    monkeypatch.setattr("adaptlab.embed.factory.create_embedder", lambda config: minilm)
    return CliRunner()


def test_sweep_prints_a_table_and_writes_json_and_html(tmp_path: Path, runner: CliRunner) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question1": a, "question2": b, "duplicate": d}) + "\n"
                             for a, b, d in PAIRS), encoding="utf-8")
    home = tmp_path / "home"
    shown = runner.invoke(app, ["--home", str(home), "cache", "sweep", "--pairs", str(pairs),
                                "--target-false-hit-rate", "0.5"])
    assert shown.exit_code == 0, shown.output
    assert "cos ≥" in shown.output and "false-hit rate" in shown.output and "Recommended" in shown.output
    assert "0.50" in shown.output and "0.95" in shown.output and "0.93" not in shown.output  # every 0.05
    data = json.loads((home / "cache-sweep" / "sweep.json").read_text(encoding="utf-8"))
    assert (home / "cache-sweep" / "sweep.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert data["n_pairs"] == 8 and data["n_duplicates"] == 4 and len(data["rows"]) == 100
    negated = next(r for r in data["rows"] if r["threshold"] == 0.99 and not r["guard"])
    assert negated["false_hit_rate"]["k"] == 1  # the negated question, cosine 0.995, even at 0.99
    assert next(r for r in data["rows"] if r["threshold"] == 0.99 and r["guard"])["false_hit_rate"]["k"] == 0
    # 4 non-duplicates and none hit: the Wilson upper bound 0.49 meets a 50% target at every threshold.
    assert data["recommended_threshold_guard"] == 0.5 and data["recommended_threshold"] is None
    assert "with the guard: 0.50" in shown.output

    as_json = runner.invoke(app, ["--home", str(home), "cache", "sweep", "--pairs", str(pairs), "--json",
                                  "--grid", "0.8:0.9:0.05", "--out", str(tmp_path / "elsewhere")])
    assert as_json.exit_code == 0, as_json.output
    assert [r["threshold"] for r in json.loads(as_json.stdout)["rows"]] == [0.8, 0.85, 0.9] * 2
    assert (tmp_path / "elsewhere" / "sweep.html").is_file()


def test_analyze_reports_rates_ttls_and_savings(tmp_path: Path, runner: CliRunner) -> None:
    log = tmp_path / "queries.csv"
    log.write_text("question,timestamp\n"
                   "What is the incubation period of COVID-19?,2025-03-01T09:00:00Z\n"
                   "How long is the incubation period for COVID-19?,2025-03-01T09:02:00Z\n"
                   "How do I reset my password?,2025-03-01T09:03:00Z\n"
                   "how do i reset my password,2025-03-01T12:00:00Z\n"
                   "What is the capital of France?,2025-03-02T09:00:00Z\n", encoding="utf-8")
    home = tmp_path / "home"
    result = runner.invoke(app, ["--home", str(home), "cache", "analyze", "--log", str(log), "--threshold", "0.9",
                                 "--ttl", "5m", "--ttl", "1d", "--prompt-tokens", "500", "--completion-tokens", "100",
                                 "--price-per-1k-tokens", "0.002", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_queries"] == 5 and data["exact_repeat_rate"]["k"] == 1 and data["near_duplicate_rate"]["k"] == 2
    five_min, one_day = data["ttl_results"]
    assert (five_min["ttl_seconds"], five_min["hits"], one_day["hits"]) == (300, 1, 2)  # 3 h later: 5 min expired
    assert one_day["tokens_saved"] == 1200 and one_day["money_saved"] == pytest.approx(0.0024)
    assert one_day["money_saved_per_month"] == pytest.approx(0.0024 * 30.4375)  # the log spans exactly one day
    assert data["tokens_source"] == "given" and "40.0% of 5 queries" in data["verdict"]

    # Tokens per query default to what the project's own LLM calls used.
    home.mkdir(exist_ok=True)
    calls = CallLog(home / "logs.db")
    calls.record("llm", prompt_tokens=700, completion_tokens=90)
    calls.close()
    table = runner.invoke(app, ["--home", str(home), "cache", "analyze", "--log", str(log)])
    assert table.exit_code == 0, table.output
    assert "Verdict:" in table.output and "above the 30% rule of thumb" in table.output
    assert "700 prompt + 90 completion (mean of 1 logged LLM calls)" in table.output
    assert "5 min" in table.output and "no expiry" in table.output


def test_prompt_sim(tmp_path: Path) -> None:
    args = ["cache", "prompt-sim", "--system-tokens", "2000", "--context-tokens", "500", "--question-tokens", "50",
            "--output-tokens", "200", "--input-price", "3", "--output-price", "15"]
    result = CliRunner().invoke(app, [*args, "--requests-per-hour", "60", "--hours", "0.1667", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    five_min = data["results"][0]
    assert (five_min["ttl_seconds"], five_min["requests"], five_min["writes"], five_min["reads"]) == (300, 10, 1, 9)
    assert five_min["cost_with_cache"] == pytest.approx(0.0594)
    # 60 requests/hour for a month, at the simulated per-request costs.
    assert five_min["cost_without_cache_per_month"] == pytest.approx(0.01065 * 60 * 730.5)
    assert [r["ttl_seconds"] for r in data["results"]] == [300, 3600]

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"question": f"q{i}", "ts": 1000 + 600 * i}) + "\n" for i in range(4)))
    sparse = CliRunner().invoke(app, [*args, "--log", str(log)])
    assert sparse.exit_code == 0, sparse.output
    assert "costs more than it saves" in sparse.output  # every 10 minutes: the 5-minute entry is always gone
    neither = CliRunner().invoke(app, args)
    assert neither.exit_code == 2 and "--requests-per-hour or --log" in neither.output


def test_bad_lines_fail_the_command_with_every_line_number(tmp_path: Path) -> None:
    """Through the real console script: messages, no traceback, non-zero exit (before any model loads)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"question1": "a?", "question2": "b?", "duplicate": true}\n'
                     '{"question1": "a?", "question2": "b?"}\n'
                     '{"question1": "a?", "question2": "b?", "duplicate": "perhaps"}\n', encoding="utf-8")
    log = tmp_path / "queries.csv"
    log.write_text("question,timestamp\nok?,2025-03-01T09:00:00Z\n,2025-03-01T09:01:00Z\nok?,noon\n",
                   encoding="utf-8")
    for args, lines in ((["sweep", "--pairs", str(pairs)], ["pairs.jsonl:2", "pairs.jsonl:3"]),
                        (["analyze", "--log", str(log)], ["queries.csv:3", "queries.csv:4"])):
        run = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "cache", *args], capture_output=True,
                             text=True, timeout=300, check=False)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert "2 bad lines (1 good" in run.stderr and all(line in run.stderr for line in lines), run.stderr
