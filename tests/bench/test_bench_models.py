"""Models as a dimension of the bench: one config with two generators — the bundled GGUF in process and an
OpenAI-compatible server started by the test (llama-cpp-python's own server) priced at a catalog API model — and
three strategies, `prompt`, `rag` and `prompt@hosted`, measured by one harness, each priced on its own
deployment, ranked together in one report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptlab.bench.plan import bench_strategies, plan_bench
from adaptlab.bench.run import run_bench
from adaptlab.config import load_config
from adaptlab.cost.catalog import load_catalog
from adaptlab.errors import ConfigError

CASES = [("What is the capital of France?", "Paris"), ("What do bees make?", "honey"),
         ("Which planet do we live on?", "Earth")]


def write_bench(folder: Path, base_url: str, strategies: str = '["prompt", "rag", "prompt@hosted"]') -> Path:
    (folder / "docs").mkdir(exist_ok=True)
    (folder / "docs" / "facts.txt").write_text("Paris is the capital of France. Bees make honey. We live on "
                                               "the planet Earth.", encoding="utf-8")
    (folder / "cases.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "question": q, "answers": [a]}) + "\n"
                                                for i, (q, a) in enumerate(CASES)), encoding="utf-8")
    (folder / "workload.toml").write_text(
        "[workload]\nqueries_per_day = 1000\n[serving]\nmode = 'self_hosted'\ngpu_usd_per_hour = 2.0\n"
        "use_measured_latency = true\n", encoding="utf-8")
    config = folder / "adaptlab.toml"
    config.write_text(f'''home = "home"
[runtime]
threads = 1
[generator]
max_tokens = 16
[generators.hosted]
backend = "openai"
base_url = "{base_url}"
model = "smollm2"
max_tokens = 16
price_api_model = "openai/gpt-4o-mini"
[embedder]
backend = "hash"
[answer]
min_relevance = -1.0
[tracking]
enabled = false
[bench]
documents = ["docs"]
cases = "cases.jsonl"
workload = "workload.toml"
strategies = {strategies}
''', encoding="utf-8")
    return config


def test_a_bench_over_two_models_ranks_every_strategy_priced_on_its_own_deployment(llama_server: str,
                                                                                      tmp_path: Path) -> None:
    outcome = run_bench(load_config(write_bench(tmp_path, llama_server)), out_dir=tmp_path / "report")
    results = outcome.results
    assert [s.name for s in results.strategies] == ["prompt", "rag", "prompt@hosted"]
    assert [s.generator for s in results.strategies] == ["default", "default", "hosted"]
    assert results.strategy("prompt@hosted").params["model"].startswith("openai:smollm2@")
    assert set(results.generators) == {"default", "hosted"}
    assert results.generators["hosted"].price_api_model == "openai/gpt-4o-mini"
    assert all(len(s.cases) == len(CASES) and all(c.error is None for c in s.cases) for s in results.strategies)

    advice = results.advice
    assert advice is not None
    assert {r.name for r in advice.strategies} == {"prompt", "rag", "prompt@hosted"}  # one ranking for all
    hosted = advice.ranked("prompt@hosted")
    local = advice.ranked("prompt")
    assert hosted is not None and local is not None
    price = load_catalog().api_model("openai/gpt-4o-mini")
    per_answer = (hosted.tco.prompt_tokens * price.input_per_mtok
                  + hosted.tco.completion_tokens * price.output_per_mtok) / 1e6
    assert hosted.tco.usd_per_answer == pytest.approx(per_answer, rel=1e-6)  # its tokens at the API's prices
    assert local.tco.usd_per_answer != pytest.approx(per_answer)  # the local one: measured latency at $2/h
    assert any("strategies on hosted" in line for line in advice.provenance)

    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert page.count("prompt@hosted") >= 3  # ranking, charts and tables


def test_bench_entries_naming_a_missing_generator_fail_before_any_work(tmp_path: Path) -> None:
    config = load_config(write_bench(tmp_path, "http://127.0.0.1:9/v1", '["prompt", "rag@nowhere"]'))
    with pytest.raises(ConfigError, match=r"'rag@nowhere' names generator 'nowhere'.*known: hosted"):
        plan_bench(config)


def test_an_entry_on_another_generator_copies_the_strategy_with_that_generator(tmp_path: Path) -> None:
    config = load_config(write_bench(tmp_path, "http://127.0.0.1:9/v1", '["rag", "rag@hosted"]'))
    plan = plan_bench(config)
    strategies = bench_strategies(config, plan, None)
    assert strategies["rag@hosted"].generator == "hosted" and strategies["rag"].generator == ""
