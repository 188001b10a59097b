"""The bench's plan (what gets built, what is skipped and why, bad inputs caught before any long work), the
adapter's reuse rule, and how a bench run's replayed hit rate reaches the cost model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptlab.bench import adapter as adapter_module
from adaptlab.bench.adapter import adapter_fingerprint, ensure_adapter
from adaptlab.bench.plan import bench_strategies, plan_bench
from adaptlab.config import (
    CachedStrategyConfig,
    FinetunedRagStrategyConfig,
    FinetunedStrategyConfig,
    load_config,
)
from adaptlab.cost.evidence import evidence_of, load_run
from adaptlab.errors import ConfigError
from adaptlab.eval.harness import CaseResult
from adaptlab.eval.results import RunResult, StrategyResult, Timing, TrafficHitRate, family_of
from adaptlab.project import Project

CASE = {"question": "What is the capital of France?", "answers": ["Paris"]}
TRAIN = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _inputs(folder: Path) -> None:
    (folder / "docs").mkdir()
    (folder / "docs" / "a.txt").write_text("Paris is the capital of France.")
    (folder / "cases.jsonl").write_text(json.dumps(CASE) + "\n")
    (folder / "train.jsonl").write_text(json.dumps(TRAIN) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"question": "capital of France?"}) + "\n")
    (folder / "workload.toml").write_text("[workload]\nqueries_per_day = 100\n")


def _config(folder: Path, bench: str, extra: str = ""):
    path = folder / "adaptlab.toml"
    path.write_text(f'home = "home"\n{extra}\n[bench]\n{bench}\n')
    return load_config(path)


def test_everything_given_builds_all_four_strategies_each_with_a_cached_variant(tmp_path: Path) -> None:
    _inputs(tmp_path)
    config = _config(tmp_path, 'documents = ["docs"]\ncases = "cases.jsonl"\ntrain = "train.jsonl"\n'
                               'query_log = "queries.jsonl"\nworkload = "workload.toml"')
    plan = plan_bench(config)
    assert plan.strategies == ["prompt", "rag", "finetuned", "finetuned_rag"]
    assert plan.needs_adapter == ["finetuned", "finetuned_rag"]
    assert plan.skipped == []
    assert plan.measured() == ["prompt", "prompt+cache", "rag", "rag+cache", "finetuned", "finetuned+cache",
                               "finetuned_rag", "finetuned_rag+cache"]
    assert plan.cases == tmp_path / "cases.jsonl"  # relative to the config file, not the working directory

    strategies = bench_strategies(config, plan, tmp_path / "adapter.gguf")
    assert isinstance(strategies["finetuned"], FinetunedStrategyConfig)
    assert strategies["finetuned"].adapter == str(tmp_path / "adapter.gguf")
    assert strategies["finetuned"].system_prompt == config.strategies["prompt"].system_prompt
    assert isinstance(strategies["finetuned_rag"], FinetunedRagStrategyConfig)
    assert strategies["finetuned_rag"].adapter == str(tmp_path / "adapter.gguf")
    cached = strategies["rag+cache"]
    assert isinstance(cached, CachedStrategyConfig) and cached.wraps == "rag"


def test_missing_inputs_skip_strategies_with_the_reason(tmp_path: Path) -> None:
    _inputs(tmp_path)
    plan = plan_bench(_config(tmp_path, 'cases = "cases.jsonl"\nworkload = "workload.toml"'))
    assert plan.strategies == ["prompt"]
    assert plan.measured() == ["prompt"]  # no query log: no cached variants
    reasons = {s.name: s.reason for s in plan.skipped}
    assert "bench.documents" in reasons["rag"]
    assert "bench.train" in reasons["finetuned"]
    assert set(reasons) == {"rag", "finetuned", "finetuned_rag"}


def test_a_configured_adapter_is_used_without_training(tmp_path: Path) -> None:
    _inputs(tmp_path)
    config = _config(tmp_path, 'cases = "cases.jsonl"\nworkload = "workload.toml"\nstrategies = ["finetuned"]',
                     '[strategies.finetuned]\nkind = "finetuned"\nadapter = "mine.gguf"\n')
    plan = plan_bench(config)
    assert plan.strategies == ["finetuned"] and plan.needs_adapter == []
    assert bench_strategies(config, plan, None)["finetuned"].adapter == "mine.gguf"


@pytest.mark.parametrize(("bench", "needle"), [
    ('workload = "workload.toml"', "bench.cases is not set"),
    ('cases = "cases.jsonl"', "bench.workload is not set"),
    ('cases = "nope.jsonl"\nworkload = "workload.toml"', "bench.cases = 'nope.jsonl': no such file"),
    ('cases = "cases.jsonl"\nworkload = "workload.toml"\ndocuments = ["missing"]', "bench.documents"),
    ('cases = "docs"\nworkload = "workload.toml"', "is a folder"),
    ('cases = "cases.jsonl"\nworkload = "workload.toml"\nstrategies = ["fancy"]', "no strategy named 'fancy'"),
    ('cases = "cases.jsonl"\nworkload = "workload.toml"\nstrategies = ["rag+cache"]', "cached strategy"),
    ('cases = "cases.jsonl"\nworkload = "workload.toml"\nstrategies = ["rag"]', "nothing to measure"),
])
def test_bad_bench_settings_fail_fast_naming_the_setting(tmp_path: Path, bench: str, needle: str) -> None:
    _inputs(tmp_path)
    with pytest.raises(ConfigError, match=None) as error:
        plan_bench(_config(tmp_path, bench))
    assert needle in str(error.value)
    assert str(tmp_path / "adaptlab.toml") in str(error.value) or "bench" in str(error.value)


def test_adapter_fingerprint_follows_data_and_settings_not_threads(tmp_path: Path) -> None:
    _inputs(tmp_path)
    project = Project(_config(tmp_path, ""))
    train = tmp_path / "train.jsonl"
    base = adapter_fingerprint(project, train)
    assert adapter_fingerprint(project, train) == base
    project.config.train.threads = 2
    assert adapter_fingerprint(project, train) == base  # speed, not the adapter
    project.config.train.max_steps = 7
    changed_settings = adapter_fingerprint(project, train)
    assert changed_settings != base
    train.write_text(json.dumps(TRAIN) + "\n" + json.dumps(TRAIN).replace("hello", "hey") + "\n")
    assert adapter_fingerprint(project, train) not in (base, changed_settings)


def test_adapter_is_trained_once_and_an_interrupted_build_is_redone(tmp_path: Path, monkeypatch) -> None:
    _inputs(tmp_path)
    project = Project(_config(tmp_path, ""))
    calls: list[Path] = []

    class FakeReport:  # stands in for a real training run: this test is about the reuse rule
        def __init__(self, folder: Path) -> None:
            self.gguf_adapter = folder / "adapter.gguf"
            self.gguf_adapter.write_bytes(b"GGUF")

        def to_dict(self) -> dict:
            return {"steps": 3, "train_examples": 1, "seconds": 12.0, "train_loss": [[3, 0.5]]}

    def fake_training(project, request, **_):
        calls.append(request.run_dir)
        request.run_dir.mkdir(parents=True, exist_ok=True)
        return FakeReport(request.run_dir)

    monkeypatch.setattr("adaptlab.finetune.session.run_training", fake_training)
    train = tmp_path / "train.jsonl"
    first = ensure_adapter(project, train)
    assert not first.reused and len(calls) == 1 and first.gguf_path.read_bytes() == b"GGUF"
    second = ensure_adapter(project, train)
    assert second.reused and second.gguf_path == first.gguf_path and len(calls) == 1
    assert "reused" in second.detail and "3 steps" in second.detail

    (first.gguf_path.parent / adapter_module.MARKER).unlink()  # as if killed before the marker was written
    (first.gguf_path.parent / "leftover.bin").write_bytes(b"x")
    third = ensure_adapter(project, train)
    assert not third.reused and len(calls) == 2
    assert not (first.gguf_path.parent / "leftover.bin").exists()


def test_a_bench_runs_replayed_hit_rate_prices_the_cache(tmp_path: Path) -> None:
    case = CaseResult(case_id="c1", repeat=0, seed=0, question="q", expected="a", answer="a", refused=False,
                      latency_ms=10.0, prompt_tokens=100, completion_tokens=10, cache_status="miss", cited=[],
                      retrieved=[], scores={"token_f1": 1.0})
    timing = Timing(seconds_per_case=0.01, latency_ms_p50=10.0, latency_ms_p95=10.0, prompt_tokens_mean=100,
                    completion_tokens_mean=10)

    def entry(name: str, params: dict, **extra) -> StrategyResult:
        family, cached, wraps = family_of(params)
        return StrategyResult(name=name, run_id=name, params=params, family=family, cached=cached, wraps=wraps,
                              metrics={}, timing=timing, cache_split={}, cases=[case], **extra)

    result = RunResult(run_id="b1", created="2026-12-06T00:00:00+00:00", cases_path="cases.jsonl",
                       cases_sha256="0" * 64, n_cases=1, repeats=1, seed=0, confidence=0.95, significance=0.05,
                       k=5, warnings=[], strategies=[
                           entry("prompt", {"kind": "prompt"}),
                           entry("prompt+cache", {"kind": "cached", "wraps": "prompt", "inner": {"kind": "prompt"}},
                                 traffic_hit_rate=TrafficHitRate(value=0.4, low=0.3, high=0.5, n=100,
                                                                 source="replayed over q.jsonl"))])
    path = tmp_path / "results.json"
    path.write_text(result.to_json())
    for run in (evidence_of(result), load_run(path)):  # in process (the bench) and from the file (advise --from)
        cached = run.strategy("prompt+cache")
        assert cached is not None and cached.hit_rate == 0.4 and cached.hit_rate_source == "replayed over q.jsonl"
        prompt = run.strategy("prompt")
        assert prompt is not None and prompt.hit_rate is None and prompt.family == "prompt"


def test_the_built_in_finetuned_strategy_keeps_the_prompt_strategys_output_constraint(tmp_path: Path) -> None:
    _inputs(tmp_path)
    (tmp_path / "schema.json").write_text('{"type": "object"}')
    bench = ('cases = "cases.jsonl"\ntrain = "train.jsonl"\nworkload = "workload.toml"\n'
             'strategies = ["prompt", "finetuned"]')
    constrained = _config(tmp_path, bench, '[strategies.prompt]\nkind = "prompt"\njson_schema_path = "schema.json"\n')
    section = bench_strategies(constrained, plan_bench(constrained), tmp_path / "a.gguf")["finetuned"]
    assert isinstance(section, FinetunedStrategyConfig) and section.json_schema_path == "schema.json"
    assert section.few_shot_k == 0  # examples are what fine-tuning replaces; the output constraint is not
    free = _config(tmp_path, bench + "\nfinetuned_keeps_output_constraint = false",
                   '[strategies.prompt]\nkind = "prompt"\njson_schema_path = "schema.json"\n')
    assert bench_strategies(free, plan_bench(free), tmp_path / "a.gguf")["finetuned"].json_schema_path == ""
