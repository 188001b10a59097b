"""The study's conclusions from measured scores (no training here): the curve's points and fit, the seeds pooled
into the fine-tuned strategy, and the provisional label on every strategy answering with the adapter."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sample_results import sample_results

from adaptlab.bench.adapter import FULL, AdapterBuild, AdapterSpec, BenchSplit, checkpoint_metric_for
from adaptlab.bench.finetuning import Adapters, StudyRuns, conclude_study, pool_seeds, study_specs, variant_name
from adaptlab.config import AdaptlabConfig
from adaptlab.eval.results import StrategyResult

HALF = AdapterSpec(share=0.5)
SEED_1 = AdapterSpec(seed_offset=1)
STATS = {"resamples": 500, "confidence": 0.95, "seed": 0}


def _build(spec: AdapterSpec, examples: int, task_metric: list[list[float]]) -> AdapterBuild:
    return AdapterBuild(spec, Path(f"{spec.share}-{spec.seed_offset}.gguf"), "f" * 64, False, 1.0, {
        "steps": 10, "seconds": 60.0, "train_examples": examples, "tokens_per_second": 100.0,
        "train_loss": [[10, 0.4]], "task_metric_name": "field.intent", "task_metric": task_metric,
        "best_step": int(task_metric[-1][0]) if task_metric else None})


def _scored(entry: StrategyResult, value: float, name: str) -> StrategyResult:
    """The same cases, the first `value` share of them right (0/1 outcomes, nested: a case right at a lower value
    is right at a higher one)."""
    right = round(value * len(entry.cases))
    cases = [replace(c, scores={**c.scores, "field.intent": 1.0 if i < right else 0.0})
             for i, c in enumerate(entry.cases)]
    return entry.model_copy(update={"name": name, "cases": cases})


def _study(task_metric: list[list[float]], half_value: float, full_value: float, seeds: bool = False):
    results = sample_results("SNIPS", json_task=True, n_cases=40)
    finetuned = results.strategy("finetuned")
    assert finetuned is not None
    # Full adapter: half right; half adapter: worse or equal, so the curve rises or not.
    full = _scored(finetuned, full_value, "finetuned")
    results.strategies[[s.name for s in results.strategies].index("finetuned")] = full
    builds = {FULL: _build(FULL, 100, task_metric), HALF: _build(HALF, 50, [[5, 0.1]])}
    runs = StudyRuns(variants={HALF: _scored(finetuned, half_value, "finetuned[50%]")})
    if seeds:
        builds[SEED_1] = _build(SEED_1, 100, [[10, 0.3]])
        runs.variants[SEED_1] = _scored(finetuned, 1.0 - full_value, "finetuned[seed+1]")
    adapters = Adapters(BenchSplit(pool=[object()] * 100, validation=[]), builds)  # type: ignore[list-item]
    first_seed = pool_seeds(results, "finetuned", runs, **STATS)
    study = conclude_study(results, "finetuned", adapters, runs, first_seed, "field.intent",
                           answering_with_adapter=["finetuned"], train_seed=0, significance=0.05, **STATS)
    return results, study


def test_a_still_improving_validation_curve_makes_the_adapter_and_its_cached_variant_provisional() -> None:
    results, study = _study([[5, 0.2], [10, 0.4]], half_value=0.5, full_value=0.5)
    assert study.fit is not None and study.fit.gain_per_doubling == pytest.approx(0.0)  # the curve itself is flat
    assert len(study.provisional) == 1 and "validation field.intent was still improving" in study.provisional[0]
    assert "0.200 at step 5 → 0.400 at step 10" in study.provisional[0]
    for name in ("finetuned", "finetuned+cache"):
        entry = results.strategy(name)
        assert entry is not None and entry.provisional.startswith("not converged: more data / steps likely help")
    for name in ("prompt", "rag"):
        entry = results.strategy(name)
        assert entry is not None and entry.provisional == ""


def test_a_rising_learning_curve_is_provisional_and_a_settled_one_is_not() -> None:
    # Half the data: 10% right; all of it: 90% right → far above zero per doubling.
    _, rising = _study([[5, 0.4], [10, 0.4]], half_value=0.1, full_value=0.9)
    assert rising.fit is not None and rising.fit.rising and rising.fit.examples == 100
    assert rising.provisional and "the learning curve still rises at 100 examples" in rising.provisional[0]
    assert [a.examples for a in rising.curve] == [50, 100]
    results, settled = _study([[5, 0.4], [10, 0.4]], half_value=0.5, full_value=0.5)
    assert settled.provisional == [] and results.strategy("finetuned").provisional == ""  # type: ignore[union-attr]
    assert any("No clear gain" in f or "Not improving" in f for f in settled.findings())


def test_training_seeds_pool_into_the_fine_tuned_score_with_their_spread() -> None:
    results, study = _study([[10, 0.4]], half_value=0.5, full_value=0.8, seeds=True)
    entry = results.strategy("finetuned")
    assert entry is not None
    intent = entry.metric("field.intent")
    assert intent is not None and intent.train_seeds == 2
    assert intent.value == pytest.approx(0.5)  # seed 0 right on 80% of the cases, seed 1 on 20%
    assert intent.seed_spread == pytest.approx(0.6 / 2 ** 0.5)  # std of (0.8, 0.2)
    assert intent.low is not None and intent.high is not None and intent.high - intent.low > 0.3
    assert sorted({c.train_seed for c in entry.cases}) == [0, 1] and len(entry.cases) == 80
    assert study.train_seeds == 2 and [a.seed for a in study.adapters] == [0, 0, 1]
    # The curve uses train.seed's adapters only: its full point is seed 0's score, not the pooled one.
    assert study.full.quality is not None and study.full.quality.n == 40


def test_the_study_trains_the_full_adapter_first_then_the_shares_then_the_seeds() -> None:
    config = AdaptlabConfig.model_validate({"bench": {"learning_curve": [1.0, 0.25, 0.5, 0.5], "train_seeds": 3}})
    assert config.bench.learning_curve == [0.25, 0.5, 1.0]  # sorted, once each
    specs = study_specs(config)
    assert specs == [FULL, AdapterSpec(0.25), AdapterSpec(0.5), AdapterSpec(1.0, 1), AdapterSpec(1.0, 2)]
    assert [variant_name("finetuned", s) for s in specs] == [
        "finetuned", "finetuned[25%]", "finetuned[50%]", "finetuned[seed+1]", "finetuned[seed+2]"]
    with pytest.raises(ValueError, match="each share must be in"):
        AdaptlabConfig.model_validate({"bench": {"learning_curve": [0, 1]}})


@pytest.mark.parametrize(("quality", "checkpoint"), [
    ("field.intent", "field.intent"), ("field_f1", "field_f1"), ("token_f1", "token_f1"),
    ("accuracy", "exact_match"), ("judge_score", "auto"), ("", "auto")])
def test_the_checkpoint_metric_follows_the_workloads_quality_metric(quality: str, checkpoint: str) -> None:
    assert checkpoint_metric_for(quality) == checkpoint
