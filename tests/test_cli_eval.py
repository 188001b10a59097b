"""`adaptlab eval` through the real command, real model (SmolLM2 via llama.cpp), real MiniLM and LanceDB:
two strategies scored on COVID-QA cases, a regression check that fails the command, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import ADAPTLAB_BIN, write_config

ARTICLES = 4
CASES = 8


def adaptlab(config: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([ADAPTLAB_BIN, "--config", str(config), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_eval_two_strategies_then_a_regression_fails_the_command(tmp_path: Path, covid_dir: Path) -> None:
    questions = [json.loads(line) for line in (covid_dir / "questions.jsonl").read_text().splitlines()]
    articles = list(dict.fromkeys(q["gold_sources"][0] for q in questions))[:ARTICLES]
    docs = tmp_path / "corpus" / "articles"
    docs.mkdir(parents=True)
    for relative in articles:
        shutil.copy(covid_dir / relative, docs / Path(relative).name)
    # Cases spread over the articles, two per article.
    chosen = [q for a in articles for q in [q for q in questions if q["gold_sources"][0] == a][:2]][:CASES]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(q) + "\n" for q in chosen), encoding="utf-8")
    # Few tokens per answer keep the real model fast; quality is not the point here.
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home", "[generator]\nmax_tokens = 8\n")
    assert adaptlab(config, "ingest", str(docs)).returncode == 0

    first = adaptlab(config, "eval", "--strategy", "prompt", "--strategy", "rag", "--cases", str(cases), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    prompt_run, rag_run = report["strategies"]
    assert report["n_cases"] == CASES and report["cases_sha256"]
    assert rag_run["metrics"]["recall_at_5"]["value"] >= 0.75  # BM25 + MiniLM find most gold articles
    assert "recall_at_5" not in prompt_run["metrics"]
    for run in (prompt_run, rag_run):
        metrics = run["metrics"]
        assert metrics["token_f1"]["n"] == CASES and metrics["token_f1"]["low"] <= metrics["token_f1"]["value"]
        assert metrics["prompt_tokens"]["value"] > 0 and run["timing"]["seconds_per_case"] > 0
        # Every answer is streamed: its time to first token is measured (issue 21).
        assert 0 < run["timing"]["first_token_ms_p50"] <= run["timing"]["latency_ms_p95"]
    assert rag_run["metrics"]["prompt_tokens"]["value"] > prompt_run["metrics"]["prompt_tokens"]["value"]
    assert report["comparison"]["metrics"]["prompt_tokens"]["p_value"] < 0.05
    out_dir = tmp_path / "home" / "eval" / report["run_id"]
    assert (out_dir / "results.json").is_file() and (out_dir / "report.html").is_file()
    assert "first token p50 (ms)" in (out_dir / "report.html").read_text(encoding="utf-8")

    # The advisor prices this run's measured tokens and ranks by its measured quality (issue 6).
    workload = tmp_path / "workload.toml"
    workload.write_text("[workload]\nqueries_per_day = 5000\ncitations_required = true\n"
                        "[serving]\ngpu_usd_per_hour = 1.0\n[training]\nmeasured_gpu_hours = 1\n")
    advised = adaptlab(config, "advise", "--workload", str(workload), "--from", report["run_id"], "--json",
                       "--no-charts")
    assert advised.returncode == 0, advised.stderr
    advice = json.loads(advised.stdout)
    assert advice["estimate"] is False and advice["metric"] == "token_f1" and advice["recommendation"] == "rag"
    by_name = {s["name"]: s for s in advice["strategies"]}
    assert by_name["prompt"]["rank"] is None and "citations required" in by_name["prompt"]["excluded"][0]
    assert by_name["rag"]["tokens_measured"] and by_name["rag"]["quality"]["measured"]
    assert by_name["rag"]["tco"]["prompt_tokens"] == rag_run["timing"]["prompt_tokens_mean"]

    # Same index, same cases: no regression (greedy decoding is deterministic), and a readable table.
    same = adaptlab(config, "eval", "-s", "rag", "--cases", str(cases), "--compare", rag_run["run_id"])
    assert same.returncode == 0, same.stderr
    assert "recall@5" in same.stdout and "against baseline run" in same.stdout and "REGRESSION" not in same.stdout

    # Re-ingest with only one article left: retrieval recall collapses → significant regression → exit 1.
    for extra in sorted(docs.iterdir())[1:]:
        extra.unlink()
    assert adaptlab(config, "ingest", str(docs)).returncode == 0
    worse = adaptlab(config, "eval", "-s", "rag", "--cases", str(cases), "--compare", rag_run["run_id"])
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "REGRESSION" in worse.stdout and "recall@5" in worse.stdout


def test_eval_errors_are_clear(tmp_path: Path) -> None:
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home")
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"question": "ok?", "answers": ["yes"]}\n{"question": "typo?", "answer": "no"}\n')
    bad = adaptlab(config, "eval", "-s", "prompt", "--cases", str(cases))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "cases.jsonl:2" in bad.stderr and "answer" in bad.stderr
    cases.write_text('{"question": "ok?", "answers": ["yes"]}\n')
    unknown = adaptlab(config, "eval", "-s", "promt", "--cases", str(cases))
    assert unknown.returncode == 2 and "No strategy named 'promt'" in unknown.stderr
    missing = adaptlab(config, "eval", "-s", "prompt", "--cases", str(tmp_path / "nope.jsonl"))
    assert missing.returncode != 0 and "nope.jsonl" in missing.stderr and "Traceback" not in missing.stderr


def test_eval_prints_its_plan_and_max_cost_refuses_before_any_call(tmp_path: Path) -> None:
    from adaptlab.testing.endpoint import FlakyEndpoint

    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps({"id": f"c{i}", "question": f"Question {i}?", "answers": ["x"]}) + "\n"
                             for i in range(5)), encoding="utf-8")
    with FlakyEndpoint(latency_s=0.05) as endpoint:
        config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home",
                              f'[generator]\nbackend = "openai"\nbase_url = "{endpoint.base_url}"\n'
                              f'price_api_model = "openai/gpt-4o-mini"\n[embedder]\nbackend = "hash"\n'
                              f'[tracking]\nenabled = false\n')
        refused = adaptlab(config, "eval", "--strategy", "prompt", "--cases", str(cases), "--max-cost", "0")
        assert refused.returncode != 0
        assert "Plan" in refused.stderr and "5 calls" in refused.stderr
        assert "--max-cost" in refused.stderr and "raise --max-cost" in " ".join(refused.stderr.split())
        assert endpoint.stats.requests == 0
        ran = adaptlab(config, "eval", "--strategy", "prompt", "--cases", str(cases), "--max-cost", "5",
                       "--concurrency", "5", "--json")
        assert ran.returncode == 0, ran.stderr
        assert endpoint.stats.answered == 5 and endpoint.stats.max_in_flight > 1
        assert len(json.loads(ran.stdout)["strategies"][0]["cases"]) == 5


def test_an_eval_killed_halfway_and_resumed_answers_every_case_once(tmp_path: Path) -> None:
    import re
    import signal
    import time

    from adaptlab.eval.store import EvalStore
    from adaptlab.testing.endpoint import FlakyEndpoint

    n = 24
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps({"id": f"c{i:02d}", "question": f"Question number {i}?", "answers": ["x"]})
                             + "\n" for i in range(n)), encoding="utf-8")
    with FlakyEndpoint(latency_s=0.25) as endpoint:
        config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home",
                              f'[generator]\nbackend = "openai"\nbase_url = "{endpoint.base_url}"\n'
                              f'[embedder]\nbackend = "hash"\n[tracking]\nenabled = false\n')
        command = [ADAPTLAB_BIN, "--config", str(config), "eval", "--strategy", "prompt", "--cases", str(cases),
                   "--concurrency", "2"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while endpoint.stats.answered < n // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # no goodbye: only what was stored survives
        _, stderr = process.communicate(timeout=30)
        run_id = re.search(r"--resume (\w+)", " ".join(stderr.split()))
        assert run_id is not None, stderr  # printed before the first answer
        store = EvalStore(tmp_path / "home" / "logs.db")
        stored = store.eval_runs(run_id.group(1))[0]["results"]
        assert 0 < stored < n
        while endpoint.stats.in_flight:  # the killed process's last requests finish on the server's side
            time.sleep(0.05)
        before = endpoint.stats.answered
        resumed = subprocess.run([*command, "--resume", run_id.group(1), "--json"], capture_output=True, text=True,
                                 timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        asked_again = endpoint.stats.answered - before
    result = json.loads(resumed.stdout)
    ids = [c["case_id"] for c in result["strategies"][0]["cases"]]
    assert ids == [f"c{i:02d}" for i in range(n)]  # every case once, in order
    assert asked_again == n - stored  # only the missing ones were asked
