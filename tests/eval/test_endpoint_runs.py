"""Evals against an OpenAI-compatible endpoint over real HTTP (adaptlab.testing.endpoint on 127.0.0.1, the real
`openai` client): answers run concurrently with the same scores as one at a time, a flaky upstream (429 with
Retry-After, 500, requests held past the timeout) loses no case and the retries are counted, and an interrupted
run resumed with --resume answers every case exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import make_project

from adaptlab.config import GeneratorConfig
from adaptlab.eval.harness import CaseResult
from adaptlab.eval.session import EvalInterrupted, EvalRequest, evaluate
from adaptlab.eval.store import EvalStore
from adaptlab.models.openai_compat import OpenAIGenerator
from adaptlab.rag.index import ingest
from adaptlab.testing.endpoint import Faults, FlakyEndpoint
from adaptlab.testing.fakes import FakeGenerator, HashEmbedder

N_CASES = 24


def write_cases(path: Path, n: int = N_CASES) -> Path:
    rows = [{"id": f"c{i:02d}", "question": f"What is fact number {i} about the harbour bridge?",
             "answers": [f"fact {i}"], "gold_sources": ["docs/bridge.txt"]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def endpoint_project(home: Path, endpoint: FlakyEndpoint, **generator):
    config = GeneratorConfig(backend="openai", base_url=endpoint.base_url, model="flaky", **generator)
    project = make_project(home, embedder=HashEmbedder(64), answer={"min_relevance": -1.0},
                           generator=OpenAIGenerator(config), tracking={"enabled": False})
    project.config.generator = config  # what the run records and prices
    docs = home.parent / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "bridge.txt").write_text("The Harbour Bridge opened in 1932. It took six years to build.")
    ingest([docs], project.config, store=project.store, embedder=project.embedder)
    return project


def comparable(results: list[CaseResult]) -> list[tuple]:
    """Everything about an answer except how long it took and how often it was retried."""
    return [(r.case_id, r.repeat, r.seed, r.answer, r.refused, r.prompt_tokens, r.completion_tokens, r.cited,
             r.retrieved, {m: v for m, v in r.scores.items() if m != "latency_ms"}, r.error) for r in results]


def test_concurrent_answers_score_the_same_as_one_at_a_time_and_overlap(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl")
    with FlakyEndpoint(latency_s=0.2) as endpoint:
        project = endpoint_project(tmp_path / "home", endpoint)
        one = evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "one", concurrency=1))
        assert endpoint.stats.max_in_flight == 1
        many = evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "many", concurrency=8))
        assert endpoint.stats.max_in_flight == 8
    for a, b in zip(one.runs, many.runs, strict=True):
        assert comparable(a.results) == comparable(b.results)  # same answers, same order, same scores
        assert {m: v.value for m, v in a.metrics.items() if m != "latency_ms"} == \
               {m: v.value for m, v in b.metrics.items() if m != "latency_ms"}
    assert many.runs[0].seconds < one.runs[0].seconds / 3


def test_a_local_model_and_a_cache_answer_one_at_a_time_whatever_the_concurrency(tmp_path: Path) -> None:
    import threading

    class CountingGenerator(FakeGenerator):
        def __init__(self) -> None:
            super().__init__(max_parallel=1)
            self.in_flight = self.most = 0
            self.lock = threading.Lock()

        def chat(self, messages, **options):
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            time.sleep(0.01)
            try:
                return super().chat(messages, **options)
            finally:
                with self.lock:
                    self.in_flight -= 1

    generator = CountingGenerator()
    project = make_project(tmp_path / "home", embedder=HashEmbedder(64), generator=generator,
                           tracking={"enabled": False})
    report = evaluate(project, EvalRequest(["prompt"], write_cases(tmp_path / "cases.jsonl", 12),
                                           out_dir=tmp_path / "o", concurrency=8))
    assert generator.most == 1 and len(report.runs[0].results) == 12


def test_a_flaky_upstream_loses_no_case_and_the_retries_are_counted(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl")
    faults = Faults(rate_limited=0.2, server_error=0.1, stalled=0.05, stall_s=2.0)
    with FlakyEndpoint(latency_s=0.05, faults=faults) as endpoint:
        project = endpoint_project(tmp_path / "home", endpoint, timeout_s=0.5, max_retries=8)
        report = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "o", concurrency=6))
        stats = endpoint.stats
    run = report.runs[0]
    assert len(run.results) == N_CASES and all(r.error is None and r.answer for r in run.results)
    assert stats.rate_limited and stats.server_errors and stats.stalled  # every kind of fault happened
    assert sum(r.retries for r in run.results) == stats.rate_limited + stats.server_errors + stats.stalled
    assert any("model requests were retried" in w for w in report.warnings)
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert sum(c["retries"] for c in data["strategies"][0]["cases"]) == sum(r.retries for r in run.results)


def test_an_upstream_that_keeps_failing_is_a_scored_failure_that_names_the_fix(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", 3)
    with FlakyEndpoint(faults=Faults(rate_limited=1.0, retry_after_s=0.01)) as endpoint:
        project = endpoint_project(tmp_path / "home", endpoint, max_retries=2)
        report = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "o"))
    errors = [r.error for r in report.runs[0].results]
    assert all(e and "answered 429 (after 2 retries)" in e and "requests_per_minute" in e for e in errors)


def test_an_interrupted_eval_resumed_answers_every_case_exactly_once(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl")
    with FlakyEndpoint(latency_s=0.02) as endpoint:
        project = endpoint_project(tmp_path / "home", endpoint)
        answered: list[tuple[str, int]] = []

        def stop_halfway(name: str, done: int, total: int) -> None:
            if name == "rag" and done == total // 2:
                raise KeyboardInterrupt

        with pytest.raises(EvalInterrupted) as stopped:
            evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "o", concurrency=4),
                     progress=stop_halfway)
        eval_id = stopped.value.eval_id
        store = EvalStore(project.log_path)
        before = {run["strategy"]: run["results"] for run in store.eval_runs(eval_id)}
        assert before["prompt"] == N_CASES and N_CASES // 2 <= before["rag"] < N_CASES
        while endpoint.stats.in_flight:  # answers in flight at Ctrl-C finish unrecorded
            time.sleep(0.01)
        requests_before = endpoint.stats.answered

        report = evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "o", concurrency=4,
                                               resume=eval_id),
                          progress=lambda name, done, total: answered.append((name, done)))
        new_requests = endpoint.stats.answered - requests_before
    assert report.eval_id == eval_id
    assert new_requests == N_CASES - before["rag"]  # only the cases rag lacked were asked again
    for run in report.runs:
        keys = [(r.case_id, r.repeat) for r in run.results]
        assert len(keys) == len(set(keys)) == N_CASES  # every case answered once
        assert [r.case_id for r in run.results] == sorted(r.case_id for r in run.results)
    runs = store.eval_runs(eval_id)
    assert [(r["strategy"], r["status"], r["results"]) for r in runs] == [("prompt", "finished", N_CASES),
                                                                           ("rag", "finished", N_CASES)]
    with pytest.raises(Exception, match="no eval 'nope'"):
        evaluate(project, EvalRequest(["prompt"], cases, resume="nope"))


def test_the_plan_prices_the_run_and_max_cost_refuses_it_before_any_call(tmp_path: Path) -> None:
    from adaptlab.cost.catalog import load_catalog
    from adaptlab.cost.plan import check_budget, price_run
    from adaptlab.errors import InputError

    cases = write_cases(tmp_path / "cases.jsonl")
    with FlakyEndpoint() as endpoint:
        project = endpoint_project(tmp_path / "home", endpoint, price_api_model="openai/gpt-4o-mini")
        seen = []

        def refuse_above_a_cent(estimate) -> None:
            priced = price_run(estimate, project.config, load_catalog())
            seen.append(priced)
            check_budget(priced, 0.0001)

        with pytest.raises(InputError, match=r"--max-cost.*would cost about \$.*over the \$0\.00 allowed"):
            evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "o", concurrency=4,
                                          before_run=refuse_above_a_cent))
        assert endpoint.stats.requests == 0  # refused before asking anything
    (priced,) = seen
    prompt, rag = priced.strategies
    assert prompt.estimate.calls == rag.estimate.calls == N_CASES
    assert rag.estimate.prompt_tokens > prompt.estimate.prompt_tokens  # retrieved context counts
    assert prompt.usd is not None and prompt.usd > 0 and "openai/gpt-4o-mini" in prompt.source
    assert priced.usd == pytest.approx(prompt.usd + rag.usd)
    check_budget(priced, 10.0)  # under the budget: no error


def test_the_eta_uses_the_models_measured_answer_time_once_it_has_answered_here(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", 6)
    estimates = []
    with FlakyEndpoint(latency_s=0.1) as endpoint:
        project = endpoint_project(tmp_path / "home", endpoint)
        for out in ("first", "second"):
            evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / out, concurrency=3,
                                          before_run=estimates.append))
    first, second = (e.strategies[0] for e in estimates)
    assert not first.measured and first.seconds_per_call == 2.0  # never seen: the assumption, said as such
    assert second.measured and 0.1 <= second.seconds_per_call < 0.5
    assert second.eta_seconds == pytest.approx(6 * second.seconds_per_call / 3)
