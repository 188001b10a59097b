"""Query rewriting, reranking and contextual chunks with the real models, through the real CLI: SmolLM2 writes the
HyDE passage, grades passages under its JSON grammar and writes chunk contexts; MiniLM and LanceDB index them."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import run_adaptlab as _cli
from conftest import write_config

pytestmark = pytest.mark.slow

STRATEGIES = """
[strategies.rag_rerank]
kind = "rag"
rerank = true
rerank_depth = 3

[strategies.rag_hyde]
kind = "rag"
rewrite = "hyde"
"""


@pytest.fixture(scope="module")
def three_articles(covid_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("three") / "articles"
    folder.mkdir()
    for name in ("630.txt", "1545.txt", "1546.txt"):
        shutil.copy(covid_dir / "articles" / name, folder / name)
    return folder


def test_rerank_and_hyde_retrieve_with_the_real_generator(three_articles, tmp_path) -> None:
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home", STRATEGIES)
    assert _cli(config, "ingest", str(three_articles)).returncode == 0
    question = "What is the main cause of HIV-1 infection in children?"

    reranked = _cli(config, "retrieve", question, "--strategy", "rag_rerank", "--json", "-k", "5")
    assert reranked.returncode == 0, reranked.stderr
    chunks = json.loads(reranked.stdout)["chunks"]
    grades = [c["rerank_score"] for c in chunks[:3]]
    assert all(g is None or g in (0, 1, 2, 3) for g in grades)
    assert any(g is not None for g in grades), "the judge's grammar-constrained replies did not parse"
    assert all(c["rerank_score"] is None for c in chunks[3:])  # below the depth: not judged
    judged = [g if g is not None else 1 for g in grades]
    assert judged == sorted(judged, reverse=True)  # reordered by grade

    hyde = _cli(config, "retrieve", question, "--strategy", "rag_hyde", "--json", "-k", "3")
    assert hyde.returncode == 0, hyde.stderr
    data = json.loads(hyde.stdout)
    assert len(data["rewrites"]) == 1 and len(data["rewrites"][0].split()) >= 3
    assert any(c["path"].endswith("630.txt") for c in data["chunks"])

    bad = _cli(config, "retrieve", question, "--strategy", "prompt")
    assert bad.returncode != 0 and "not a retrieving strategy" in (bad.stderr + bad.stdout)


def test_contextual_chunks_are_generated_cached_and_a_chunk_setting_change_reindexes(three_articles,
                                                                                    tmp_path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(three_articles / "630.txt", folder / "630.txt")
    home = tmp_path / "home"
    contextual = write_config(tmp_path / "contextual.toml", home,
                              '[chunk]\ncontext = "generator"\ncontext_document_tokens = 64\n')
    first = _cli(contextual, "ingest", str(folder), "--json")
    assert first.returncode == 0, first.stderr
    chunks = json.loads(first.stdout)["chunks_written"]
    with sqlite3.connect(home / "chunk-context.sqlite") as db:
        contexts = [row[0] for row in db.execute("SELECT context FROM contexts")]
    assert len(contexts) == chunks and sum(bool(c.strip()) for c in contexts) >= chunks // 2

    again = json.loads(_cli(contextual, "ingest", str(folder), "--json").stdout)
    assert again["unchanged"] and not again["chunks_written"]

    # The same documents under other [chunk] settings are another index: re-chunked, not kept.
    plain = write_config(tmp_path / "plain.toml", home)
    changed = json.loads(_cli(plain, "ingest", str(folder), "--json").stdout)
    assert changed["updated"] and changed["chunks_written"] == chunks
    back = json.loads(_cli(contextual, "ingest", str(folder), "--json").stdout)
    assert back["updated"] and back["chunks_written"] == chunks
    with sqlite3.connect(home / "chunk-context.sqlite") as db:  # every context came from the cache
        assert db.execute("SELECT COUNT(*) FROM contexts").fetchone()[0] == len(contexts)

    # A rag strategy may ask for contextual chunks while [chunk] does not: `ingest` builds its own index too, from the
    # cached contexts, and the strategy retrieves from it.
    with_strategy = write_config(tmp_path / "strategy.toml", home, '[chunk]\ncontext_document_tokens = 64\n\n'
                                 '[strategies.rag_context]\nkind = "rag"\nchunk_context = "generator"\n')
    built = _cli(with_strategy, "ingest", str(folder), "--json")
    assert built.returncode == 0, built.stderr
    other = json.loads(built.stdout)["other_indexes"]["chunks_context_generator"]
    assert other["chunks_written"] == chunks and other["total_chunks"] == chunks
    with sqlite3.connect(home / "chunk-context.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM contexts").fetchone()[0] == len(contexts)
    retrieved = _cli(with_strategy, "retrieve", "mother-to-child transmission", "--strategy", "rag_context", "--json")
    assert retrieved.returncode == 0, retrieved.stderr
    assert json.loads(retrieved.stdout)["chunks"]

