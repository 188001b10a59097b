"""The advisor's decision rules, each checked on a run built to trigger it (the rule's reason must carry its number)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptlab.cost.advise import advise
from adaptlab.cost.catalog import load_catalog
from adaptlab.cost.evidence import BenchRun, MeasuredStrategy, find_run, load_run
from adaptlab.cost.inputs import build_scenario
from adaptlab.cost.workload import Workload, WorkloadError, load_workload
from adaptlab.errors import InputError
from adaptlab.eval.results import Estimate

CATALOG = load_catalog()
CASES = 60


def strategy(name: str, family: str, scores: list[float], *, prompt_tokens: float = 100, completion: float = 50,
             metric: str = "accuracy", cached: bool = False, wraps: str | None = None,
             hit_rate: float | None = None) -> MeasuredStrategy:
    mean = sum(scores) / len(scores)
    return MeasuredStrategy(
        name=name, family=family, cached=cached, wraps=wraps, prompt_tokens=prompt_tokens,
        completion_tokens=completion, seconds_per_answer=0.5, hit_rate=hit_rate,
        metrics={metric: Estimate(value=mean, low=max(0.0, mean - 0.1), high=min(1.0, mean + 0.1),
                                  n=len(scores))},
        per_case={f"c{i}": {metric: s} for i, s in enumerate(scores)})


def run_of(*strategies: MeasuredStrategy) -> BenchRun:
    return BenchRun(Path("results.json"), "run1", CASES, list(strategies), 0.05)


def workload(**facts) -> Workload:
    sections = {k: facts.pop(k) for k in ("serving", "training", "rag", "cache", "strategies") if k in facts}
    data = {
        "workload": {"queries_per_day": 10_000, **facts},
        # Declared prices: the rules, not the catalog's current prices, decide these tests.
        "serving": {"mode": "self_hosted", "gpu_usd_per_hour": 2.0, "decode_tokens_per_second": 1000,
                    "prefill_tokens_per_second": 10_000, **sections.get("serving", {})},
        "training": {"measured_gpu_hours": 10, "gpu_usd_per_hour": 3.0, **sections.get("training", {})},
        "rag": {"vector_db_usd_per_month": 50, "documents": 1000, **sections.get("rag", {})},
        "cache": {"hosting_usd_per_month": 5, **sections.get("cache", {})},
        "strategies": sections.get("strategies", {}),
    }
    return Workload.model_validate(data)


def ranked_names(advice) -> list[str]:
    return [r.name for r in advice.ranked if r.rank is not None]


def excluded(advice) -> dict[str, list[str]]:
    return {r.name: r.excluded for r in advice.ranked if r.rank is None}


ALL_RIGHT = [1.0] * CASES
MOSTLY_RIGHT = [1.0] * 50 + [0.0] * 10
MOSTLY_WRONG = [1.0] * 15 + [0.0] * 45


def four_families(prompt=MOSTLY_RIGHT, rag=MOSTLY_RIGHT, ft=MOSTLY_RIGHT, hybrid=MOSTLY_RIGHT) -> BenchRun:
    return run_of(strategy("prompt", "prompt", prompt, prompt_tokens=300),
                  strategy("rag", "rag", rag, prompt_tokens=800),
                  strategy("ft", "finetuned", ft, prompt_tokens=60),
                  strategy("ft_rag", "finetuned_rag", hybrid, prompt_tokens=600))


def test_citations_required_leaves_only_retrieving_strategies():
    advice = advise(build_scenario(workload(citations_required=True), CATALOG, four_families()))
    assert set(ranked_names(advice)) == {"rag", "ft_rag"}
    for name in ("prompt", "ft"):
        assert "citations required → only RAG-family strategies (rag, finetuned_rag) qualify" in excluded(advice)[name]


def test_too_few_clean_examples_exclude_fine_tuning():
    advice = advise(build_scenario(workload(clean_labelled_examples=120), CATALOG, four_families()))
    assert set(ranked_names(advice)) == {"prompt", "rag"}
    assert any("120 clean labelled examples < 200" in r for r in excluded(advice)["ft"])
    assert any("120 clean labelled examples < 200" in r for r in excluded(advice)["ft_rag"])


def test_knowledge_changing_daily_leaves_the_fine_tuned_only_model_stale():
    advice = advise(build_scenario(workload(knowledge_changes_every_days=1), CATALOG, four_families()))
    assert any("365 retrains/yr > 52" in r for r in excluded(advice)["ft"])
    assert "ft_rag" in ranked_names(advice)  # hybrid keeps the changing knowledge in retrieval


def test_monthly_knowledge_changes_price_the_retrains():
    advice = advise(build_scenario(workload(knowledge_changes_every_days=30.4), CATALOG, four_families()))
    ft = next(r for r in advice.ranked if r.name == "ft")
    retraining = ft.tco.line("retraining")
    assert retraining is not None and retraining.total == pytest.approx(365 / 30.4 * 10 * 3.0)
    assert any("knowledge changes every 30.4 days" in r and "12 retrains a year" in r for r in ft.reasons)
    assert next(r for r in advice.ranked if r.name == "ft_rag").tco.line("retraining") is None


def test_a_significantly_worse_strategy_is_never_ranked_first_even_when_cheapest():
    # prompt is by far the cheapest (no retrieval, no training) but answers 15/60 right vs 50/60.
    run = run_of(strategy("prompt", "prompt", MOSTLY_WRONG, prompt_tokens=100),
                 strategy("rag", "rag", MOSTLY_RIGHT, prompt_tokens=900))
    advice = advise(build_scenario(workload(), CATALOG, run))
    assert ranked_names(advice) == ["rag", "prompt"]
    prompt = next(r for r in advice.ranked if r.name == "prompt")
    assert prompt.tco.total < advice.winner.tco.total
    assert prompt.tier == 2 and any("significantly worse" in r and "mcnemar" in r for r in prompt.reasons)


def test_a_difference_that_is_not_significant_lets_the_cheaper_strategy_win():
    one_more_right = [1.0] * 51 + [0.0] * 9
    run = run_of(strategy("rag", "rag", one_more_right, prompt_tokens=900),
                 strategy("ft", "finetuned", MOSTLY_RIGHT, prompt_tokens=60))
    advice = advise(build_scenario(workload(), CATALOG, run))
    assert advice.winner.name == "ft"
    reason = next(r for r in advice.winner.reasons if "ft vs rag" in r)
    assert "difference not significant" in reason and "p = 1" in reason and "the cheaper one wins" in reason
    assert any("cheapest of its quality tier" in r for r in advice.winner.reasons)


def test_a_quality_floor_lets_a_worse_but_good_enough_strategy_compete_on_cost():
    run = run_of(strategy("prompt", "prompt", MOSTLY_WRONG, prompt_tokens=100),
                 strategy("rag", "rag", MOSTLY_RIGHT, prompt_tokens=900))
    advice = advise(build_scenario(workload(quality_floor=0.2), CATALOG, run))
    assert advice.winner.name == "prompt"
    assert any("meets the quality floor 0.2" in r for r in advice.winner.reasons)
    higher = advise(build_scenario(workload(quality_floor=0.5), CATALOG, run))
    assert ranked_names(higher) == ["rag"]
    assert any("0.250 < quality floor 0.5" in r for r in excluded(higher)["prompt"])


def test_budget_excludes_what_costs_more():
    run = run_of(strategy("prompt", "prompt", MOSTLY_RIGHT, prompt_tokens=100),
                 strategy("rag", "rag", MOSTLY_RIGHT, prompt_tokens=900))
    rag_total = advise(build_scenario(workload(), CATALOG, run)).ranked
    rag_cost = next(r for r in rag_total if r.name == "rag").tco.total
    advice = advise(build_scenario(workload(budget_usd=rag_cost - 1), CATALOG, run))
    assert "rag" not in ranked_names(advice)
    assert any("> budget" in r for r in excluded(advice)["rag"])


def test_a_measured_cache_hit_rate_prices_the_cache_and_states_the_saving():
    run = run_of(strategy("rag", "rag", MOSTLY_RIGHT, prompt_tokens=900),
                 strategy("rag_cached", "rag", MOSTLY_RIGHT, prompt_tokens=900, cached=True, wraps="rag",
                          hit_rate=0.4))
    advice = advise(build_scenario(workload(queries_per_day=200_000), CATALOG, run))
    cached = next(r for r in advice.ranked if r.name == "rag_cached")
    plain = next(r for r in advice.ranked if r.name == "rag")
    saving = plain.tco.total - cached.tco.total
    assert saving > 0 and advice.winner.name == "rag_cached"
    assert any(r.startswith("hit rate 40% (measured in the run) → add the cache: −$") for r in cached.reasons)


def test_a_declared_hit_rate_adds_cache_variants_to_every_measured_strategy():
    run = run_of(strategy("prompt", "prompt", MOSTLY_RIGHT), strategy("rag", "rag", MOSTLY_RIGHT))
    scenario = build_scenario(workload(cache={"hit_rate": 0.25}), CATALOG, run)
    names = {c.variant.name: c for c in scenario.candidates}
    assert set(names) == {"prompt", "prompt+cache", "rag", "rag+cache"}
    assert names["rag+cache"].variant.hit_rate == 0.25 and names["rag+cache"].hit_rate_source == "declared"


def test_without_a_hit_rate_the_cache_is_not_priced_and_the_advice_says_why():
    scenario = build_scenario(workload(), CATALOG, None)
    assert not any(c.variant.cached for c in scenario.candidates)
    assert any("the answer cache is not priced" in note for note in advise(scenario).notes)


def test_without_a_run_every_figure_is_labelled_an_estimate():
    advice = advise(build_scenario(workload(cache={"hit_rate": 0.3}), CATALOG, None))
    assert advice.estimate
    assert {r.name for r in advice.ranked} == {"prompt", "rag", "finetuned", "finetuned_rag", "prompt+cache",
                                               "rag+cache", "finetuned+cache", "finetuned_rag+cache"}
    assert any("estimate" in note for note in advice.notes)
    assert all(any("declared: estimate" in reason for reason in r.reasons) for r in advice.ranked)


def test_declared_qualities_compare_by_their_intervals():
    strategies = {"prompt": {"quality": 0.3, "quality_low": 0.25, "quality_high": 0.35},
                  "rag": {"quality": 0.7, "quality_low": 0.6, "quality_high": 0.8}}
    advice = advise(build_scenario(workload(strategies=strategies, consider=["prompt", "rag"]), CATALOG, None))
    assert ranked_names(advice) == ["rag", "prompt"]  # prompt is cheaper, but its interval lies below rag's


def test_sensitivity_names_volume_when_the_workload_sits_near_break_even():
    run = run_of(strategy("prompt", "prompt", MOSTLY_RIGHT, prompt_tokens=3000, completion=50),
                 strategy("ft", "finetuned", MOSTLY_RIGHT, prompt_tokens=60, completion=50))
    probe = build_scenario(workload(), CATALOG, run)
    crossing = advise(probe, with_sensitivity=False).break_evens
    [between] = [b for b in crossing if {b.a, b.b} == {"prompt", "ft"}]
    advice = advise(build_scenario(workload(queries_per_day=between.queries_per_day * 1.2), CATALOG, run))
    row = next(r for r in advice.sensitivity if r.label == "queries/day")
    assert row.changes_winner and row.low_winner == "prompt" and row.high_winner == "ft"


def test_workload_file_errors_name_the_file_and_the_fix(tmp_path: Path):
    with pytest.raises(WorkloadError, match="no such workload file"):
        load_workload(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[workload]\nqueries_per_day = \n")
    with pytest.raises(WorkloadError, match="bad.toml: not valid TOML"):
        load_workload(bad)
    bad.write_text("[serving]\nmode = 'api'\n")
    with pytest.raises(WorkloadError, match=r"no \[workload\] section"):
        load_workload(bad)
    bad.write_text("[workload]\nqueries_per_day = 10\nquery_per_day = 5\n")
    with pytest.raises(WorkloadError, match="workload.query_per_day") as info:
        load_workload(bad)
    assert "bad.toml" in str(info.value)
    bad.write_text("[workload]\nqueries_per_day = -1\n")
    with pytest.raises(WorkloadError, match="greater than or equal to 0"):
        load_workload(bad)


def test_run_errors_name_the_file(tmp_path: Path):
    with pytest.raises(InputError, match="no bench run here"):
        find_run(str(tmp_path / "nope"), tmp_path)
    broken = tmp_path / "results.json"
    broken.write_text('{"strategies": [\n  {"name": }\n]}')
    with pytest.raises(InputError, match=r"results.json:2: not valid JSON"):
        load_run(broken)
    broken.write_text(json.dumps({"runs": []}))
    with pytest.raises(InputError, match="not the results.json of an eval or bench run"):
        load_run(broken)


def test_measured_latency_prices_the_bench_machine_as_the_production_machine():
    run = run_of(strategy("rag", "rag", MOSTLY_RIGHT))  # 0.5 s per answer in the run
    scenario = build_scenario(workload(serving={"use_measured_latency": True, "gpu_usd_per_hour": 3.6,
                                                "utilisation": 0.5}), CATALOG, run)
    rag = next(r for r in advise(scenario).ranked if r.name == "rag")
    assert rag.tco.usd_per_answer == pytest.approx(0.5 * 3.6 / 3600 / 0.5)
    assert any("measured latency" in p for p in scenario.provenance)


def test_api_serving_prices_measured_tokens_at_the_catalogs_list_prices():
    run = run_of(strategy("rag", "rag", MOSTLY_RIGHT, prompt_tokens=800, completion=40))
    scenario = build_scenario(workload(serving={"mode": "api", "api_model": "openai/gpt-4o-mini",
                                                "prefix_cache": False}), CATALOG, run)
    price = CATALOG.api_model("openai/gpt-4o-mini")
    rag = next(r for r in advise(scenario).ranked if r.name == "rag")
    assert rag.tco.usd_per_answer == pytest.approx((800 * price.input_per_mtok + 40 * price.output_per_mtok) / 1e6)
    assert any("openai/gpt-4o-mini" in p and str(price.as_of) in p for p in scenario.provenance)


def test_workload_files_that_say_hybrid_still_load_as_finetuned_rag():
    spec = workload(consider=["rag", "hybrid"], strategies={"hybrid": {"prompt_tokens": 500}})
    assert spec.workload.consider == ["rag", "finetuned_rag"]
    assert "finetuned_rag" in spec.strategies


def test_a_benchs_measured_training_time_is_priced_as_the_serving_machine_not_as_gpu_hours():
    run = BenchRun(None, "run1", CASES, [strategy("ft", "finetuned", MOSTLY_RIGHT)], 0.05, training_seconds=1800)
    spec = workload(serving={"use_measured_latency": True, "gpu_usd_per_hour": 4.0},
                    training={"measured_gpu_hours": None, "gpu_usd_per_hour": 3.0})
    scenario = build_scenario(spec, CATALOG, run)
    assert scenario.inputs.training.gpu_hours_per_run == pytest.approx(0.5)
    assert scenario.inputs.training.gpu_usd_per_hour == 4.0  # the serving machine's price, not the GPU's
    assert any("measured on the bench machine" in p for p in scenario.provenance)
    declared = build_scenario(workload(serving={"use_measured_latency": True}), CATALOG, run)
    assert declared.inputs.training.gpu_hours_per_run == 10  # a declared measured_gpu_hours wins


def test_a_strategy_on_its_own_priced_model_gets_its_own_sensitivity_row():
    from dataclasses import replace

    from adaptlab.eval.results import GeneratorRecord

    hosted = replace(strategy("prompt@hosted", "prompt", MOSTLY_RIGHT, prompt_tokens=300), generator="hosted")
    run = BenchRun(Path("results.json"), "run1", CASES, [strategy("prompt", "prompt", MOSTLY_RIGHT), hosted], 0.05,
                   deployments={"hosted": GeneratorRecord(backend="openai", model="gpt-4o-mini at https://x/v1",
                                                          price_api_model="openai/gpt-4o-mini")})
    advice = advise(build_scenario(workload(), CATALOG, run))
    labels = [row.label for row in advice.sensitivity]
    assert "API prices of the model behind prompt@hosted" in labels
    assert "serving GPU $/h" in labels  # the workload's own deployment, for the local prompt
    assert any("strategies on hosted" in line for line in advice.provenance)


def test_an_unconverged_fine_tuned_strategy_is_labelled_provisional_not_a_settled_loser():
    from dataclasses import replace

    reason = "not converged: more data / steps likely help — the learning curve still rises at 200 examples"
    ft = replace(strategy("ft", "finetuned", MOSTLY_WRONG, prompt_tokens=60), provisional=reason)
    run = run_of(strategy("prompt", "prompt", MOSTLY_RIGHT, prompt_tokens=300), ft)
    advice = advise(build_scenario(workload(), CATALOG, run))
    assert advice.winner.name == "prompt"
    loser = next(r for r in advice.ranked if r.name == "ft")
    assert loser.tier == 2  # still measured worse: the label does not move the ranking …
    assert f"provisional — {reason}" in loser.reasons  # … but it says the verdict is not settled
    assert loser.record().provisional == reason
    note = next(n for n in advice.notes if n.startswith("ft is provisional"))
    assert "not a settled loser" in note and "re-bench with more training data or steps" in note
    assert advice.winner.record().provisional == ""


def test_a_provisional_winner_is_recommended_with_the_caveat():
    from dataclasses import replace

    reason = "not converged: more data / steps likely help — validation field.intent was still improving"
    ft = replace(strategy("ft", "finetuned", ALL_RIGHT, prompt_tokens=60), provisional=reason)
    run = run_of(strategy("prompt", "prompt", MOSTLY_WRONG, prompt_tokens=300), ft)
    advice = advise(build_scenario(workload(), CATALOG, run))
    assert advice.winner.name == "ft"
    assert any(n == f"ft is recommended on a provisional measurement — {reason}" for n in advice.notes)
