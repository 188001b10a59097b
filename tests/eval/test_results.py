"""results.json as typed records: a run round-trips through its file unchanged, a format-1 file (the untyped dict
written before the records) still loads, and a file this version cannot read fails with a message that says why
and what to do."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from adaptlab.cost.evidence import load_run
from adaptlab.errors import InputError
from adaptlab.eval.harness import CaseResult, StrategyRun
from adaptlab.eval.results import (
    RESULTS_FORMAT_VERSION,
    EvalRunResult,
    StrategyResult,
    family_of,
    load_eval_result,
)
from adaptlab.types import Interval


def _case(case_id: str, status: str = "miss", f1: float | None = 1.0) -> CaseResult:
    return CaseResult(case_id=case_id, repeat=0, seed=7, question=f"question {case_id}", expected="yes",
                      answer="yes", refused=False, latency_ms=12.5, prompt_tokens=90, completion_tokens=8,
                      cache_status=status, cited=["a.md"], retrieved=["a.md", "b.md"], scores={"token_f1": f1})


def _run(name: str, params: dict, cases: list[CaseResult]) -> StrategyRun:
    return StrategyRun(name=name, params=params, results=cases, seconds=1.0, repeats=1, run_id=f"id-{name}",
                       metrics={"token_f1": Interval(0.5, 0.25, 0.75, len(cases)),
                                "groundedness": Interval(math.nan, math.nan, math.nan, 0)},
                       repeat_spread={})


def _result() -> EvalRunResult:
    plain = _run("rag", {"kind": "rag", "top_k": 4}, [_case("c1"), _case("c2", f1=None)])
    cached = _run("rag+cache", {"kind": "cached", "wraps": "rag", "inner": {"kind": "finetuned_rag"}},
                  [_case("c1", "hit"), _case("c2")])
    return EvalRunResult(run_id="r1", created="2026-12-06T00:00:00+00:00", cases_path="cases.jsonl",
                         cases_sha256="ab" * 32, n_cases=2, repeats=1, seed=7, confidence=0.95, significance=0.05,
                         k=5, warnings=["w"], strategies=[StrategyResult.of(plain, 5), StrategyResult.of(cached, 5)])


def test_a_run_round_trips_through_its_file(tmp_path: Path) -> None:
    result = _result()
    path = tmp_path / "results.json"
    path.write_text(result.to_json())
    data = json.loads(path.read_text())
    assert data["format_version"] == RESULTS_FORMAT_VERSION and data["kind"] == "adaptlab-eval"
    assert data["strategies"][0]["metrics"]["groundedness"]["value"] is None  # NaN: not measured, valid JSON
    loaded = load_eval_result(path)
    assert loaded == result.model_copy(update={"strategies": [
        s.model_copy(update={"metrics": {**s.metrics, "groundedness": s.metrics["groundedness"].model_copy(
            update={"value": None, "low": None, "high": None})}}) for s in result.strategies]})
    assert loaded.strategies[1].family == "finetuned_rag" and loaded.strategies[1].cached
    assert loaded.strategies[1].wraps == "rag" and loaded.strategies[1].hits == 1
    assert loaded.strategies[1].cache_split["token_f1"].hit_n == 1


def test_the_strategy_kinds_map_to_families_in_one_place() -> None:
    assert family_of({"kind": "finetuned_rag"}) == ("finetuned_rag", False, None)
    assert family_of({"kind": "cached", "wraps": "ft", "inner": {"kind": "finetuned"}}) == ("finetuned", True, "ft")
    assert family_of({"kind": "something-new"})[0] is None


def _format_1(result: EvalRunResult) -> dict:
    """The dict `adaptlab eval` wrote before the records: no kind, no version, no family on a strategy."""
    data = json.loads(result.to_json())
    for key in ("kind", "format_version", "training_seconds"):
        data.pop(key)
    for strategy in data["strategies"]:
        for key in ("family", "cached", "wraps", "traffic_hit_rate"):
            strategy.pop(key)
    return data


def test_a_format_1_file_still_loads_for_the_report_and_the_cost_model(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_format_1(_result())))
    loaded = load_eval_result(path)
    assert [s.family for s in loaded.strategies] == ["rag", "finetuned_rag"]
    evidence = load_run(path)
    assert evidence.strategy("rag+cache") is not None and evidence.strategy("rag+cache").hit_rate == 0.5


def test_files_this_version_cannot_read_fail_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    data = json.loads(_result().to_json())
    path.write_text(json.dumps({**data, "format_version": 9}))
    with pytest.raises(InputError, match=r"results format 9; this adaptlab reads formats 1 and 2") as info:
        load_eval_result(path)
    assert "re-run" in str(info.value)
    data["strategies"][0]["timing"] = {"p50": 1}
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"not a valid results file: strategies\.0\.timing"):
        load_eval_result(path)
    path.write_text(json.dumps({**json.loads(_result().to_json()), "kind": "adaptlab-bench"}))
    with pytest.raises(InputError, match="not an eval run's"):
        load_eval_result(path)
