"""The bench report page: order of the sections, every chart present and well-formed, user text escaped, nothing
loaded from elsewhere, missing values shown as "—", one or several tasks, deterministic output."""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from sample_results import XSS, sample_dict, sample_results

from adaptlab.bench.html import render_bench_html, write_bench_html
from adaptlab.bench.results import BenchResult
from adaptlab.charts import Point, pareto

KINDS = {"quality", "latency", "cost", "tco", "frontier", "cache-sweep"}
SVG_RE = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


class _Outline(HTMLParser):
    """Charts (kind, inside a figure with a figcaption?), ids, section ids, script count."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.charts: list[tuple[str, bool]] = []
        self.ids: list[str] = []
        self.sections: list[str] = []
        self.scripts = 0
        self.figures: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "section" and "task" in (a.get("class") or "").split():
            self.sections.append(a.get("id") or "")
        if tag == "script":
            self.scripts += 1
        if tag == "figure":
            self.figures.append({"charts": [], "caption": False})
        if tag == "figcaption" and self.figures:
            self.figures[-1]["caption"] = True
        if tag == "svg" and "chart" in (a.get("class") or "").split():
            self.charts.append((a.get("data-chart") or "", "figure" in self.stack))
            if self.figures:
                self.figures[-1]["charts"].append(a.get("data-chart"))
        if tag not in ("meta", "br", "circle", "line", "rect", "polyline", "polygon"):  # void or self-closed
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


def outline(page: str) -> _Outline:
    parser = _Outline()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def one() -> str:
    return render_bench_html([sample_results()])


@pytest.fixture(scope="module")
def two() -> str:
    return render_bench_html([sample_results(), sample_results("SNIPS intents as JSON", json_task=True)],
                             title="adaptlab demo")


def test_recommendation_and_reasons_come_before_the_evidence(one):
    rec = one.index("Recommendation: rag+cache")
    assert rec < one.index('data-chart="quality"') < one.index('data-chart="latency"') < one.index(
        'data-chart="cost"') < one.index('data-chart="tco"') < one.index('data-chart="frontier"') < one.index(
        'data-chart="cache-sweep"')
    assert rec < one.index("cheapest of its quality tier") < one.index('id="task-1-quality"')
    # excluded strategies with their reason, and the advisor's notes, are in the recommendation section
    recommendation = one[rec:one.index('id="task-1-quality"')]
    assert "Excluded" in recommendation and "no fine-tuned-only model" in recommendation
    assert "small differences are noise" in recommendation
    assert "priced from this run" in recommendation
    # the section order of the task
    order = ["recommendation", "quality", "latency", "cost", "tco", "frontier", "cache", "data", "how", "cases"]
    positions = [one.index(f'id="task-1-{key}"') for key in order]
    assert positions == sorted(positions)


def test_the_latency_table_shows_time_to_first_token(one):
    latency = one[one.index('id="task-1-latency"'):one.index('id="task-1-cost"')]
    assert "first token p50 (ms)" in latency and "first token p95 (ms)" in latency
    timing = sample_results().strategies[0].timing
    assert timing.first_token_ms_p50 is not None and f"{timing.first_token_ms_p50:,.0f}" in latency


def test_every_chart_kind_is_an_svg_chart_in_a_captioned_figure(two):
    parsed = outline(two)
    kinds = [kind for kind, _ in parsed.charts]
    # Every kind in each task, and the learning curve in the task that fine-tuned (the JSON task).
    assert set(kinds) == KINDS | {"learning-curve"} and len(kinds) == 2 * len(KINDS) + 1
    assert all(in_figure for _, in_figure in parsed.charts)
    chart_figures = [f for f in parsed.figures if f["charts"]]
    assert len(chart_figures) == len(kinds) and all(f["caption"] for f in chart_figures)
    assert parsed.scripts == 1  # only the chart counter


def test_svgs_are_well_formed_and_have_content(two):
    svgs = SVG_RE.findall(two)
    assert len(svgs) == 13  # six per task, and the learning curve of the JSON task
    for svg in svgs:
        root = ET.fromstring(svg)  # escaped text and attributes: parses as XML
        assert root.get("class") == "chart"
        assert float(root.get("width")) > 0 and float(root.get("height")) > 0
        drawn = [el for el in root.iter() if el.tag in ("circle", "rect", "line", "polyline", "polygon")]
        assert len(drawn) > 3


def test_ids_are_unique_across_the_page(two):
    ids = outline(two).ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"task-1", "task-2", "task-1-quality-chart", "task-2-quality-chart"} <= set(ids)
    # every aria-labelledby points at an id on the page
    for ref in re.findall(r'aria-labelledby="([^"]+)"', two):
        assert ref in ids


def test_user_strings_are_escaped():
    data = sample_dict()
    evil = '<img src=x onerror="alert(2)">&'
    data["strategies"][0]["name"] = evil
    data["advice"]["strategies"][0]["reasons"].append(XSS)
    data["warnings"].append(XSS)
    page = render_bench_html([BenchResult.model_validate(data)], title="<b>bench</b>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert XSS not in page and "<img" not in page and "<b>bench</b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;&amp;" in page
    assert "<title>&lt;b&gt;bench&lt;/b&gt;</title>" in page
    assert "&lt;fast&gt;" in page and "&lt;do&gt;" in page  # answers and questions
    for svg in SVG_RE.findall(page):
        ET.fromstring(svg)  # names in the charts are escaped too


def test_nothing_is_loaded_from_elsewhere(two):
    assert not re.search(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:[a-z]+:)?//""", two, re.IGNORECASE)
    assert "http://" not in two and "https://" not in two
    assert "<link" not in two and "@import" not in two and "url(" not in two
    assert not re.search(r"<script[^>]*\bsrc=", two)
    assert "<iframe" not in two and "<img" not in two


