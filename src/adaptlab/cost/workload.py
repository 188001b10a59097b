"""The workload file `adaptlab advise --workload FILE` reads: the facts about a team's traffic and data that no
benchmark can measure (queries per day, how often the knowledge changes, whether answers must cite sources,
how many clean labelled examples exist, the budget) and the deployment to price (an API model, or GPUs).

Every field has a default and a description, like adaptlab.toml; unknown keys are refused so a typo never
passes silently. Numbers a bench run measures (tokens per query, quality, cache hit rate) can also be declared
here: `advise` without `--from RUN` prices the declared ones and labels every figure an estimate.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adaptlab.errors import ConfigError
from adaptlab.eval.results import FAMILIES, Family

# finetuned_rag: the fine-tuned model answering with retrieval (the same name as the strategy kind).
RAG_FAMILIES = frozenset({"rag", "finetuned_rag"})
FINETUNED_FAMILIES = frozenset({"finetuned", "finetuned_rag"})
# Workload files written before the family took the strategy kind's name call it "hybrid".
_FAMILY_ALIASES = {"hybrid": "finetuned_rag"}


def _family_alias(value: object) -> object:
    return _FAMILY_ALIASES.get(value, value) if isinstance(value, str) else value


class WorkloadError(ConfigError):
    """The workload file is missing or has a bad value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkloadFacts(_Section):
    queries_per_day: float = Field(..., ge=0, description="Questions answered per day in production.")
    months: int = Field(12, ge=1, le=120, description="Horizon of the total cost of ownership, in months.")
    consider: list[Family] = Field(
        default_factory=lambda: list(FAMILIES), min_length=1,
        description="Strategy families to price and rank (bench-run strategies of other families are left out).")
    growth_per_month: float = Field(
        0.0, ge=-0.5, le=2.0, description="Traffic growth per month (0.05 = +5% a month, compounding).")
    knowledge_changes_every_days: float | None = Field(
        None, gt=0, description="How often the domain knowledge changes (days). Unset: it does not change; "
        "a fine-tuned model is trained once. Set: the fine-tuned-only strategy is retrained that often.")
    citations_required: bool = Field(
        False, description="Answers must cite their sources (traceability, compliance): only strategies that "
        "retrieve (rag, finetuned_rag) qualify.")
    clean_labelled_examples: int | None = Field(
        None, ge=0, description="Clean labelled examples available for fine-tuning (after `adaptlab data check "
        "--fix`). Unset: unknown, fine-tuning is assumed possible and the advice says so.")
    min_examples_for_finetune: int = Field(
        200, ge=1, description="Fewest clean examples that make fine-tuning a candidate (`data check`'s READY bar).")
    budget_usd: float | None = Field(
        None, gt=0, description="Most the team can spend over the horizon; dearer strategies are excluded.")
    quality_metric: str = Field(
        "", description="Metric that decides quality (e.g. token_f1, accuracy, judge_score). Empty: the first of "
        "judge_score, accuracy, token_f1, field_f1, schema_valid, exact_match the run measured for every strategy.")
    quality_floor: float | None = Field(
        None, description="Set: every strategy whose measured quality reaches this value competes on cost alone, "
        "even one significantly worse than the best.")
    significance: float = Field(0.05, gt=0, lt=1, description="p-value below which a quality difference counts.")
    engineer_usd_per_hour: float = Field(100.0, ge=0, description="Cost of one engineering hour.")
    system_tokens: int = Field(60, ge=0, description="Declared tokens of the system prompt (no bench run).")
    fewshot_tokens: int = Field(
        0, ge=0, description="Declared tokens of few-shot examples the prompt strategies send (a fine-tuned model "
        "needs none).")

    @field_validator("consider", mode="before")
    @classmethod
    def _old_family_names(cls, value: object) -> object:
        return [_family_alias(v) for v in value] if isinstance(value, list) else value
    question_tokens: int = Field(40, ge=0, description="Declared tokens of a question (no bench run).")
    completion_tokens: int = Field(80, ge=0, description="Declared tokens of an answer (no bench run).")


