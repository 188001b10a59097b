"""`adaptlab demo`: `adaptlab bench` end to end on bundled sample data, two tasks, one report.

- Knowledge questions: a COVID-QA subset (scientific articles, SQuAD-style questions; Apache-2.0, deepset).
  Measures prompt vs RAG (each ± the answer cache) on token F1, retrieval recall and citations.
- A JSON task: a SNIPS subset (voice requests → {"intent", "slots"}; CC0 1.0, Sonos). Measures few-shot
  prompting with a JSON-schema grammar vs a LoRA adapter fine-tuned here (each ± the answer cache).

Each task is written out as the files a team would bring (documents, eval cases, training examples, a query
log, a workload and an adaptlab.toml with its [bench] section) under <home>/demo/<task>/, then benched with
exactly the code path of `adaptlab bench --config <home>/demo/<task>/adaptlab.toml`. Seeded and greedy, so a
rerun measures the same answers; the index and the adapter are reused when nothing changed.

The query logs are synthetic (the datasets ship none): each task's own questions drawn with Zipf-like
popularity, over a week, some reworded — the report says so.
"""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from adaptlab.bench.results import BenchResult, BenchSummary
from adaptlab.bench.run import BenchOutcome, run_bench
from adaptlab.config import AdaptlabConfig, load_config
from adaptlab.datasets.squad import BUNDLED_COVID_QA, BUNDLED_SNIPS, write_articles
from adaptlab.eval.results import RESULTS_FORMAT_VERSION, Record
from adaptlab.textfiles import write_jsonl_atomic, write_text_atomic

SEED = 0
LOG_START = 1_767_225_600  # 2026-01-01T00:00:00Z: fixed, so the logs are byte-identical on every run
REWORDINGS = ("Quick question: {q}", "{q} Thanks!", "Can you tell me: {q}", "{lower}")


@dataclass(frozen=True)
class DemoSize:
    articles: int
    knowledge_cases: int
    knowledge_log: int
    intent_train_per_intent: int
    intent_eval_per_intent: int
    intent_log: int
    train_steps: int
    warm_questions: int
    learning_curve: tuple[float, ...]  # shares of the training data fine-tuning's learning curve trains on
    eval_steps: int  # validation (the checkpoint's task metric) every N training steps (0: the bench picks 4 per run)
    probe_cases: int  # knowledge questions the forgetting probe asks the base model and the adapter


FULL = DemoSize(articles=16, knowledge_cases=30, knowledge_log=400, intent_train_per_intent=30,
                intent_eval_per_intent=4, intent_log=300, train_steps=40, warm_questions=24,
                learning_curve=(0.25, 0.5, 1.0), eval_steps=0, probe_cases=10)
QUICK = DemoSize(articles=6, knowledge_cases=10, knowledge_log=150, intent_train_per_intent=30,
                 intent_eval_per_intent=1, intent_log=100, train_steps=6, warm_questions=6,
                 learning_curve=(0.5, 1.0), eval_steps=3, probe_cases=3)


@dataclass
class DemoOutcome:
    tasks: list[BenchOutcome]
    report_path: Path
    results_path: Path
    seconds: float
    peak_rss_mb: float

    def summary(self) -> DemoSummary:
        return DemoSummary(report=str(self.report_path), results=str(self.results_path),
                           seconds=round(self.seconds, 1), peak_rss_mb=round(self.peak_rss_mb, 1),
                           tasks=[task.results.summary() for task in self.tasks])


class DemoSummary(Record):
    """What `adaptlab demo --json` prints."""

    report: str
    results: str
    seconds: float
    peak_rss_mb: float
    tasks: list[BenchSummary]


class DemoResults(Record):
    """The demo's results.json: both tasks' bench results."""

    kind: Literal["adaptlab-demo"] = "adaptlab-demo"
    format_version: Literal[2] = RESULTS_FORMAT_VERSION
    quick: bool
    tasks: list[BenchResult]


def synthetic_query_log(questions: list[str], n: int, *, seed: int = SEED, days: float = 7.0) -> list[dict]:
    """n queries drawn from `questions` with Zipf-like popularity (weight 1/rank^1.1), timestamps spread over
    `days`; one in five reworded (a prefix, a suffix, or lower case) so the semantic cache has work to do."""
    rng = random.Random(seed)
    pool = list(questions)
    rng.shuffle(pool)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    times = sorted(rng.uniform(0, days * 86_400) for _ in range(n))
    records = []
    for moment in times:
        question = rng.choices(pool, weights)[0]
        if rng.random() < 0.2:
            question = rng.choice(REWORDINGS).format(q=question, lower=question.lower())
        records.append({"question": question, "timestamp": round(LOG_START + moment)})
    return records