def test_missing_and_nan_values_show_a_dash():
    nan = float("nan")
    data = sample_dict()
    s0 = data["strategies"][0]
    s0["metrics"]["token_f1"] = {"value": nan, "low": None, "high": nan, "n": 0}
    s0["timing"] = {"seconds_per_case": None, "latency_ms_p50": nan, "latency_ms_p95": None,
                    "prompt_tokens_mean": None, "completion_tokens_mean": nan}
    data["strategies"][1]["timing"] = dict.fromkeys(s0["timing"])
    data["strategies"][2]["traffic_hit_rate"] = {"value": None, "low": None, "high": None, "source": "replay"}
    data["strategies"][2]["cache_split"] = {"token_f1": {"hit": None, "hit_n": 0, "miss": nan, "miss_n": 0}}
    entry = data["advice"]["strategies"][1]
    entry["quality"] = None
    entry["total_usd"] = nan
    entry["tco"]["usd_per_answer"] = nan
    entry["tco"]["cumulative"] = [nan] * 12
    data["advice"]["strategies"][2]["tco"]["lines"]["inference"]["total"] = float("inf")
    data["cache"]["sweep"][0]["hit_rate"] = {"value": None, "low": None, "high": None}
    data["cache"]["warm"]["seconds"] = None
    data["cache"]["pairs_sweep"]["target_false_hit_rate"] = None
    data["seconds"] = nan
    data["confidence"] = nan
    data["data_check"]["lengths"] = None
    data["inputs"].update(documents=None, train=None, query_log=None)
    page = render_bench_html([BenchResult.model_validate(data)])
    text = re.sub(r"<[^>]+>", " ", page[page.index("<body>"):])  # what a reader sees
    shown = re.search(r".{0,60}\b(nan|inf|none)\b.{0,20}", text, re.IGNORECASE)
    assert shown is None, shown.group(0)
    assert not re.search(r'="[^"]*\b(nan|inf)\b', page, re.IGNORECASE)  # no NaN coordinates in the charts
    assert page.count("—") > 20
    assert "total wall time —" in page and "confidence level —" in page and "target false-hit rate —" in page
    assert "quality not measured" in page  # the advisor's entry without a quality
    quality_chart = re.search(r'<svg[^>]*data-chart="quality".*?</svg>', page, re.DOTALL).group(0)
    assert "not measured" in quality_chart
    for svg in SVG_RE.findall(page):
        ET.fromstring(svg)


