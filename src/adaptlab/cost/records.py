"""The advice as a typed record: what advice.json and a bench's results.json hold, and what the bench report,
`adaptlab bench` and the demo read. Built by `Advice.record()`; the advisor's working objects (`Advice`,
`Ranked`, `VariantTco`) stay free to change without changing the files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from adaptlab.eval.results import Family


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QualityRecord(_Record):
    metric: str
    value: float
    low: float | None
    high: float | None
    n: int
    measured: bool  # False: declared in the workload (an estimate)


class CostLineRecord(_Record):
    total: float
    monthly: list[float]
    note: str = ""


class TcoRecord(_Record):
    name: str
    family: Family
    cached: bool
    hit_rate: float
    total: float
    usd_per_answer: float  # inference price of one generated answer (a cache miss)
    prompt_tokens: float
    completion_tokens: float
    monthly_totals: list[float]
    cumulative: list[float]
    lines: dict[str, CostLineRecord]
    prefix_cache_note: str = ""


class RankedRecord(_Record):
    rank: int | None  # None: excluded
    name: str
    family: Family
    cached: bool
    hit_rate: float
    hit_rate_source: str
    tier: int  # 1 best quality, 2 significantly worse, 3 not measured
    quality: QualityRecord | None
    tokens_measured: bool
    total_usd: float
    reasons: list[str]
    excluded: list[str]
    tco: TcoRecord
    provisional: str = ""  # why its quality is not a settled verdict (an unconverged fine-tuned adapter)


class BreakEvenRecord(_Record):
    a: str
    b: str
    queries_per_day: float
    cheaper_below: str


class SensitivityRecord(_Record):
    input: str
    minus_50: str
    base: str
    plus_50: str
    changes_winner: bool


class AdviceRecord(_Record):
    title: str
    estimate: bool  # declared inputs, not a measured run
    run_id: str | None
    metric: str | None
    months: int
    queries_per_day: float
    recommendation: str | None
    strategies: list[RankedRecord]  # ranked first (rank 1..), then excluded
    break_even: list[BreakEvenRecord]
    sensitivity: list[SensitivityRecord]
    provenance: list[str]
    notes: list[str]

    @property
    def winner(self) -> RankedRecord | None:
        return next((r for r in self.strategies if r.rank == 1), None)

    def ranked(self, name: str) -> RankedRecord | None:
        return next((r for r in self.strategies if r.name == name), None)
