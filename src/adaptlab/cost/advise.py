"""The advisor: rank the priced candidates and say why, each reason traced to a number.

Order of the decision (the framework of "Fine-Tuning vs RAG: Which Is More Cost-Effective in 2026?", made measurable):
1. Hard constraints exclude: citations required → only retrieving strategies; too few clean labelled examples
   → no fine-tuning; knowledge changing faster than the team can retrain → no fine-tuned-only model; a quality
   floor not met; over budget.
2. Quality: the best measured strategy sets the bar; a strategy significantly worse than it (paired test on the
   same cases, p < significance) ranks below every strategy that is not — unless the workload sets a quality
   floor, which every remaining strategy meets, so all compete on cost.
3. Cost: within a quality tier, the lower total cost of ownership wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from adaptlab.cost.evidence import Quality
from adaptlab.cost.inputs import Candidate, Scenario
from adaptlab.cost.records import (
    AdviceRecord,
    BreakEvenRecord,
    CostLineRecord,
    QualityRecord,
    RankedRecord,
    SensitivityRecord,
    TcoRecord,
)
from adaptlab.cost.tco import (
    BreakEven,
    CostInputs,
    SensitivityRow,
    Variant,
    VariantTco,
    all_break_evens,
    sensitivity,
    tco_all,
)
from adaptlab.cost.workload import FINETUNED_FAMILIES, RAG_FAMILIES
from adaptlab.eval.stats import PairedResult, paired_test
from adaptlab.numbers import usd

TIER_NAMES = {1: "best quality (not significantly worse than the best)", 2: "significantly worse quality",
              3: "quality not measured"}


@dataclass(frozen=True)
class QualityVerdict:
    tier: int  # 1 best, 2 significantly worse, 3 unknown
    reason: str
    test: PairedResult | None = None


@dataclass
class Ranked:
    candidate: Candidate
    tco: VariantTco
    tier: int
    rank: int | None  # None: excluded
    reasons: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.candidate.variant.name

    def record(self) -> RankedRecord:
        quality = self.candidate.quality
        variant, tco = self.candidate.variant, self.tco
        return RankedRecord(
            rank=self.rank, name=self.name, family=variant.family, cached=variant.cached, hit_rate=variant.hit_rate,
            hit_rate_source=self.candidate.hit_rate_source, tier=self.tier,
            quality=None if quality is None else QualityRecord(
                metric=quality.metric, value=quality.value, low=quality.low, high=quality.high, n=quality.n,
                measured=quality.measured),
            tokens_measured=self.candidate.tokens_measured, total_usd=tco.total, reasons=self.reasons,
            excluded=self.excluded, provisional=self.candidate.provisional,
            tco=TcoRecord(
                name=variant.name, family=variant.family, cached=variant.cached, hit_rate=variant.hit_rate,
                total=tco.total, usd_per_answer=tco.usd_per_answer, prompt_tokens=variant.tokens.prompt_tokens,
                completion_tokens=variant.tokens.completion_tokens, monthly_totals=tco.monthly_totals,
                cumulative=tco.cumulative,
                lines={line.name: CostLineRecord(total=line.total, monthly=list(line.monthly), note=line.note)
                       for line in tco.lines},
                prefix_cache_note=tco.prefix_cache_note))


@dataclass
class Advice:
    title: str
    estimate: bool
    metric: str | None
    months: int
    queries_per_day: float
    ranked: list[Ranked]  # ranked first (rank 1..), then excluded
    break_evens: list[BreakEven]
    sensitivity: list[SensitivityRow]
    provenance: list[str]
    notes: list[str]
    run_id: str | None = None

    @property
    def winner(self) -> Ranked | None:
        return next((r for r in self.ranked if r.rank == 1), None)

    def record(self) -> AdviceRecord:
        return AdviceRecord(
            title=self.title, estimate=self.estimate, run_id=self.run_id, metric=self.metric, months=self.months,
            queries_per_day=self.queries_per_day, recommendation=self.winner.name if self.winner else None,
            strategies=[r.record() for r in self.ranked],
            break_even=[BreakEvenRecord(a=b.a, b=b.b, queries_per_day=b.queries_per_day,
                                        cheaper_below=b.cheaper_below) for b in self.break_evens],
            sensitivity=[SensitivityRecord(input=s.label, minus_50=s.low_winner, base=s.base_winner,
                                           plus_50=s.high_winner, changes_winner=s.changes_winner)
                         for s in self.sensitivity],
            provenance=self.provenance, notes=self.notes)


# ----------------------------------------------------------------------------------------------- exclusions


def hard_exclusions(scenario: Scenario, candidate: Candidate) -> list[str]:
    """Constraints that do not depend on cost: each returned string is the reason, with its number."""
    facts = scenario.workload.workload
    family = candidate.variant.family
    reasons = []
    if facts.citations_required and family not in RAG_FAMILIES:
        reasons.append("citations required → only RAG-family strategies (rag, finetuned_rag) qualify")
    if family in FINETUNED_FAMILIES and facts.clean_labelled_examples is not None \
            and facts.clean_labelled_examples < facts.min_examples_for_finetune:
        reasons.append(f"{facts.clean_labelled_examples} clean labelled examples < "
                       f"{facts.min_examples_for_finetune} needed → fine-tuning excluded (collect more, then "
                       f"`adaptlab data check`)")
    limit = scenario.workload.training.max_retrains_per_year
    if family == "finetuned" and scenario.retrains_per_year > limit:
        reasons.append(f"knowledge changes every {facts.knowledge_changes_every_days:g} days = "
                       f"{scenario.retrains_per_year:.0f} retrains/yr > {limit:g} the team can run → a "
                       f"fine-tuned-only model would be stale; RAG-family strategies stay current")
    floor = facts.quality_floor
    quality = candidate.quality
    if floor is not None and quality is not None and quality.value < floor:
        reasons.append(f"{quality.metric} {quality.value:.3f} < quality floor {floor:g}")
    return reasons


# ------------------------------------------------------------------------------------------------ quality


def _paired(best: Quality, other: Quality) -> PairedResult | None:
    common = [c for c in best.per_case if c in other.per_case]
    return paired_test([best.per_case[c] for c in common], [other.per_case[c] for c in common])


def quality_verdicts(scenario: Scenario, eligible: list[Candidate]) -> dict[str, QualityVerdict]:
    facts = scenario.workload.workload
    alpha = facts.significance
    measured = [c for c in eligible if c.quality is not None]
    if not measured:
        return {c.variant.name: QualityVerdict(1, "") for c in eligible}
    best = max(measured, key=lambda c: c.quality.value)  # type: ignore[union-attr]
    bq = best.quality
    assert bq is not None
    verdicts: dict[str, QualityVerdict] = {}
    by_name = {c.variant.name: c for c in eligible}
    inherited = [c for c in eligible if c.base in by_name and c.quality is by_name[c.base].quality]
    for candidate in eligible:
        if candidate in inherited:
            continue
        name = candidate.variant.name
        q = candidate.quality
        if q is None:
            verdicts[name] = QualityVerdict(3, "quality not measured → ranked after the measured strategies")
            continue
        if candidate is best:
            verdicts[name] = QualityVerdict(1, f"best {q.metric}: {q.show()}")
            continue
        if facts.quality_floor is not None:  # the floor is met (else excluded): competes on cost
            verdicts[name] = QualityVerdict(1, f"{q.metric} {q.value:.3f} meets the quality floor "
                                               f"{facts.quality_floor:g} → competes on cost")
            continue
        test = _paired(bq, q) if (q.per_case and bq.per_case) else None
        if test is not None:
            diff = test.diff
            significant = not math.isnan(test.p_value) and test.p_value < alpha and diff < 0
            text = (f"{name} vs {best.variant.name}: {q.metric} {test.b:.3f} vs {test.a:.3f} "
                    f"(diff {diff:+.3f}, p = {test.p_value:.2g}, {test.test}, n = {test.n})")
            if significant:
                verdicts[name] = QualityVerdict(2, f"{text} → significantly worse: ranked below every strategy "
                                                   f"of best quality", test)
            else:
                verdicts[name] = QualityVerdict(1, f"{text} → difference not significant: the cheaper one wins",
                                                test)
            continue
        # Declared estimates: only non-overlapping intervals count as a difference.
        if q.high is not None and bq.low is not None and q.high < bq.low:
            verdicts[name] = QualityVerdict(2, f"{q.metric} {q.show()} lies below {best.variant.name}'s "
                                               f"{bq.show()} (estimates, intervals do not overlap) → worse")
        else:
            verdicts[name] = QualityVerdict(1, f"{q.metric} {q.show()} vs {best.variant.name} {bq.show()}: not "
                                               f"distinguishable (estimates) → the cheaper one wins")
    for candidate in inherited:  # a cache hit returns the wrapped strategy's answer: same quality, same tier
        base = verdicts[candidate.base]  # type: ignore[index]
        worse = "; significantly worse than the best, like it" if base.tier == 2 else ""
        verdicts[candidate.variant.name] = QualityVerdict(
            base.tier, f"quality as {candidate.base}'s (a cache hit returns its answer; bench a cached strategy "
                       f"to measure hits){worse}", base.test)
    return verdicts


# ------------------------------------------------------------------------------------------------- ranking


def _order(scenario: Scenario, inputs: CostInputs, variants: list[Variant],
           verdicts: dict[str, QualityVerdict], excluded: dict[str, list[str]]
           ) -> tuple[list[str], dict[str, VariantTco], dict[str, list[str]]]:
    """(ranked names, TCO of each, exclusions including budget) for these inputs."""
    tcos = tco_all(inputs, variants)
    budget = scenario.workload.workload.budget_usd
    all_excluded = {name: list(reasons) for name, reasons in excluded.items()}
    for name, tco in tcos.items():
        if budget is not None and tco.total > budget and not all_excluded.get(name):
            all_excluded.setdefault(name, []).append(
                f"TCO {usd(tco.total)} over {inputs.months} months > budget {usd(budget)}")
    eligible = [name for name in tcos if not all_excluded.get(name)]
    eligible.sort(key=lambda name: (verdicts[name].tier, tcos[name].total, name))
    return eligible, tcos, all_excluded


def advise(scenario: Scenario, *, with_sensitivity: bool = True) -> Advice:
    candidates = scenario.candidates
    by_name = {c.variant.name: c for c in candidates}
    excluded = {c.variant.name: hard_exclusions(scenario, c) for c in candidates}
    eligible = [c for c in candidates if not excluded[c.variant.name]]
    verdicts = quality_verdicts(scenario, eligible)
    for c in candidates:
        verdicts.setdefault(c.variant.name, QualityVerdict(3, ""))
    variants = [c.variant for c in candidates]
    order, tcos, all_excluded = _order(scenario, scenario.inputs, variants, verdicts, excluded)

    ranked: list[Ranked] = []
    months = scenario.inputs.months
    for position, name in enumerate(order, start=1):
        candidate = by_name[name]
        tco = tcos[name]
        reasons = [verdicts[name].reason] if verdicts[name].reason else []
        if candidate.provisional:
            reasons.append(f"provisional — {candidate.provisional}")
        reasons += _cost_reasons(scenario, candidate, tco, tcos, months)
        ranked.append(Ranked(candidate, tco, verdicts[name].tier, position, reasons))
    if ranked:
        _explain_winner(ranked, months)
    for name, reasons in all_excluded.items():
        if reasons:
            ranked.append(Ranked(by_name[name], tcos[name], verdicts[name].tier, None, [], reasons))

    def pick(inputs: CostInputs, moved: list[Variant]) -> str:
        names, _, _ = _order(scenario, inputs, moved, verdicts, excluded)
        return names[0] if names else "(none qualifies)"

    rows = sensitivity(scenario.inputs, variants, pick) if with_sensitivity and order else []
    qualifying = [c.variant for c in candidates if not all_excluded.get(c.variant.name)]
    break_evens = all_break_evens(scenario.inputs, qualifying)
    notes = list(scenario.notes)
    notes += _provisional_notes(ranked)
    if not any(c.quality is not None for c in candidates):
        notes.insert(0, "quality not measured or declared for any strategy: ranked by cost alone")
    if scenario.estimate:
        notes.insert(0, "no bench run: every figure is an estimate from the declared workload — run the bench and "
                        "pass --from RUN to price measurements")
    return Advice(scenario.workload.name, scenario.estimate, scenario.metric, months,
                  scenario.workload.workload.queries_per_day, ranked, break_evens, rows, scenario.provenance, notes,
                  scenario.run_id)


def _cost_reasons(scenario: Scenario, candidate: Candidate, tco: VariantTco, tcos: dict[str, VariantTco],
                  months: int) -> list[str]:
    reasons = []
    estimate = ", measured" if candidate.tokens_measured else ", declared: estimate"
    tokens = candidate.variant.tokens
    reasons.append(f"TCO {usd(tco.total)} over {months} months; {usd(1000 * tco.usd_per_answer)} per 1k generated "
                   f"answers ({tokens.prompt_tokens:,.0f} prompt + {tokens.completion_tokens:,.0f} completion "
                   f"tokens{estimate})")
    if tco.prefix_cache_note:
        reasons.append(tco.prefix_cache_note)
    retraining = tco.line("retraining")
    if retraining is not None and retraining.total:
        reasons.append(f"knowledge changes every {scenario.workload.workload.knowledge_changes_every_days:g} days "
                       f"→ {retraining.note} costing {usd(retraining.total)}")
    if candidate.variant.cached and candidate.base and candidate.base in tcos:
        saving = tcos[candidate.base].total - tco.total
        rate = candidate.variant.hit_rate
        source = candidate.hit_rate_source
        if saving > 0:
            reasons.append(f"hit rate {rate:.0%} ({source}) → add the cache: {usd(-saving)}/{_period(months)} "
                           f"vs {candidate.base}")
        else:
            reasons.append(f"hit rate {rate:.0%} ({source}) → the cache costs more than it saves: "
                           f"+{usd(-saving)}/{_period(months)} vs {candidate.base}")
    return reasons


def _provisional_notes(ranked: list[Ranked]) -> list[str]:
    """The recommendation says when a loser may not have lost for good: an unconverged fine-tuned strategy ranked
    below the winner is not a settled verdict against fine-tuning."""
    winner = next((r for r in ranked if r.rank == 1), None)
    notes = []
    for entry in ranked:
        if not entry.candidate.provisional or entry.candidate.base is not None:
            continue  # a cached variant repeats its inner strategy's note
        if entry is winner:
            notes.append(f"{entry.name} is recommended on a provisional measurement — {entry.candidate.provisional}")
        else:
            notes.append(f"{entry.name} is provisional, not a settled loser — {entry.candidate.provisional}; "
                         f"re-bench with more training data or steps before ruling it out")
    return notes


def _period(months: int) -> str:
    return "yr" if months == 12 else f"{months} months"


def _explain_winner(ranked: list[Ranked], months: int) -> None:
    winner = ranked[0]
    runner = next((r for r in ranked[1:] if r.tier == winner.tier), None)
    if runner is not None:
        winner.reasons.append(f"cheapest of its quality tier: {usd(runner.tco.total - winner.tco.total)} less than "
                              f"{runner.name} over {months} months")
    elif len(ranked) > 1:
        winner.reasons.append("the only strategy in the top quality tier")