def _bare(**changes) -> dict:
    """A bench result with nothing but the run's identity: no strategy, advice, cache or data check."""
    data = sample_dict(with_cache=False, with_data_check=False)
    data.update(strategies=[], advice=None, cache=None, data_check=None, stages=[], skipped_strategies=[],
                measurement=[], warnings=[], quality_metric=None)
    data["inputs"].update(documents=None, train=None, query_log=None)
    data.update(changes)
    return data


_TIMING = dict.fromkeys(["seconds_per_case", "latency_ms_p50", "latency_ms_p95", "prompt_tokens_mean",
                         "completion_tokens_mean"])
_BARE_STRATEGY = {"name": "x", "run_id": "", "params": {}, "family": None, "cached": False, "wraps": None,
                  "metrics": {"m": {"value": None}}, "timing": _TIMING, "cache_split": {}, "cases": [],
                  "traffic_hit_rate": None}
_BARE_TCO = {"name": "x", "family": "prompt", "cached": False, "hit_rate": 0.0, "total": float("nan"),
             "usd_per_answer": float("nan"), "prompt_tokens": 0.0, "completion_tokens": 0.0, "monthly_totals": [],
             "cumulative": [], "lines": {}}
_BARE_ENTRY = {"rank": 1, "name": "x", "family": "prompt", "cached": False, "hit_rate": 0.0, "hit_rate_source": "",
               "tier": 1, "quality": None, "tokens_measured": False, "total_usd": float("nan"), "reasons": [],
               "excluded": [], "tco": _BARE_TCO}
_BARE_ADVICE = {"title": "", "estimate": True, "run_id": None, "metric": None, "months": 12, "queries_per_day": 0.0,
                "recommendation": "x", "strategies": [_BARE_ENTRY], "break_even": [], "sensitivity": [],
                "provenance": [], "notes": []}
_BARE_CACHE = {"mode": "semantic", "threshold": 0.9, "guard": False, "warm": {"questions": 0}, "sweep": [],
               "pairs_sweep": {"source": "", "n_non_duplicates": 0, "target_false_hit_rate": None,
                               "recommended_threshold": None, "recommended_threshold_guard": None, "rows": []},
               "n_queries": 0, "distinct": 0,
               "log": {"verdict": "", "exact_repeat_rate": {"value": None}, "top_repeated": []}}
_BARE_CHECK = {"ready": False, "reasons": [], "examples": 0, "clean": 0, "min_examples": 0, "has_eval": False,
               "invalid_lines": 0, "dropped": {"duplicate": 0, "leak": 0}, "sets": [], "findings": []}


@pytest.mark.parametrize("changes", [
    {},
    {"strategies": [_BARE_STRATEGY]},
    {"strategies": [{**_BARE_STRATEGY, "cases": [{**sample_dict(n_cases=1)["strategies"][0]["cases"][0],
                                                  "scores": {}}]}],
     "advice": _BARE_ADVICE, "cache": _BARE_CACHE, "data_check": _BARE_CHECK},
    {"strategies": [_BARE_STRATEGY], "advice": {**_BARE_ADVICE, "recommendation": None,
                                                "strategies": [{**_BARE_ENTRY, "rank": None}]}},
], ids=["bare", "one-strategy", "empty-parts", "nothing-qualifies"])
def test_partial_results_still_render(changes):
    page = render_bench_html([BenchResult.model_validate(_bare(**changes))])
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert 'class="task" id="task-1"' in page
    for svg in SVG_RE.findall(page):
        ET.fromstring(svg)


