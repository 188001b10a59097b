"""What a run will ask of each model before it asks anything: calls, estimated tokens and a rough ETA.

The estimate reads each strategy's recorded settings (`describe()`): its system prompt, few-shot examples,
retrieved context and answer budget. Completion tokens are counted at their maximum, so the estimate errs high.
`adaptlab.cost.plan` prices it at catalog prices; `--max-cost` refuses a run above a budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adaptlab.eval.cases import EvalCase
from adaptlab.eval.results import answering_params, generator_of
from adaptlab.strategies.base import Strategy

CHARS_PER_TOKEN = 4  # the usual estimate for English text
TOKENS_PER_EXAMPLE = 40  # a few-shot example: a short question and its answer
CHAT_OVERHEAD_TOKENS = 8  # role markers of a chat template
# Rough wall time of one answer when nothing was measured yet: a small local model on a CPU, or a hosted model.
ASSUMED_SECONDS_PER_CALL = 2.0


@dataclass(frozen=True)
class StrategyEstimate:
    name: str
    generator: str  # "default" is [generator]
    calls: int  # model calls, at most (a cached strategy's hits make fewer)
    prompt_tokens: int
    completion_tokens: int  # at the answer budget: an upper bound
    parallel: int  # answers in flight at once for this strategy
    seconds_per_call: float = ASSUMED_SECONDS_PER_CALL
    measured: bool = False  # seconds_per_call is this model's median in the project's eval log

    @property
    def eta_seconds(self) -> float:
        return self.calls * self.seconds_per_call / max(self.parallel, 1)


@dataclass(frozen=True)
class RunEstimate:
    eval_id: str  # what `--resume` takes if the run stops
    strategies: list[StrategyEstimate]

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.strategies)

    @property
    def eta_seconds(self) -> float:
        return sum(s.eta_seconds for s in self.strategies)


def _tokens(text: Any) -> int:
    return len(str(text or "")) // CHARS_PER_TOKEN


def _prompt_tokens(params: dict[str, Any], question: str) -> int:
    """params: the answering strategy's (`answering_params`)."""
    tokens = _tokens(params.get("system_prompt")) + _tokens(question) + CHAT_OVERHEAD_TOKENS
    tokens += int(params.get("few_shot_k") or 0) * TOKENS_PER_EXAMPLE
    if params.get("kind") in ("rag", "finetuned_rag"):
        chunk_tokens = int(params.get("chunk_size_tokens") or 0)
        tokens += int(params.get("context_chunks") or 0) * chunk_tokens
        # The judge reads the question and one passage per reranked candidate; a rewrite reads the question.
        tokens += int(params.get("rerank") or 0) * (chunk_tokens + _tokens(question) + CHAT_OVERHEAD_TOKENS)
        if params.get("rewrite", "none") != "none":
            tokens += _tokens(question) + CHAT_OVERHEAD_TOKENS
    return tokens




def estimate_run(eval_id: str, strategies: Sequence[Strategy], cases: Sequence[EvalCase], *, repeats: int,
                 concurrency: int, done: dict[str, int] | None = None,
                 seconds_per_call: Callable[[str], float | None] = lambda _: None) -> RunEstimate:
    """done: answers already stored per strategy (a resumed run), not asked again. seconds_per_call: a model's
    measured seconds per answer (from earlier runs), else ASSUMED_SECONDS_PER_CALL."""
    estimates = []
    for strategy in strategies:
        params = strategy.describe()
        answering = answering_params(params)
        remaining = max(0, len(cases) * repeats - (done or {}).get(strategy.name, 0))
        share = remaining / max(len(cases) * repeats, 1)
        prompt = sum(_prompt_tokens(answering, case.question) for case in cases) * repeats
        measured = seconds_per_call(str(answering.get("model")))
        estimates.append(StrategyEstimate(
            name=strategy.name, generator=generator_of(params), calls=remaining,
            prompt_tokens=round(prompt * share), completion_tokens=remaining * int(answering.get("max_tokens") or 0),
            parallel=min(concurrency, strategy.parallel_answers or concurrency),
            seconds_per_call=measured if measured is not None else ASSUMED_SECONDS_PER_CALL,
            measured=measured is not None))
    return RunEstimate(eval_id, estimates)
