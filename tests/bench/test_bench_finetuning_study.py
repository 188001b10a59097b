"""Fine-tuning judged fairly, end to end with the real models: a bench with training data trains the learning
curve's adapters and a second training seed, picks checkpoints by the task metric on a validation split, scores
a forgetting probe, labels an unconverged adapter provisional — and the advisor says so.

A few training steps on SNIPS: the mechanism, not a verdict on fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptlab.bench.run import run_bench
from adaptlab.config import load_config
from adaptlab.datasets.snips import convert_snips
from adaptlab.datasets.squad import BUNDLED_SNIPS


@pytest.fixture(scope="module")
def study_bench(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("study")
    split = convert_snips(BUNDLED_SNIPS, root / "data", train_per_intent=6, eval_per_intent=1, fewshot_per_intent=1,
                          seed=0)
    # Another task's cases for the forgetting probe: short knowledge questions with reference answers.
    probe = [{"question": "What is the capital of France?", "answers": ["Paris"]},
             {"question": "How many legs does a spider have?", "answers": ["eight"]},
             {"question": "What colour is the sky on a clear day?", "answers": ["blue"]}]
    (root / "probe.jsonl").write_text("".join(json.dumps(p) + "\n" for p in probe), encoding="utf-8")
    (root / "workload.toml").write_text(
        "[workload]\nqueries_per_day = 1000\nmin_examples_for_finetune = 5\nquality_metric = 'field.intent'\n"
        "[serving]\nmode = 'self_hosted'\ngpu_usd_per_hour = 0.1\nuse_measured_latency = true\n", encoding="utf-8")
    system_prompt = split.system_prompt_path.read_text(encoding="utf-8").strip()
    config = root / "adaptlab.toml"
    config.write_text(f'''home = "home"
[runtime]
threads = 1
[generator]
max_tokens = 40
[train]
max_steps = 4
batch_size = 2
eval_fraction = 0.15
eval_steps = 2
learning_rate = 0.001
[tracking]
enabled = false
[strategies.prompt]
kind = "prompt"
system_prompt = {json.dumps(system_prompt)}
json_schema_path = "data/schema.json"
[bench]
cases = "data/eval.jsonl"
train = "data/train.jsonl"
workload = "workload.toml"
strategies = ["prompt", "finetuned"]
learning_curve = [0.5, 1.0]
train_seeds = 2
forgetting_cases = "probe.jsonl"
''', encoding="utf-8")
    return root, run_bench(load_config(config), out_dir=root / "report")


@pytest.mark.slow
def test_the_bench_trains_the_curve_and_the_seeds_and_chooses_checkpoints_by_the_task(study_bench) -> None:
    _, outcome = study_bench
    results = outcome.results
    study = results.finetuning
    assert study is not None and study.strategy == "finetuned" and study.metric == "field.intent"
    labels = [a.label for a in study.adapters]
    assert labels == ["50% of the data", "all the data", "all the data, seed +1"]
    half, full, second_seed = study.adapters
    assert half.examples < full.examples == second_seed.examples  # nested shares of the same pool
    assert half.steps == 2 and full.steps == 4  # same epochs: steps scale with the share
    assert full.seed == 0 and second_seed.seed == 1
    for adapter in study.adapters:
        # Checkpoints by the workload's metric, on the validation split carved from the training data.
        assert adapter.task_metric_name == "field.intent"
        assert adapter.task_metric and all(0 <= v <= 1 for _, v in adapter.task_metric)
        assert adapter.quality is not None and adapter.quality.n == results.n_cases
    assert study.fit is not None and study.fit.examples == full.examples
    assert study.fit.low <= study.fit.gain_per_doubling <= study.fit.high

    # Two training seeds: the strategy's score is their mean, its cases hold both seeds' answers.
    finetuned = results.strategy("finetuned")
    assert finetuned is not None
    intent = finetuned.metric("field.intent")
    assert intent is not None and intent.train_seeds == 2 and intent.seed_spread is not None
    assert intent.low is not None and intent.high is not None and intent.low <= intent.value <= intent.high
    assert sorted({c.train_seed for c in finetuned.cases}) == [0, 1]
    assert len(finetuned.cases) == 2 * results.n_cases
    assert study.train_seeds == 2

    # Forgetting: the base model and the adapter answered the other task's cases with the same plain prompt.
    probe = study.forgetting
    assert probe is not None and probe.metric == "token_f1" and probe.base.n == probe.adapted.n == 3
    assert probe.comparison is not None and probe.comparison.n == 3

    # The study's own strategies are measured apart: they are not priced as candidates.
    priced = {r.name for r in results.advice.strategies} if results.advice else set()
    assert priced == {"prompt", "finetuned"}


@pytest.mark.slow
def test_an_unconverged_adapter_is_provisional_in_the_results_and_the_advice(study_bench) -> None:
    _, outcome = study_bench
    results = outcome.results
    study = results.finetuning
    assert study is not None
    finetuned = results.strategy("finetuned")
    assert finetuned is not None and results.advice is not None
    ranked = results.advice.ranked("finetuned")
    assert ranked is not None
    if study.provisional:  # 4 steps rarely settle anything, but the verdict is the data's to give
        assert finetuned.provisional.startswith("not converged")
        assert ranked.provisional == finetuned.provisional
        assert any("provisional" in reason for reason in ranked.reasons)
        assert any("finetuned" in note and "provisional" in note for note in results.advice.notes)
    else:
        assert finetuned.provisional == "" and ranked.provisional == ""
    report = (outcome.report_path or Path()).read_text(encoding="utf-8")
    assert "Learning curve" in report and 'data-chart="learning-curve"' in report
