"""Retrieval and answers on real data: all 60 COVID-QA articles, all 563 questions, the real embedder,
the real generator, through the real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ADAPTLAB_BIN, make_project, write_config

from adaptlab.datasets.squad import article_recall_at_k
from adaptlab.rag.index import ingest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def covid_home(tmp_path_factory, covid_dir, minilm) -> Path:
    home = tmp_path_factory.mktemp("covid-home")
    project = make_project(home, embedder=minilm)
    report = ingest([covid_dir / "articles"], project.config, store=project.store, embedder=minilm)
    assert len(report.added) == 60 and not report.problems
    return home


def test_recall_at_5_over_all_questions(covid_home, covid_questions, minilm):
    retriever = make_project(covid_home, embedder=minilm).retriever
    recall, _ = article_recall_at_k(retriever, covid_questions, k=5)
    print(f"\nCOVID-QA article recall@5 over {len(covid_questions)} questions: {recall:.4f}")
    assert len(covid_questions) == 563
    assert recall >= 0.85, f"gold article in the top 5 for only {recall:.1%} of questions"


def _cli(home: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    config = write_config(tmp_path / "adaptlab.toml", home)
    return subprocess.run([ADAPTLAB_BIN, "--config", str(config), *args], capture_output=True, text=True,
                          timeout=300)


def test_ask_answers_with_citations(covid_home, tmp_path):
    result = _cli(covid_home, tmp_path, "ask", "What is the main cause of HIV-1 infection in children?", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["text"] and not answer["refused"]
    assert answer["citations"], "the answer cites no source"
    citation = answer["citations"][0]
    assert citation["path"].endswith(".txt") and citation["snippet"]
    assert citation["char_end"] > citation["char_start"]
    assert answer["usage"]["prompt_tokens"] > 100 and answer["usage"]["completion_tokens"] > 0
    assert answer["latency_ms"] > 0 and answer["sources"]


def test_ask_refuses_off_topic_questions_without_calling_the_model(covid_home, tmp_path):
    result = _cli(covid_home, tmp_path, "ask", "Who won the football world cup in 1998?", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["refused"] and "don't know" in answer["text"]
    assert answer["usage"]["completion_tokens"] == 0 and not answer["citations"]


def test_retrieve_json_lists_ranked_chunks_and_filters(covid_home, tmp_path):
    result = _cli(covid_home, tmp_path, "retrieve", "mother-to-child transmission of HIV-1", "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["chunks"]) == 3
    assert [c["rank"] for c in data["chunks"]] == [1, 2, 3]
    scores = [c["score"] for c in data["chunks"]]
    assert scores == sorted(scores, reverse=True)
    assert all(c["path"] and c["char_end"] > c["char_start"] for c in data["chunks"])
    filtered = _cli(covid_home, tmp_path, "retrieve", "transmission", "--json", "--filter", "path=*/630.txt")
    assert filtered.returncode == 0, filtered.stderr
    chunks = json.loads(filtered.stdout)["chunks"]
    assert chunks and all(c["path"].endswith("/630.txt") for c in chunks)