def test_no_results_and_a_single_result():
    assert "No bench results" in render_bench_html([])
    assert render_bench_html(sample_results()) == render_bench_html([sample_results()])


def test_a_result_read_back_from_its_json_renders_the_same():
    results = sample_results()
    assert render_bench_html(BenchResult.model_validate_json(results.to_json())) == render_bench_html(results)


def test_two_tasks_get_a_summary_and_two_sections(two, one):
    parsed = outline(two)
    assert parsed.sections == ["task-1", "task-2"]
    summary = two[two.index("<h2>Summary</h2>"):two.index('id="task-1"')]
    assert "rag+cache" in summary and "finetuned" in summary and "12-month TCO" in summary
    assert "token_f1: 0.181" in summary and "field.intent: 0.910" in summary
    assert 'href="#task-2"' in summary
    assert "<h2>Summary</h2>" not in one and outline(one).sections == ["task-1"]


def test_the_learning_curve_section_states_the_study_and_the_provisional_verdict(two):
    section = two[two.index('id="task-2-finetuning"'):two.index('id="task-2-data"')]
    assert "Provisional:" in section and "not converged" in section
    assert "Still improving at the full set (200 examples): +0.095 field.intent per doubling" in section
    assert "twice the data is likely to reach 0.590 [0.450, 0.720]" in section
    assert "At the fitted rate fine-tuning would reach prompt" in section  # where it would clear the bar
    assert "2 training seeds" in section and "spread 0.028" in section
    assert "Checkpoint kept at step 40 of 40 by validation field.intent" in section
    assert "Forgetting probe (10 cases of another task, token_f1)" in section
    assert section.count("<tr>") >= 5 + 3  # four adapters and the evaluations of the full one, with headers
    assert 'data-chart="learning-curve"' in section and "open circles: other training seeds" in section
    # The knowledge task trained nothing: it says so.
    first = two[two.index('id="task-1-finetuning"'):two.index('id="task-1-data"')]
    assert "Not run: no adapter was trained" in first


def test_missing_cache_and_data_check_say_not_run():
    page = render_bench_html([sample_results(with_cache=False, with_data_check=False)])
    assert 'data-chart="cache-sweep"' not in page
    cache = page[page.index('id="task-1-cache"'):page.index('id="task-1-data"')]
    data = page[page.index('id="task-1-data"'):page.index('id="task-1-how"')]
    assert "Not run" in cache and "Not run" in data
    assert "+cache" not in page  # the sample has no cached strategy then


def test_no_advice_keeps_the_measurements():
    results = sample_results()
    page = render_bench_html([results.model_copy(update={"advice": None})])
    assert "No cost analysis" in page and "Not priced" in page
    assert 'data-chart="quality"' in page and 'data-chart="latency"' in page
    assert 'data-chart="cost"' not in page


def test_output_is_deterministic():
    a = render_bench_html([sample_results(), sample_results("b", json_task=True)], title="t")
    b = render_bench_html([sample_results(), sample_results("b", json_task=True)], title="t")
    assert a == b


def test_cases_are_collapsed_and_capped():
    results = sample_results(n_cases=60)
    page = render_bench_html([results])
    cases = page[page.index('id="task-1-cases"'):]
    assert cases.index("<details") < cases.index("</summary>") < cases.index("Question 0:")
    assert "<details open" not in page
    assert cases.count("First 50 of 60 case results") == len(results.strategies)
    assert "Question 49:" in cases and "Question 50:" not in cases


def test_measurement_section_lists_how_and_the_reproduce_command(one):
    how = one[one.index('id="task-1-how"'):one.index('id="task-1-cases"')]
    for text in ("wall time around each answer() call", "finetune", "built", "reused", "skipped",
                 "openai-gpt", "only 60 cases: CIs are wide", "serving GPU L4 at &lt;vendor&gt;"):
        assert text in how
    assert '<pre class="cmd"><code>adaptlab bench --config /x/adaptlab.toml --seed 0</code></pre>' in how