def cases_from_traffic(questions: list[dict], log: list[dict], n: int, *, seed: int = SEED) -> list[dict]:
    """n eval cases drawn from the traffic (the distinct logged questions, as a team samples its eval set from
    production): popular questions are likelier to be picked, so the cached strategies meet some of them warm."""
    by_text = {q["question"]: q for q in questions}
    traffic = [r["question"] for r in log if r["question"] in by_text]
    random.Random(seed).shuffle(traffic)  # a random sample of requests, so each question as often as it is asked
    return [by_text[text] for text in list(dict.fromkeys(traffic))[:n]]


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


# How the knowledge task answers: shared by its adaptlab.toml and hybrid.toml, so both measure the same answers.
KNOWLEDGE_ANSWERING = """[runtime]
threads = {threads}

[generator]
max_tokens = 40

[answer]
context_chunks = 2                   # two 200-token sources: prefill dominates answer time on a CPU
"""


def prepare_knowledge(folder: Path, size: DemoSize, threads: int) -> Path:
    """COVID-QA articles, eval cases, a query log, a workload and adaptlab.toml; returns the config path."""
    data = folder / "data"
    articles, _ = write_articles(BUNDLED_COVID_QA, data, limit=size.articles)
    questions = [json.loads(line) for line in (data / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    log = synthetic_query_log([q["question"] for q in questions], size.knowledge_log)
    write_jsonl_atomic(data / "queries.jsonl", log)
    cases = cases_from_traffic(questions, log, size.knowledge_cases)
    write_jsonl_atomic(data / "cases.jsonl", cases)
    # The articles' other questions with their answers: training data for the fine-tuned + RAG hybrid, which
    # hybrid.toml measures (kept out of the default demo run for time).
    asked = {case["question"] for case in cases}
    write_jsonl_atomic(data / "train.jsonl", [
        {"messages": [{"role": "user", "content": q["question"]}, {"role": "assistant", "content": q["answers"][0]}]}
        for q in questions if q["question"] not in asked and q.get("answers")])
    write_text_atomic(folder / "workload.toml", KNOWLEDGE_WORKLOAD)
    write_text_atomic(folder / "hybrid.toml", KNOWLEDGE_HYBRID.format(
        answering=KNOWLEDGE_ANSWERING.format(threads=threads), steps=size.train_steps))
    write_text_atomic(folder / "adaptlab.toml",
                      f"""# adaptlab demo, task 1: knowledge questions on {articles} COVID-QA articles.
home = "project"

{KNOWLEDGE_ANSWERING.format(threads=threads)}
[bench]
title = "COVID-QA: knowledge questions"
documents = ["data/articles"]
cases = "data/cases.jsonl"
query_log = "data/queries.jsonl"
workload = "workload.toml"
warm_questions = {size.warm_questions}
""")
    return folder / "adaptlab.toml"


KNOWLEDGE_HYBRID = """# adaptlab demo, task 1 with fine-tuning: rag against finetuned_rag (RAG answering with a
# LoRA adapter trained on the articles' other questions). Not part of `adaptlab demo` (training adds minutes):
#   adaptlab bench --config <this file>
home = "project"

{answering}
[train]
max_steps = {steps}
batch_size = 4
learning_rate = 0.0005
eval_fraction = 0.1

[bench]
title = "COVID-QA: RAG against fine-tuned RAG"
documents = ["data/articles"]
cases = "data/cases.jsonl"
train = "data/train.jsonl"
workload = "workload.toml"
strategies = ["rag", "finetuned_rag"]
learning_curve = []                  # one adapter: the hybrid measured, not its learning curve
"""


def prepare_intents(folder: Path, size: DemoSize, threads: int) -> Path:
    """SNIPS training examples, eval cases, few-shot examples, schema, a query log, a workload and
    adaptlab.toml; returns the config path."""
    from adaptlab.datasets.snips import convert_snips

    data = folder / "data"
    split = convert_snips(BUNDLED_SNIPS, data, train_per_intent=size.intent_train_per_intent,
                          eval_per_intent=size.intent_eval_per_intent, fewshot_per_intent=2, seed=SEED)
    utterances = [json.loads(line)["messages"][1]["content"]
                  for line in split.train_path.read_text(encoding="utf-8").splitlines()]
    utterances += [json.loads(line)["question"] for line in split.eval_path.read_text(encoding="utf-8").splitlines()]
    write_jsonl_atomic(data / "queries.jsonl", synthetic_query_log(utterances, size.intent_log))
    # The forgetting probe: the first task's knowledge questions, asked of the base model and of the adapter.
    knowledge_cases = folder.parent / "knowledge" / "data" / "cases.jsonl"
    probe = [json.loads(line) for line in knowledge_cases.read_text(encoding="utf-8").splitlines()[:size.probe_cases]]
    write_jsonl_atomic(data / "probe.jsonl", probe)
    write_text_atomic(folder / "workload.toml", INTENTS_WORKLOAD)
    system_prompt = split.system_prompt_path.read_text(encoding="utf-8").strip()
    write_text_atomic(folder / "adaptlab.toml",
                      f"""# adaptlab demo, task 2: voice requests → JSON (SNIPS, {len(split.intents)} intents).
home = "project"

[runtime]
threads = {threads}

[generator]
max_tokens = 96

[train]
max_steps = {size.train_steps}
batch_size = 4
max_length = 256
learning_rate = 0.0005
eval_fraction = 0.05
eval_steps = {size.eval_steps}

# The prompting baseline fine-tuning has to beat: the 4 most similar worked examples and decoding constrained
# to the JSON schema (llama.cpp grammar).
[strategies.prompt]
kind = "prompt"
system_prompt = {_toml_string(system_prompt)}
few_shot_path = "data/fewshot.jsonl"
few_shot_k = 4
few_shot_selection = "similar"
json_schema_path = "data/schema.json"

[bench]
title = "SNIPS: voice requests to JSON"
cases = "data/eval.jsonl"
train = "data/train.jsonl"
query_log = "data/queries.jsonl"
workload = "workload.toml"
warm_questions = {size.warm_questions}
strategies = ["prompt", "finetuned"]
learning_curve = {list(size.learning_curve)}
forgetting_cases = "data/probe.jsonl"
""")
    return folder / "adaptlab.toml"


# Both tasks are priced as served from a 2-vCPU cloud VM like the machine the demo measures on: each answer
# costs its measured wall time. The hourly price is an assumption stated in the report.
_SERVING = """
[serving]
mode = "self_hosted"
gpu_usd_per_hour = 0.067             # assumed: a 2-vCPU cloud VM (e.g. GCP e2-standard-2), the demo's machine
use_measured_latency = true          # each answer costs the wall time it took in the bench
utilisation = 0.6
billing = "per_token"

[training]
gpu_usd_per_hour = 0.067             # training runs on the same VM; its hours are measured by the bench
model_params_billion = 0.135

[rag]
documents = 2_000                    # assumed: the team's corpus (the demo indexes a sample of it)
tokens_per_document = 6_000
vector_db = "self-hosted"
embedding = "self-hosted"

[cache]
hosting = "self-hosted"
ttl_days = 7
"""

KNOWLEDGE_WORKLOAD = """# Demo workload, task 1: a research team's question-answering assistant.
name = "demo: COVID-QA knowledge questions"

[workload]
queries_per_day = 2_000              # assumed
months = 12
knowledge_changes_every_days = 30    # new papers every month
quality_metric = "token_f1"
""" + _SERVING

INTENTS_WORKLOAD = """# Demo workload, task 2: a voice assistant's request parser.
name = "demo: SNIPS voice requests to JSON"

[workload]
queries_per_day = 50_000             # assumed
months = 12
quality_metric = "field.intent"      # intent accuracy
""" + _SERVING


def run_demo(home: Path, *, quick: bool = False, threads: int = 1,
             progress: Callable[[str, int, int], None] | None = None,
             on_stage: Callable[[str], None] | None = None) -> DemoOutcome:
    """Prepare both tasks under <home>/demo/, bench each, and write one report for both."""
    from adaptlab.bench.html import write_bench_html

    started = time.perf_counter()
    size = QUICK if quick else FULL
    stage = on_stage or (lambda _: None)
    root = home / "demo" / ("quick" if quick else "full")
    outcomes: list[BenchOutcome] = []
    for title, prepare, folder in (("COVID-QA knowledge questions", prepare_knowledge, root / "knowledge"),
                                   ("SNIPS voice requests → JSON", prepare_intents, root / "intents")):
        stage(f"Task {len(outcomes) + 1} of 2, {title}: writing the sample data to {folder}")
        config_path = prepare(folder, size, threads)
        config: AdaptlabConfig = load_config(config_path)
        outcomes.append(run_bench(config, progress=progress, on_stage=on_stage, out_dir=folder / "report"))
    results = [outcome.results for outcome in outcomes]
    report_dir = root / "report"
    report_path = write_bench_html(results, report_dir / "report.html", title="adaptlab demo")
    results_path = report_dir / "results.json"
    write_text_atomic(results_path, DemoResults(quick=quick, tasks=results).model_dump_json(indent=2) + "\n")
    return DemoOutcome(outcomes, report_path, results_path, time.perf_counter() - started,
                       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
