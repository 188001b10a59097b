"""Real processes: `adaptlab ingest` killed with SIGKILL halfway and run again ends exact; readers keep
answering while an ingest writes; concurrent writers from two processes both land; ingests are serialised."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lancedb
import pytest
from conftest import ADAPTLAB_BIN, write_config

from adaptlab.config import AdaptlabConfig, StoreConfig
from adaptlab.rag.chunk import Chunker
from adaptlab.rag.index import load_documents
from adaptlab.rag.lance_store import LanceStore
from adaptlab.rag.store import SearchFilter
from adaptlab.testing.fakes import HashEmbedder


def _row_count(home: Path) -> int:
    try:
        return lancedb.connect(str(home / "lancedb")).open_table("chunks").count_rows()
    except (ValueError, FileNotFoundError, OSError):
        return 0


def _expected_versions(folder: Path, config: AdaptlabConfig, embedder) -> dict[str, int]:
    documents, problems, _ = load_documents([folder], config)
    assert not problems
    chunker = Chunker(config.chunk, embedder)
    return {d.path: len(chunker.chunk(d)) for d in documents}


def _stored_versions(home: Path, embedder_name: str, dimension: int):
    store = LanceStore(StoreConfig(), home / "lancedb")
    store.open(embedder_name, dimension)
    return store, store.list_versions()


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_is_exact(tmp_path, covid_dir, minilm):
    docs = tmp_path / "docs"
    docs.mkdir()
    for article in sorted((covid_dir / "articles").glob("*.txt"))[:12]:
        shutil.copy(article, docs / article.name)
    home = tmp_path / "home"
    config_path = write_config(tmp_path / "adaptlab.toml", home, "[ingest]\ncommit_every_chunks = 40\n")
    command = [ADAPTLAB_BIN, "--config", str(config_path), "ingest", str(docs)]

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _row_count(home) == 0 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    rows_at_kill = _row_count(home)
    assert process.poll() is None, "ingest finished before it could be killed; use more documents"
    process.send_signal(signal.SIGKILL)
    process.wait()

    config = AdaptlabConfig.model_validate({"home": str(home), "ingest": {"commit_every_chunks": 40}})
    expected = _expected_versions(docs, config, minilm)
    assert 0 < rows_at_kill < sum(expected.values()), "the kill did not land halfway"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "added" in rerun.stdout and "unchanged" in rerun.stdout

    store, versions = _stored_versions(home, minilm.name, minilm.dimension)
    assert {v.path: v.rows for v in versions} == expected  # every document, each complete, nothing else
    assert all(v.rows == v.chunk_count for v in versions)
    ids = store.table.search().select(["chunk_id"]).limit(None).to_arrow().column("chunk_id").to_pylist()
    assert len(ids) == len(set(ids)) == sum(expected.values())


def _hash_config(tmp_path: Path, home: Path) -> Path:
    return write_config(tmp_path / "adaptlab.toml", home,
                        '[embedder]\nbackend = "hash"\n[ingest]\ncommit_every_chunks = 20\n'
                        '[chunk]\nsize_tokens = 64\noverlap_tokens = 8\n')


def test_readers_keep_answering_while_ingest_writes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    body = "Coronaviruses spread through respiratory droplets. Masks reduce transmission. " * 30
    for index in range(150):
        (docs / f"note{index:03d}.txt").write_text(f"Note {index}\n{body} Marker{index}.\n")
    home = tmp_path / "home"
    config_path = _hash_config(tmp_path, home)
    embedder = HashEmbedder()
    first = subprocess.run([ADAPTLAB_BIN, "--config", str(config_path), "ingest", str(docs / "note000.txt")],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr

    reader = LanceStore(StoreConfig(read_consistency_s=0), home / "lancedb")
    reader.open(embedder.name, embedder.dimension)
    writer = subprocess.Popen([ADAPTLAB_BIN, "--config", str(config_path), "ingest", str(docs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    query = embedder.embed(["masks reduce transmission"])[0]
    counts, searches = [], 0
    while writer.poll() is None:
        assert reader.dense_search(query, 5), "reader got no results mid-ingest"
        assert reader.keyword_search("transmission", 5, SearchFilter(path_glob="*/note*"))
        counts.append(reader.count())
        searches += 1
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert searches > 3
    assert counts[-1] >= counts[0] and max(counts) > counts[0], "the reader never saw the ingest's writes"
    final = reader.count()
    assert final == sum(v.chunk_count for v in reader.list_versions())
    assert {Path(v.path).name for v in reader.list_versions()} == {f"note{i:03d}.txt" for i in range(150)}


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from adaptlab.config import StoreConfig
    from adaptlab.rag.lance_store import LanceStore
    from adaptlab.testing.fakes import HashEmbedder
    from adaptlab.types import Chunk
    home, tag = Path(sys.argv[1]), sys.argv[2]
    embedder = HashEmbedder()
    store = LanceStore(StoreConfig(), home / "lancedb")
    store.open(embedder.name, embedder.dimension)
    for batch in range(15):
        chunks = [Chunk(chunk_id=f"{tag}-{batch}-{i}", doc_id=f"{tag}{batch}", doc_hash="h", chunk_index=i,
                        chunk_count=4, path=f"/{tag}/{batch}.txt", title=tag, text=f"{tag} text {i}",
                        index_text=f"{tag} text {i}", char_start=0, char_end=5) for i in range(4)]
        store.add_chunks(chunks, embedder.embed([c.index_text for c in chunks]))
    """
)


def test_two_processes_write_one_store_at_once(tmp_path):
    home = tmp_path / "home"
    embedder = HashEmbedder()
    LanceStore(StoreConfig(), home / "lancedb").open(embedder.name, embedder.dimension)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    writers = [subprocess.Popen([sys.executable, str(script), str(home), tag], stderr=subprocess.PIPE, text=True)
               for tag in ("alpha", "beta")]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    store = LanceStore(StoreConfig(), home / "lancedb")
    store.open(embedder.name, embedder.dimension)
    assert store.count() == 2 * 15 * 4


def test_a_second_ingest_on_the_same_project_is_refused_clearly(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    import fcntl

    with open(home / "ingest.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        (tmp_path / "a.txt").write_text("hello world")
        result = subprocess.run([ADAPTLAB_BIN, "--home", str(home), "ingest", str(tmp_path / "a.txt")],
                                capture_output=True, text=True, timeout=120, env={**os.environ})
    assert result.returncode != 0
    assert "Another `adaptlab ingest` is running" in result.stderr and "Traceback" not in result.stderr
