"""The hybrid, measured: a bench with documents and training data trains a LoRA adapter on the bundled model and
measures `finetuned_rag` (RAG answering with the adapted model) end to end beside `rag`, each priced and ranked
(a few training steps: the mechanism, not a verdict)."""

from __future__ import annotations

import json
from pathlib import Path

from adaptlab.bench.run import run_bench
from adaptlab.config import load_config
from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles

ARTICLES = 2


def test_a_bench_with_documents_and_training_data_measures_finetuned_rag(tmp_path: Path) -> None:
    write_articles(BUNDLED_COVID_QA, tmp_path, limit=ARTICLES)
    questions = [json.loads(line) for line in (tmp_path / "questions.jsonl").read_text().splitlines()]
    cases = [q for q in questions if q.get("answers")][:3]
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(q) + "\n" for q in cases), encoding="utf-8")
    train = [{"messages": [{"role": "user", "content": q["question"]},
                           {"role": "assistant", "content": q["answers"][0]}]} for q in questions[3:15]]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(t) + "\n" for t in train), encoding="utf-8")
    (tmp_path / "workload.toml").write_text(
        "[workload]\nqueries_per_day = 500\nmin_examples_for_finetune = 5\n[serving]\nmode = 'self_hosted'\n"
        "gpu_usd_per_hour = 0.1\nuse_measured_latency = true\n", encoding="utf-8")
    config = tmp_path / "adaptlab.toml"
    config.write_text('''home = "home"
[runtime]
threads = 1
[generator]
max_tokens = 16
[train]
max_steps = 2
batch_size = 2
[tracking]
enabled = false
[bench]
documents = ["articles"]
cases = "cases.jsonl"
train = "train.jsonl"
workload = "workload.toml"
strategies = ["rag", "finetuned_rag"]
''', encoding="utf-8")
    outcome = run_bench(load_config(config), out_dir=tmp_path / "report")
    results = outcome.results
    hybrid = results.strategy("finetuned_rag")
    assert hybrid is not None and hybrid.family == "finetuned_rag"
    assert hybrid.params["adapter"].endswith(".gguf")  # trained here, loaded by llama.cpp on the base
    assert all(c.error is None for c in hybrid.cases) and len(hybrid.cases) == len(cases)
    assert hybrid.metric("recall_at_5") is not None  # it retrieves like rag
    stages = {s.name: s.status for s in results.stages}
    assert stages["adapter"] == "built" and stages["index"] == "built"
    advice = results.advice
    assert advice is not None and {r.name for r in advice.strategies} == {"rag", "finetuned_rag"}
    priced = advice.ranked("finetuned_rag")
    assert priced is not None and "training" in priced.tco.lines and "vector_db" in priced.tco.lines