class ServingInputs(_Section):
    mode: Literal["api", "self_hosted"] = Field(
        "self_hosted", description="'api': a hosted model billed per token; 'self_hosted': your own GPUs.")
    api_model: str = Field("openai/gpt-4o-mini", description="Price catalog key of the API model (mode 'api').")
    prefix_cache: bool = Field(
        True, description="Price the provider's prompt (prefix) caching of the static prompt prefix (mode 'api').")
    prefix_cache_ttl_seconds: float = Field(300, gt=0, description="Provider prefix-cache lifetime (mode 'api').")
    gpu: str = Field("gcp/l4", description="Price catalog key of the serving GPU (mode 'self_hosted').")
    gpu_usd_per_hour: float | None = Field(None, ge=0, description="Overrides the catalog's GPU hourly price.")
    decode_tokens_per_second: float = Field(
        1500, gt=0, description="Completion tokens per second one GPU generates across all concurrent requests "
        "(measure it with your engine at your batch size).")
    prefill_tokens_per_second: float = Field(
        15000, gt=0, description="Prompt tokens per second one GPU processes (prefill is batched and compute-bound, "
        "typically 5–20× decode).")
    utilisation: float = Field(
        0.6, gt=0, le=1, description="Share of paid GPU time doing useful work (traffic is not flat).")
    billing: Literal["per_token", "dedicated"] = Field(
        "per_token", description="'per_token': pay for the GPU time used (serverless, shared); 'dedicated': whole "
        "GPUs run all month, as many as the peak needs.")
    use_measured_latency: bool = Field(
        False, description="With --from RUN, price each query by the machine time it took in the run (latency "
        "× gpu_usd_per_hour) instead of the declared throughputs: the bench machine is the production machine.")


class TrainingInputs(_Section):
    model_params_billion: float = Field(7.0, gt=0, description="Parameters of the model fine-tuned, in billions.")
    examples: int | None = Field(
        None, ge=0, description="Training examples per run. Unset: workload.clean_labelled_examples (else 1,000).")
    tokens_per_example: float = Field(300, gt=0, description="Tokens per training example.")
    epochs: float = Field(3, gt=0, description="Epochs per training run.")
    flops_per_param_token: float = Field(
        6.0, gt=0, description="Training FLOPs per parameter per token (6: forward + backward).")
    gpu: str = Field("lambda/h100-sxm", description="Price catalog key of the training GPU.")
    gpu_usd_per_hour: float | None = Field(None, ge=0, description="Overrides the catalog's GPU hourly price.")
    mfu: float = Field(0.35, gt=0, le=1, description="Model FLOPs utilisation: share of the GPU's peak reached.")
    measured_gpu_hours: float | None = Field(
        None, ge=0, description="GPU hours one training run took, measured; replaces the FLOPs estimate.")
    usd_per_run: float = Field(0.0, ge=0, description="Other cost of each run (storage, evaluation, transfer).")
    data_prep_hours: float = Field(0.0, ge=0, description="Engineering hours to prepare the data, once.")
    hours_per_retrain: float = Field(0.0, ge=0, description="Engineering hours each retraining takes.")
    retrains_per_year: float | None = Field(
        None, ge=0, description="Overrides the retrains derived from knowledge_changes_every_days.")
    max_retrains_per_year: float = Field(
        52, gt=0, description="Most retrains a year the team can run; knowledge changing faster leaves the "
        "fine-tuned-only model stale, and it is excluded.")


class RagInputs(_Section):
    documents: int = Field(10_000, ge=0, description="Documents in the corpus at the start.")
    tokens_per_document: float = Field(500, gt=0, description="Mean tokens per document.")
    chunk_tokens: float = Field(200, gt=0, description="Tokens per chunk (one vector each).")
    new_documents_per_month: int = Field(0, ge=0, description="Documents added (or re-embedded) each month.")
    embedding: str = Field(
        "self-hosted", description="Price catalog key of the embedding API, or 'self-hosted' (no per-token cost).")
    dimension: int | None = Field(None, gt=0, description="Vector dimension. Unset: the embedding's (384 self-hosted).")
    vector_db: str = Field(
        "self-hosted", description="Vector DB hosting: a catalog tier key or provider (cheapest tier that fits).")
    vector_db_usd_per_month: float | None = Field(
        None, ge=0, description="Overrides the catalog: a flat monthly vector DB price.")
    index_overhead: float = Field(
        1.5, ge=1, description="Stored bytes per raw vector byte (HNSW graph, payload, ids).")
    context_tokens: int = Field(
        500, ge=0, description="Declared retrieved-context tokens per query (no bench run).")
    setup_hours: float = Field(0.0, ge=0, description="Engineering hours to set up ingestion and retrieval, once.")


