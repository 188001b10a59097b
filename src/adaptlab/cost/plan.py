"""A run's estimate (adaptlab.eval.plan) priced at catalog prices, and the `--max-cost` check.

A strategy on a generator with `price_api_model` is priced per token at that catalog entry; one with
`usd_per_hour` at the estimated wall time; one on a model with neither (the bundled GGUF) costs nothing to run
here and is listed as not priced.
"""

from __future__ import annotations

from dataclasses import dataclass

from adaptlab.config import AdaptlabConfig
from adaptlab.cost.catalog import PriceCatalog
from adaptlab.errors import InputError
from adaptlab.eval.plan import RunEstimate, StrategyEstimate


@dataclass(frozen=True)
class PricedStrategy:
    estimate: StrategyEstimate
    usd: float | None  # None: not priced (a local model with no price source)
    source: str


@dataclass(frozen=True)
class PricedRun:
    strategies: list[PricedStrategy]
    eta_seconds: float

    @property
    def usd(self) -> float:
        return sum(s.usd or 0.0 for s in self.strategies)


def price_run(estimate: RunEstimate, config: AdaptlabConfig, catalog: PriceCatalog) -> PricedRun:
    priced = []
    for item in estimate.strategies:
        settings = config.generator if item.generator == "default" else config.generators.get(item.generator)
        if settings is not None and settings.price_api_model:
            model = catalog.api_model(settings.price_api_model)
            usd = (item.prompt_tokens * model.input_per_mtok + item.completion_tokens * model.output_per_mtok) / 1e6
            priced.append(PricedStrategy(item, usd, f"{model.key} list prices"))
        elif settings is not None and settings.usd_per_hour is not None:
            priced.append(PricedStrategy(item, item.eta_seconds / 3600 * settings.usd_per_hour,
                                         f"${settings.usd_per_hour:g}/h × the ETA"))
        else:
            priced.append(PricedStrategy(item, None, "not priced (no price_api_model or usd_per_hour)"))
    return PricedRun(priced, estimate.eta_seconds)


def check_budget(run: PricedRun, max_cost: float | None) -> None:
    """Refuse a run whose estimated cost exceeds --max-cost, before any call is made."""
    if max_cost is not None and run.usd > max_cost:
        dearest = max(run.strategies, key=lambda s: s.usd or 0.0)
        raise InputError("--max-cost", None, f"this run would cost about ${run.usd:,.2f} at catalog prices "
                         f"(prompt tokens estimated, completions at their maximum), over the ${max_cost:,.2f} "
                         f"allowed; the dearest strategy is {dearest.estimate.name} (${dearest.usd or 0:,.2f})",
                         "raise --max-cost, or use --limit N to run fewer cases")
