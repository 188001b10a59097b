"""`evaluate` end to end on a real LanceDB index and real MLflow/SQLite tracking, with a fake model.

The fake generator repeats the start of its prompt, so answers are deterministic and the RAG strategy's
answer quotes its first source — enough to check that every part of a run is recorded and compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_project

from adaptlab.eval.session import EvalRequest, HeldOutError, evaluate
from adaptlab.eval.store import EvalStore
from adaptlab.rag.index import ingest
from adaptlab.testing.fakes import FakeGenerator, HashEmbedder

DOCS = {
    "bridge.txt": "The Harbour Bridge opened in 1932. It took six years to build.",
    "bread.txt": "Sourdough bread rises overnight. A starter culture makes it sour.",
    "trains.txt": "The night train leaves at ten. Tickets are sold online.",
}


def write_cases(path: Path, n_repeat: int = 1) -> Path:
    rows = [
        {"id": "bridge", "question": "When did the Harbour Bridge open?", "answers": ["1932"],
         "gold_sources": ["docs/bridge.txt"]},
        {"id": "bread", "question": "What makes sourdough bread sour?", "answers": ["a starter culture"],
         "gold_sources": ["docs/bread.txt"]},
        {"id": "train", "question": "When does the night train leave?", "answers": ["at ten"],
         "gold_sources": ["docs/trains.txt"]},
    ] * n_repeat
    rows = [{**row, "id": f"{row['id']}-{i}"} for i, row in enumerate(rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def project(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    project = make_project(tmp_path / "home", embedder=HashEmbedder(64), answer={"min_relevance": -1.0},
                           generator=FakeGenerator())
    ingest([docs], project.config, store=project.store, embedder=project.embedder)
    return project


def test_two_strategies_scored_recorded_and_compared(project, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    cases = write_cases(tmp_path / "cases.jsonl")
    progress: list[tuple[str, int, int]] = []
    report = evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "out"),
                      progress=lambda *a: progress.append(a))
    prompt_run, rag_run = report.runs
    assert progress[-1] == ("rag", 3, 3) and ("prompt", 3, 3) in progress
    assert "recall_at_5" not in prompt_run.metrics  # the prompt strategy retrieves nothing
    assert rag_run.metrics["recall_at_5"].value == 1.0 and rag_run.metrics["recall_at_5"].n == 3
    assert {"exact_match", "token_f1", "groundedness", "citation_recall", "latency_ms"} <= set(rag_run.metrics)
    assert report.comparison is not None and "token_f1" in report.comparison

    # results.json and the HTML page
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [s["name"] for s in data["strategies"]] == ["prompt", "rag"]
    assert data["cases_sha256"] == report.cases_sha256 and len(data["strategies"][1]["cases"]) == 3
    assert "token_f1" in data["comparison"]["metrics"]
    assert "<html" in (tmp_path / "out" / "report.html").read_text().lower()

    # SQLite: every case result, and the run's final metrics
    store = EvalStore(project.log_path)
    assert len(store.results(rag_run.run_id)) == 3
    info = store.run_info(rag_run.run_id)
    assert info["status"] == "finished" and info["cases_sha256"] == report.cases_sha256
    assert info["metrics"]["recall_at_5"]["value"] == 1.0

    # MLflow (local SQLite backend in the project folder): params, metrics with CIs, artifacts
    client = MlflowClient(tracking_uri=f"sqlite:///{project.home / 'mlflow.db'}")
    run = client.get_run(rag_run.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["cases_sha256"] == report.cases_sha256 and run.data.params["kind"] == "rag"
    assert run.data.metrics["recall_at_5"] == 1.0
    assert {"token_f1_ci_low", "token_f1_ci_high", "token_f1_n", "seconds_per_case"} <= set(run.data.metrics)
    assert {a.path for a in client.list_artifacts(rag_run.run_id)} == {"results.json", "report.html"}
    assert run.data.tags["adaptlab.eval_id"] == report.eval_id


def test_compare_flags_a_significant_regression_and_not_an_identical_run(project, tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", n_repeat=8)  # 24 cases
    baseline = evaluate(project, EvalRequest(["rag"], cases, out_dir=tmp_path / "a")).runs[0]
    same = evaluate(project, EvalRequest(["rag"], cases, out_dir=tmp_path / "b", compare_run=baseline.run_id))
    assert same.regression is not None and same.regressed == []
    assert same.regression["recall_at_5"].result.p_value == 1.0

    # Break retrieval: answer from a project whose index holds only the bread document.
    project.store.delete_documents([v.doc_id for v in project.store.list_versions() if "bread" not in v.path])
    worse = evaluate(project, EvalRequest(["rag"], cases, out_dir=tmp_path / "c", compare_run=baseline.run_id))
    assert "recall_at_5" in worse.regressed
    assert worse.regression["recall_at_5"].result.diff == pytest.approx(-2 / 3)


def test_compare_with_an_unknown_run_names_recent_runs(project, tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl")
    first = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "a")).runs[0]
    calls_before = len(project.generator.calls)
    with pytest.raises(Exception, match=first.run_id):
        evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "b", compare_run="no-such-run"))
    assert len(project.generator.calls) == calls_before  # refused before answering anything


def test_compare_finds_a_baseline_recorded_only_in_a_shared_mlflow(project, tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'team-mlflow.db'}"
    project.config.tracking.uri = shared
    cases = write_cases(tmp_path / "cases.jsonl")
    baseline = evaluate(project, EvalRequest(["rag"], cases, out_dir=tmp_path / "a")).runs[0]
    # Another machine: a fresh project folder (no local SQLite record of the baseline), same tracking server.
    other = make_project(tmp_path / "other-home", embedder=project.embedder, store=project.store,
                         answer={"min_relevance": -1.0}, tracking={"uri": shared}, generator=FakeGenerator())
    report = evaluate(other, EvalRequest(["rag"], cases, out_dir=tmp_path / "b", compare_run=baseline.run_id))
    assert report.regression is not None and report.regressed == []
    assert report.regression["recall_at_5"].result.n == 3


def test_held_out_check_warns_and_strict_refuses(project, tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl")
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"messages": [{"role": "user", "content": "when did the harbour bridge open"},
                                              {"role": "assistant", "content": "1932"}]}) + "\n" +
                     json.dumps({"question": "What makes sourdough bread so sour?"}) + "\n", encoding="utf-8")
    report = evaluate(project, EvalRequest(["prompt"], cases, train_paths=[train], out_dir=tmp_path / "o"))
    assert {o.case_id for o in report.overlaps} == {"bridge-0", "bread-1"}
    assert [o.exact for o in sorted(report.overlaps, key=lambda o: o.case_id)] == [False, True]
    assert "2 of 3 eval questions were already seen" in report.warnings[0]
    with pytest.raises(HeldOutError, match="train.jsonl:1"):
        evaluate(project, EvalRequest(["prompt"], cases, train_paths=[train], strict=True))


def test_mlflow_can_be_switched_off_and_run_ids_still_work(project, tmp_path: Path) -> None:
    project.config.tracking.enabled = False
    cases = write_cases(tmp_path / "cases.jsonl")
    report = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "o", repeats=2, seed=5))
    run = report.runs[0]
    assert len(run.run_id) == 32 and report.tracking_uri is None and report.seed == 5
    assert sorted({r.seed for r in run.results}) == [5, 6]
    assert not (project.home / "mlflow.db").exists()


class RagOnlyFailingGenerator(FakeGenerator):
    """Fails every prompt that carries retrieved sources: the rag strategy dies, the prompt strategy works."""

    def chat(self, messages, **options):
        from adaptlab.errors import BackendError

        if "Sources:" in messages[-1]["content"]:
            raise BackendError("model server went away")
        return super().chat(messages, **options)


def test_a_failing_second_strategy_leaves_the_first_run_closed_and_recorded(project, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from adaptlab.errors import BackendError

    project = project.with_parts(generator=RagOnlyFailingGenerator())
    cases = write_cases(tmp_path / "cases.jsonl", n_repeat=2)
    with pytest.raises(BackendError, match="failed on the first 5 cases"):
        evaluate(project, EvalRequest(["prompt", "rag"], cases, out_dir=tmp_path / "o"))
    store = EvalStore(project.log_path)
    runs = {r["strategy"]: r for r in store.recent_runs()}
    assert runs["prompt"]["status"] == "finished" and runs["rag"]["status"] == "failed"
    assert len(store.results(runs["rag"]["run_id"])) == 5  # the failed answers are kept, not lost
    client = MlflowClient(tracking_uri=f"sqlite:///{project.home / 'mlflow.db'}")
    assert client.get_run(runs["prompt"]["run_id"]).info.status == "FINISHED"
    assert "exact_match_ci_low" in client.get_run(runs["prompt"]["run_id"]).data.metrics
    assert client.get_run(runs["rag"]["run_id"]).info.status == "FAILED"