def test_quality_section_has_every_metric_and_the_paired_tests(one):
    quality = one[one.index('id="task-1-quality"'):one.index('id="task-1-latency"')]
    assert "p = 0.012" in quality and "significantly worse" in quality
    for metric in ("token_f1", "exact_match", "citation_precision", "latency_ms", "recall_at_5"):
        assert metric in quality
    assert re.search(r"0\.181 \[0\.\d{3}, 0\.\d{3}\]", quality)


def test_cost_tco_and_cache_sections_carry_their_numbers(one):
    advice = sample_results().advice
    assert advice is not None and advice.winner is not None
    cost = one[one.index('id="task-1-cost"'):one.index('id="task-1-tco"')]
    assert f"${advice.winner.tco.usd_per_answer * 1000:.3g}" in cost and "31% hits" in cost
    tco = one[one.index('id="task-1-tco"'):one.index('id="task-1-frontier"')]
    assert "vector db" in tco and "upstash &lt;pay-as-you-go&gt;" in tco and "total over 12 months" in tco
    cache = one[one.index('id="task-1-cache"'):one.index('id="task-1-data"')]
    assert "configured 0.90" in cache and "false-hit rate" in cache and "0.161" in cache
    assert "a cache pays off" in cache and "What is &lt;COVID-19&gt;?" in cache
    data = one[one.index('id="task-1-data"'):one.index('id="task-1-how"')]
    assert "not ready to train" in data and "212 clean of 240" in data and "equals eval case &lt;17&gt;" in data


def test_write_is_atomic_and_matches_render(tmp_path):
    results = [sample_results()]
    out = write_bench_html(results, tmp_path / "sub" / "report.html", title="x")
    assert out == tmp_path / "sub" / "report.html"
    assert out.read_text(encoding="utf-8") == render_bench_html(results, title="x")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_pareto_frontier_and_log_axis():
    points = [Point("a", 100, 0.5), Point("b", 200, 0.4), Point("c", 300, 0.7), Point("d", 300, 0.6),
              Point("e", None, 0.9), Point("f", 50, float("nan"))]
    assert [p.name for p in pareto(points)] == ["a", "c"]
    data = sample_dict()
    for e in data["advice"]["strategies"]:
        if e["name"] == "finetuned+rag":
            e["total_usd"] *= 100
    page = render_bench_html([BenchResult.model_validate(data)])
    frontier = re.search(r'<svg[^>]*data-chart="frontier".*?</svg>', page, re.DOTALL).group(0)
    assert "log scale" in frontier
    assert not math.isnan(float(re.search(r'cx="([^"]+)"', frontier).group(1)))


def test_estimated_quality_comes_from_the_advice():
    """A strategy the bench did not score on the metric: the advisor's declared quality is shown, as an estimate."""
    data = sample_dict()
    del data["strategies"][1]["metrics"]["token_f1"]  # rag
    entry = next(e for e in data["advice"]["strategies"] if e["name"] == "rag")
    entry["quality"].update(value=0.5, low=0.4, high=0.6, measured=False)
    data["advice"]["estimate"] = True
    page = render_bench_html([BenchResult.model_validate(data)])
    recommendation = page[page.index('id="task-1-recommendation"'):page.index('id="task-1-quality"')]
    assert "0.500 [0.400, 0.600]" in recommendation and "estimates: declared inputs" in recommendation
    frontier = re.search(r'<svg[^>]*data-chart="frontier".*?</svg>', page, re.DOTALL).group(0)
    assert "rag: token_f1 0.500" in frontier and "(estimate)" in frontier


def test_sample_is_reusable_and_independent():
    a, b = sample_dict(), sample_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN scores: compare as text
    a["strategies"].clear()
    assert sample_dict()["strategies"]
    assert sample_results().to_json() == sample_results().to_json()
    assert copy.deepcopy(sample_results(json_task=True)).quality_metric == "field.intent"
