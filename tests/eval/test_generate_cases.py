"""`adaptlab cases generate`: cases drafted from the bundled COVID-QA articles by a model behind an
OpenAI-compatible endpoint (scripted here, over real HTTP: what a strong hosted model would answer), each
checked, tagged synthetic and accepted by `eval`; rejected drafts kept with their reason; cases from a query log
for labelling; results shown apart on synthetic and hand-written cases."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import ADAPTLAB_BIN, make_project

from adaptlab.config import GeneratorConfig
from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles
from adaptlab.eval.cases import load_cases
from adaptlab.eval.generate import SYNTHETIC_TAG, collect_from_log, generate_from_documents
from adaptlab.eval.session import EvalRequest, evaluate
from adaptlab.models.openai_compat import OpenAIGenerator
from adaptlab.testing.endpoint import FlakyEndpoint
from adaptlab.testing.fakes import HashEmbedder


def scripted(answerable: bool = True):
    """A model that writes a fair question for the answer it is given, and judges as told."""

    def respond(messages: list[dict], body: dict) -> str:
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        prompt = messages[-1]["content"]
        if "answerable" in schema.get("properties", {}):
            return json.dumps({"answerable": answerable})
        sentence = re.search(r"Sentence: (.*)\nAnswer: (.*)\n", prompt)
        assert sentence is not None, prompt
        words = [w for w in sentence.group(1).split() if w.lower() not in sentence.group(2).lower()][:7]
        return json.dumps({"question": f"According to the passage, what is stated about {' '.join(words)}?"})

    return respond


@pytest.fixture(scope="module")
def articles(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("covid")
    write_articles(BUNDLED_COVID_QA, root, limit=6)
    return root / "articles"


def project_on(home: Path, endpoint: FlakyEndpoint):
    settings = GeneratorConfig(backend="openai", base_url=endpoint.base_url, model="drafter")
    project = make_project(home, embedder=HashEmbedder(64), generator=OpenAIGenerator(settings),
                           tracking={"enabled": False}, answer={"min_relevance": -1.0})
    project.config.generator = settings
    return project


def test_drafted_cases_are_checked_spread_over_documents_and_accepted_by_eval(articles: Path, tmp_path: Path):
    with FlakyEndpoint(responder=scripted()) as endpoint:
        project = project_on(tmp_path / "home", endpoint)
        report = generate_from_documents(project, [articles], n=6, seed=1)
    assert report.kept == 6 and report.documents == 6
    cases_path = tmp_path / "cases.jsonl"
    cases_path.write_text("".join(json.dumps(c) + "\n" for c in report.cases), encoding="utf-8")
    cases = load_cases(cases_path)  # what `adaptlab eval --cases` reads
    assert len(cases) == 6 and all(SYNTHETIC_TAG in c.tags for c in cases)
    per_article = Counter(c.gold_sources[0] for c in cases)
    assert len(per_article) >= 4 and max(per_article.values()) <= 2  # round-robin over the articles
    for case in cases:
        source = (articles.parent / case.gold_sources[0]).read_text(encoding="utf-8")
        assert case.answers[0] in source  # the reference answer is the document's own words
        assert case.answers[0].lower() not in case.question.lower()
    # A second run with the first one's cases to avoid drafts none of the same questions again.
    with FlakyEndpoint(responder=scripted()) as endpoint:
        again = generate_from_documents(project_on(tmp_path / "home2", endpoint), [articles], n=6, seed=1,
                                        avoid=[cases_path])
    assert not {c["question"] for c in again.cases} & {c.question for c in cases}
    assert again.rejected["near duplicate of another case or of training data"] >= 1


def test_drafts_the_judge_rejects_are_dropped_with_their_reason(articles: Path, tmp_path: Path):
    with FlakyEndpoint(responder=scripted(answerable=False)) as endpoint:
        report = generate_from_documents(project_on(tmp_path / "home", endpoint), [articles], n=2)
    assert report.kept == 0 and report.tried == 8  # 4 chunks tried per case wanted
    assert sum(report.rejected.values()) == len(report.dropped) == 8
    assert report.rejected["the judge found it not answerable from its passage"] >= 6
    assert all(d["source"].endswith(".txt") and d["reason"] for d in report.dropped)


def test_questions_from_a_query_log_most_asked_first_near_duplicates_folded(tmp_path: Path):
    log = tmp_path / "queries.jsonl"
    asked = ["How long is the incubation period?"] * 3 + ["how long is the incubation period"] + \
            ["Can children get infected?"] * 2 + ["What is the incubation period length?"] + ["Is there a vaccine?"]
    log.write_text("".join(json.dumps({"question": q}) + "\n" for q in asked), encoding="utf-8")
    report = collect_from_log(log, n=10, threshold=0.8)
    assert [c["question"] for c in report.cases][:2] == ["How long is the incubation period?",
                                                         "Can children get infected?"]
    assert report.cases[0]["tags"] == ["from-log", "unlabelled", "asked-4"]  # the exact repeats, normalised
    assert all(c["answers"] == [] for c in report.cases)  # for a person to label


def test_results_show_synthetic_and_hand_written_cases_apart(articles: Path, tmp_path: Path):
    with FlakyEndpoint(responder=scripted()) as endpoint:
        project = project_on(tmp_path / "home", endpoint)
        drafted = generate_from_documents(project, [articles], n=3, seed=2).cases
    hand = [{"id": "h1", "question": "What is COVID-19?", "answers": ["a disease"]}]
    cases = tmp_path / "mixed.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in drafted + hand), encoding="utf-8")
    with FlakyEndpoint() as endpoint:
        project = project_on(tmp_path / "home3", endpoint)
        report = evaluate(project, EvalRequest(["prompt"], cases, out_dir=tmp_path / "o"))
    record = report.record().strategies[0]
    assert record.by_origin["synthetic"].n == 3 and record.by_origin["hand-written"].n == 1
    assert "token_f1" in record.by_origin["synthetic"].metrics
    assert "Synthetic and hand-written cases" in (tmp_path / "o" / "report.html").read_text(encoding="utf-8")


def test_the_cli_writes_cases_and_the_dropped_drafts(articles: Path, tmp_path: Path):
    with FlakyEndpoint(responder=scripted()) as endpoint:
        config = tmp_path / "adaptlab.toml"
        config.write_text(f'home = "{tmp_path / "home"}"\n[generator]\nbackend = "openai"\n'
                          f'base_url = "{endpoint.base_url}"\n[embedder]\nbackend = "hash"\n', encoding="utf-8")
        out = tmp_path / "drafted.jsonl"
        done = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "cases", "generate", "--from", str(articles),
                               "--n", "3", "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "3 cases drafted from 6 documents" in " ".join(done.stdout.split())
        assert len(load_cases(out)) == 3
        again = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "cases", "generate", "--from", str(articles),
                                "--n", "3", "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert again.returncode != 0 and "--force" in again.stderr  # never overwrites without being asked
