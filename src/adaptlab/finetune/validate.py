"""Checkpoints chosen by the task metric, not the loss.

At every evaluation during training, the model in training answers the validation split (carved from the
training data, never the eval cases) with greedy decoding, and the answers are scored with the harness's own
metrics: field accuracy (or one field, `field.intent`) when the reference answers are JSON, token F1 or exact
match otherwise. The score is added to the evaluation's metrics as `eval_task_metric` (ties broken by the lower
eval loss), so the Trainer keeps the best checkpoint by it (`load_best_model_at_end`) and early stopping watches
it. Loss curves are kept beside it.

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
TIE_BREAK = 1e-6  # weight of the eval loss in METRIC_KEY: orders equal task scores, never unequal ones


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
    """Scores a model in training on the validation cases (greedy, `max_new_tokens` per answer), `batch_size`
    answers per generate call: a handful of batched calls instead of one per case keeps evaluation cheap next to
    the training steps between evaluations."""

    def __init__(self, cases: Sequence[ValidationCase], tokenizer: Any, metric: str, max_new_tokens: int,
                 batch_size: int = 16) -> None:
        self.cases = list(cases)
        self.tokenizer = tokenizer
        self.metric = resolve_metric(metric, self.cases)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def answers(self, model: Any) -> list[str]:
        import torch

        tokenizer = self.tokenizer
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"  # generation continues at the right edge of every row
        answers: list[str] = []
        try:
            with torch.no_grad():
                for start in range(0, len(self.cases), self.batch_size):
                    batch = self.cases[start:start + self.batch_size]
                    texts = [tokenizer.apply_chat_template(case.prompt, add_generation_prompt=True, tokenize=False)
                             for case in batch]
                    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                    inputs = {k: v.to(model.device) for k, v in inputs.items()}
                    output = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                            pad_token_id=tokenizer.pad_token_id)
                    width = inputs["input_ids"].shape[1]
                    answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
        finally:
            tokenizer.padding_side = side
        return answers

    def __call__(self, model: Any) -> float:
        was_training = model.training
        model.eval()
        try:
            answers = self.answers(model)
        finally:
            if was_training:
                model.train()
        scores = [score_answer(self.metric, answer, case.reference) for answer, case in zip(answers, self.cases,
                                                                                             strict=True)]
        return sum(scores) / len(scores) if scores else 0.0


def task_metric_callback(scorer: TaskMetricScorer, curve: list[tuple[int, float]]) -> Any:
    """A TrainerCallback adding `eval_task_metric` to each evaluation's metrics (before early stopping and the
    best-checkpoint bookkeeping read them) and keeping the curve."""
    from transformers import TrainerCallback

    class TaskMetric(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            if metrics is None or model is None:
                return
            value = scorer(model)
            # What the Trainer ranks checkpoints by: the task metric, ties broken by the lower eval loss (a flat
            # task metric early in training would otherwise keep the first, least-trained checkpoint).
            metrics[METRIC_KEY] = value - TIE_BREAK * float(metrics.get("eval_loss", 0.0))
            curve.append((state.global_step, value))

    return TaskMetric()
