"""Checkpoints chosen by the task metric, not the loss.

At every evaluation during training, the model in training answers the validation split (carved from the
training data, never the eval cases) with greedy decoding, and the answers are scored with the harness's own
metrics: field accuracy (or one field, `field.intent`) when the reference answers are JSON, token F1 or exact
match otherwise. The score is added to the evaluation's metrics as `eval_task_metric`, so the Trainer keeps the
best checkpoint by it (`load_best_model_at_end`) and early stopping watches it. Loss curves are kept beside it.

Decoding here is unconstrained (no grammar): the score is a proxy for the constrained answer, and errs low.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adaptlab.eval.metrics import exact_match, field_scores, parse_json_output, token_f1
from adaptlab.finetune.data import TrainingExample

TASK_METRICS = ("auto", "field_accuracy", "field_f1", "token_f1", "exact_match")  # and field.<key>
METRIC_KEY = "eval_task_metric"


@dataclass(frozen=True)
class ValidationCase:
    prompt: list[dict[str, str]]  # the conversation up to the answer
    reference: str  # the training example's answer


def validation_cases(examples: Sequence[TrainingExample]) -> list[ValidationCase]:
    """Chat and prompt/completion examples as (conversation, reference answer); preference pairs have none."""
    cases = []
    for example in examples:
        messages = [dict(m) for m in example.messages] if example.messages else []
        if messages and messages[-1]["role"] == "assistant":
            cases.append(ValidationCase(messages[:-1], messages[-1]["content"]))
        elif example.prompt is not None and example.completion is not None:
            cases.append(ValidationCase([{"role": "user", "content": example.prompt}], example.completion))
    return cases


def resolve_metric(metric: str, cases: Sequence[ValidationCase]) -> str:
    """'auto': field accuracy when every reference is a JSON object, else token F1."""
    if metric != "auto":
        return metric
    return "field_accuracy" if cases and all(isinstance(parse_json_output(c.reference)[1], dict)
                                             for c in cases) else "token_f1"


def score_answer(metric: str, answer: str, reference: str) -> float:
    if metric in ("token_f1", "exact_match"):
        return token_f1(answer, [reference]) if metric == "token_f1" else exact_match(answer, [reference])
    ok, predicted = parse_json_output(answer)
    expected = parse_json_output(reference)[1]
    if metric.startswith("field."):
        key = metric.removeprefix("field.")
        if not ok or not isinstance(predicted, dict) or not isinstance(expected, dict):
            return 0.0
        return float(key in predicted and field_scores(predicted.get(key), expected.get(key)).accuracy == 1.0)
    scores = field_scores(predicted if ok else None, expected)
    return scores.f1 if metric == "field_f1" else scores.accuracy


class TaskMetricScorer:
    """Scores a model in training on the validation cases (greedy, `max_new_tokens` per answer)."""

    def __init__(self, cases: Sequence[ValidationCase], tokenizer: Any, metric: str, max_new_tokens: int) -> None:
        self.cases = list(cases)
        self.tokenizer = tokenizer
        self.metric = resolve_metric(metric, self.cases)
        self.max_new_tokens = max_new_tokens

    def __call__(self, model: Any) -> float:
        import torch

        was_training = model.training
        model.eval()
        total = 0.0
        try:
            with torch.no_grad():
                for case in self.cases:
                    inputs = self.tokenizer.apply_chat_template(case.prompt, add_generation_prompt=True,
                                                                return_tensors="pt", return_dict=True)
                    inputs = {k: v.to(model.device) for k, v in inputs.items()}
                    output = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                            pad_token_id=self.tokenizer.pad_token_id)
                    answer = self.tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
                    total += score_answer(self.metric, answer.strip(), case.reference)
        finally:
            if was_training:
                model.train()
        return total / len(self.cases) if self.cases else 0.0


def task_metric_callback(scorer: TaskMetricScorer, curve: list[tuple[int, float]]) -> Any:
    """A TrainerCallback adding `eval_task_metric` to each evaluation's metrics (before early stopping and the
    best-checkpoint bookkeeping read them) and keeping the curve."""
    from transformers import TrainerCallback

    class TaskMetric(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            if metrics is None or model is None:
                return
            value = scorer(model)
            metrics[METRIC_KEY] = value
            curve.append((state.global_step, value))

    return TaskMetric()
