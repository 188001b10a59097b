"""The eval report page (adaptlab.eval.html) rendered from typed run records."""

from __future__ import annotations

import re
from typing import Any

from adaptlab.eval.html import render_html
from adaptlab.eval.results import EvalRunResult

XSS = "<script>alert(1)</script> & more?"


def case(case_id: str = "c1", **changes: Any) -> dict[str, Any]:
    row = {"case_id": case_id, "repeat": 0, "seed": 0, "question": XSS, "expected": "Paris",
           "answer": 'Paris "<img src=x onerror=alert(1)>"', "refused": False, "latency_ms": 400.0,
           "prompt_tokens": 120, "completion_tokens": 30, "cache_status": "miss", "cited": ["a.md"],
           "retrieved": ["a.md", "b.md"], "scores": {"exact_match": 1.0, "f1": None}, "error": None}
    return row | changes


def paired(a: float | None, b: float | None, diff: float | None, low: float | None, high: float | None,
           p_value: float | None, *, significant: bool = False, regressed: bool = False) -> dict[str, Any]:
    return {"a": a, "b": b, "diff": diff, "low": low, "high": high, "p_value": p_value, "n": 20,
            "test": "paired bootstrap", "significant": significant, "regressed": regressed}


def sample_dict() -> dict[str, Any]:
    metric = {"value": 0.75, "low": 0.6, "high": 0.88, "n": 20, "description": "share of <exact> matches"}
    return {
        "format_version": 2, "kind": "adaptlab-eval",
        "run_id": "run-1", "created": "2025-01-02T03:04:05Z", "cases_path": "cases.jsonl",
        "cases_sha256": "ab" * 32, "n_cases": 2, "repeats": 1, "seed": 0, "confidence": 0.95,
        "significance": 0.05, "k": 5, "warnings": ["only 2 cases: intervals are wide"],
        "strategies": [
            {"name": "baseline", "run_id": "r-a", "params": {"kind": "prompt", "temperature": 0},
             "family": "prompt", "cached": False, "wraps": None,
             "metrics": {"exact_match": metric, "latency_score": {"value": 312.5, "low": 300.0, "high": 330.0,
                                                                    "n": 2, "description": "ms"}},
             "timing": {"seconds_per_case": 0.5, "latency_ms_p50": 400.0, "latency_ms_p95": 900.0,
                        "prompt_tokens_mean": 120.0, "completion_tokens_mean": 30.0},
             "cache_split": {}, "cases": [case()]},
            {"name": "rag<b>", "run_id": "r-b", "params": {}, "family": "rag", "cached": True, "wraps": "rag",
             "metrics": {"exact_match": {"value": None, "low": None, "high": None, "n": 0, "description": ""}},
             "timing": {"seconds_per_case": None, "latency_ms_p50": None, "latency_ms_p95": None,
                        "prompt_tokens_mean": None, "completion_tokens_mean": None},
             "cache_split": {"exact_match": {"hit": 1.0, "hit_n": 1, "miss": None, "miss_n": 0}}, "cases": []},
        ],
        "comparison": {"a": "baseline", "b": "rag<b>", "metrics": {
            "exact_match": paired(0.75, 0.9, 0.15, 0.02, 0.3, 0.0004, significant=True)}},
        "regression": {"baseline_run_id": "run-0", "strategy": "rag<b>", "metrics": {
            "exact_match": paired(0.9, 0.75, -0.15, -0.3, -0.02, 0.01, significant=True, regressed=True)}},
    }


def sample_record(**changes: Any) -> EvalRunResult:
    return EvalRunResult.model_validate(sample_dict() | changes)


def row(page: str, metric: str, section: str) -> str:
    """The <tr> of `metric` in the table after the heading that starts with `section`."""
    part = page[page.index(f"<h2>{section}"):]
    part = part[:part.index("</table>")]
    return next(r for r in re.findall(r"<tr[^>]*>.*?</tr>", part) if f">{metric}</th>" in r)


def test_render_html_escapes_and_is_self_contained() -> None:
    page = render_html(sample_record())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more?" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "rag&lt;b&gt;" in page and "<b>" not in page
    assert "http://" not in page and "https://" not in page and "src=" not in page.replace("img src=x", "")
    assert 'title="share of &lt;exact&gt; matches"' in page
    assert "0.750 [0.600, 0.880]" in page
    assert page.count("<svg") == 2  # exact_match has bars (0–1); latency_score (312.5) does not
    assert "only 2 cases: intervals are wide" in page and 'class="warnings"' in page
    assert "<details>" in page and "abababababab" in page


def test_render_html_same_page_after_a_json_round_trip() -> None:
    record = sample_record()
    assert render_html(EvalRunResult.model_validate_json(record.to_json())) == render_html(record)


def test_render_html_no_strategies_and_none_values() -> None:
    empty = sample_record(strategies=[], comparison=None, regression=None, warnings=[])
    page = render_html(empty)
    assert "No strategies" in page and "<h2>Metrics" not in page and "Per-case results" not in page
    assert "Comparison" not in page and "Regression" not in page and 'class="warnings"' not in page

    page = render_html(sample_record())
    metrics = row(page, "exact_match", "Metrics")
    assert re.search(r'<td class="num">n/a <span class="note">n=0</span><svg', metrics)  # value None
    timing = row(page, "rag&lt;b&gt;", "Timing")
    assert timing.count('<td class="num">n/a</td>') == 7  # every timing None
    assert "latency_score" in page and 'rag&lt;b&gt;: no per-case results' in page

    no_metrics = sample_dict()
    for strategy in no_metrics["strategies"]:
        strategy["metrics"] = {}
    no_metrics["comparison"]["metrics"] = {}
    page = render_html(EvalRunResult.model_validate(no_metrics))
    assert "No metrics were computed" in page and "No metrics to compare" in page


def test_render_html_many_cases() -> None:
    many = sample_dict()
    many["strategies"][0]["cases"] = [case(f"c{i}") for i in range(600)]
    page = render_html(EvalRunResult.model_validate(many))
    assert "first 500 of 600" in page and "c499<" in page and "c500<" not in page
    assert "baseline: 600 case results" in page


def test_render_html_comparison_and_regression_rows() -> None:
    data = sample_dict()
    data["comparison"]["metrics"]["f1<x>"] = paired(None, None, None, None, None, None)
    data["regression"]["metrics"]["f1"] = paired(0.5, 0.5, 0.0, -0.1, 0.1, 0.9, significant=False)
    page = render_html(EvalRunResult.model_validate(data))

    assert "<h2>Comparison: rag&lt;b&gt; − baseline</h2>" in page
    significant = row(page, "exact_match", "Comparison")
    assert significant.startswith('<tr class="significant">') and "+0.150 [+0.020, +0.300]" in significant
    assert "&lt;0.001" in significant and significant.endswith("<td>yes</td></tr>")
    plain = row(page, "f1&lt;x&gt;", "Comparison")
    assert plain.startswith("<tr><th>") and plain.endswith("<td>no</td></tr>")
    assert '<td class="num">n/a [n/a, n/a]</td>' not in plain and '<td class="num">n/a </td>' in plain

    assert "Regression check against <code>run-0</code>" in page
    regressed = row(page, "exact_match", "Regression")
    assert regressed.startswith('<tr class="regressed">') and "-0.150 [-0.300, -0.020]" in regressed
    assert "0.010" in regressed and regressed.endswith("<td>yes</td></tr>")
    kept = row(page, "f1", "Regression")
    assert kept.startswith("<tr><th>") and kept.endswith("<td>no</td></tr>")
