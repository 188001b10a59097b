"""What every stage of a bench shares: the project it builds in, the plan, the cases read once, the progress
callbacks, and the stage records, warnings and measurement notes the report shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adaptlab.bench.plan import BenchPlan
from adaptlab.bench.results import Measurement, StageRecord
from adaptlab.project import Project

if TYPE_CHECKING:
    from adaptlab.cache.analyze import QueryLog
    from adaptlab.eval.cases import EvalCase
    from adaptlab.eval.plan import RunEstimate

ProgressCallback = Callable[[str, int, int], None]  # stage label, done, total
StageCallback = Callable[[str], None]


@dataclass
class BenchContext:
    """One bench run's shared state (built by run_bench, passed to every stage)."""

    project: Project
    plan: BenchPlan
    cases: list[EvalCase]  # read once
    query_log: QueryLog | None  # read once; None without bench.query_log
    progress: ProgressCallback
    on_stage: StageCallback
    stages: list[StageRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    measurement: list[Measurement] = field(default_factory=list)
    training_seconds: float | None = None  # of the adapter's training run (built now or earlier)
    resume: bool = False  # continue the eval runs stored under this bench's run id
    concurrency: int | None = None  # None: eval.concurrency
    before_run: Callable[[RunEstimate], None] | None = None

    def stage(self, name: str, status: str, started: float, detail: str = "") -> None:
        self.stages.append(StageRecord(name=name, status=status,
                                       seconds=round(time.perf_counter() - started, 2), detail=detail))

    def measured(self, what: str, how: str) -> None:
        self.measurement.append(Measurement(what=what, how=how))
