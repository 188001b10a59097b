"""`adaptlab ask` answers through the Strategy protocol: the same strategies eval, bench and serve build, with the
real models (MiniLM, SmolLM2), the real index and the real answer cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ADAPTLAB_BIN, write_config

QUESTION = "When does the clinic open on Saturdays?"


@pytest.fixture(scope="module")
def ask_project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ask")
    docs = root / "docs"
    docs.mkdir()
    (docs / "clinic.txt").write_text("Opening hours\nThe clinic opens at 9 am on Saturdays and closes at noon.\n")
    (docs / "parking.txt").write_text("Parking\nVisitors park in the north lot; the south lot is for staff.\n")
    (docs / "vaccines.txt").write_text("Vaccines\nFlu vaccines are given on weekdays between 2 and 4 pm.\n")
    write_config(root / "adaptlab.toml", root / "home",
                 '[generator]\nmax_tokens = 12\n'
                 '[strategies.rag]\nkind = "rag"\ncontext_chunks = 1\n'
                 '[strategies.cached_rag]\nkind = "cached"\nwraps = "rag"\nmode = "exact"\n')
    ingest = run(root, "ingest", str(docs))
    assert ingest.returncode == 0, ingest.stderr
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ADAPTLAB_BIN, "--config", str(root / "adaptlab.toml"), *args], capture_output=True,
                          text=True, timeout=300)


def test_cached_rag_hits_the_cache_on_a_repeat(ask_project: Path) -> None:
    first = run(ask_project, "ask", "--strategy", "cached_rag", QUESTION, "--json")
    assert first.returncode == 0, first.stderr
    second = run(ask_project, "ask", "--strategy", "cached_rag", QUESTION, "--json")
    assert second.returncode == 0, second.stderr
    miss, hit = json.loads(first.stdout), json.loads(second.stdout)
    assert miss["cache_status"] == "miss" and hit["cache_status"] == "hit"
    assert hit["text"] == miss["text"] and hit["usage"]["total_tokens"] == 0
    # Plain text output says where the answer came from.
    third = run(ask_project, "ask", "-s", "cached_rag", QUESTION)
    assert third.returncode == 0 and "strategy cached_rag, cache hit" in third.stdout


def test_strategy_settings_shape_what_ask_answers(ask_project: Path) -> None:
    answer = run(ask_project, "ask", QUESTION, "--json")  # default strategy: rag, context_chunks = 1 above
    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)
    assert len(data["sources"]) == 1 and data["sources"][0]["path"].endswith("clinic.txt")
    assert data["cache_status"] == "none"


def test_options_bypass_the_cache_and_filter_retrieval(ask_project: Path) -> None:
    filtered = run(ask_project, "ask", "-s", "cached_rag", QUESTION, "--filter", "path=*parking*", "--json")
    assert filtered.returncode == 0, filtered.stderr
    data = json.loads(filtered.stdout)
    assert data["cache_status"] == "none"  # entries were stored for the configured retrieval
    assert all(source["path"].endswith("parking.txt") for source in data["sources"])


def test_retrieval_options_are_refused_for_a_strategy_that_does_not_retrieve(ask_project: Path) -> None:
    refused = run(ask_project, "ask", "--strategy", "prompt", QUESTION, "--top-k", "3")
    assert refused.returncode == 2
    assert "retrieves nothing" in refused.stderr and "Traceback" not in refused.stderr
    plain = run(ask_project, "ask", "--strategy", "prompt", QUESTION, "--json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["sources"] == []


def test_an_unknown_strategy_names_the_known_ones(ask_project: Path) -> None:
    unknown = run(ask_project, "ask", "--strategy", "nope", QUESTION)
    assert unknown.returncode == 2
    assert "No strategy named 'nope'" in unknown.stderr and "cached_rag" in unknown.stderr