class CacheInputs(_Section):
    hit_rate: float | None = Field(
        None, ge=0, le=1, description="Share of queries the answer cache serves. Unset: the measured rate of a "
        "cached strategy in the run, else the query log's predicted rate, else the cache is not priced.")
    query_log: str = Field(
        "", description="A query log (JSONL or CSV, optionally with timestamps; relative to the workload file) to "
        "predict the hit rate from, as `adaptlab cache analyze` does.")
    semantic: bool = Field(True, description="Semantic lookups embed every question (priced like the embedding).")
    hosting: str = Field("self-hosted", description="Redis hosting: a catalog tier key or provider.")
    hosting_usd_per_month: float | None = Field(None, ge=0, description="Overrides the catalog: flat monthly price.")
    ttl_days: float = Field(7, gt=0, description="How long an answer stays cached (sizes the Redis memory).")
    entry_bytes: int = Field(4096, gt=0, description="Bytes per cached answer (text, sources, vector, keys).")
    setup_hours: float = Field(0.0, ge=0, description="Engineering hours to set up the cache, once.")


class DeclaredStrategy(_Section):
    """Declared numbers for one strategy family, used without a bench run (all optional)."""

    prompt_tokens: int | None = Field(None, ge=0, description="Prompt tokens per query.")
    completion_tokens: int | None = Field(None, ge=0, description="Completion tokens per query.")
    quality: float | None = Field(None, description="Quality on the decision metric (an estimate).")
    quality_low: float | None = Field(None, description="Lower bound of the quality estimate.")
    quality_high: float | None = Field(None, description="Upper bound of the quality estimate.")


class Workload(_Section):
    workload: WorkloadFacts
    serving: ServingInputs = Field(default_factory=ServingInputs)
    training: TrainingInputs = Field(default_factory=TrainingInputs)
    rag: RagInputs = Field(default_factory=RagInputs)
    cache: CacheInputs = Field(default_factory=CacheInputs)
    strategies: dict[Family, DeclaredStrategy] = Field(
        default_factory=dict,
        description="Declared numbers per strategy family (prompt, rag, finetuned, finetuned_rag).")
    name: str = Field("", description="A title for the report (default: the file name).")
    source_path: str = Field("", exclude=True)

    @field_validator("strategies", mode="before")
    @classmethod
    def _old_family_sections(cls, value: object) -> object:
        return {_family_alias(k): v for k, v in value.items()} if isinstance(value, dict) else value


def load_workload(path: str | Path) -> Workload:
    """Read and validate a workload TOML file; every error names the file, the setting and the fix."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkloadError(f"{file}: no such workload file — write one (see examples/workloads/ and "
                            f"docs/guide/cost.md) or pass the right path to --workload.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{file}: cannot read the workload file ({exc}) — save it as UTF-8 text.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkloadError(f"{file}: not valid TOML ({exc}) — fix the syntax at the line shown.") from None
    if "workload" not in data:
        raise WorkloadError(f"{file}: no [workload] section — add one with at least queries_per_day = N.")
    try:
        workload = Workload.model_validate(data)
    except ValidationError as exc:
        lines = [f"{file}: invalid workload"]
        for item in exc.errors():
            location = ".".join(str(part) for part in item["loc"])
            lines.append(f"  {location}: {item['msg']} (got {item.get('input')!r})")
        lines.append("  Fix the value(s) above; docs/reference/configuration.md (Workload file) lists every "
                     "workload setting.")
        raise WorkloadError("\n".join(lines)) from None
    workload.source_path = str(file.resolve())
    if not workload.name:
        workload.name = file.stem
    return workload


def resolve_relative(workload: Workload, raw: str) -> Path:
    """A path in the workload file, relative to that file."""
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute() and workload.source_path:
        candidate = Path(workload.source_path).parent / candidate
    return candidate
