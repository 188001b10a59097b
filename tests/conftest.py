"""Shared fixtures: real models are loaded once per session; every test gets its own project folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from adaptlab.config import AdaptlabConfig  # noqa: E402
from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles  # noqa: E402
from adaptlab.project import Project  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ADAPTLAB_BIN = str(Path(sys.executable).with_name("adaptlab"))


@pytest.fixture(scope="session")
def minilm():
    from adaptlab.embed.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def covid_dir(tmp_path_factory) -> Path:
    """All 60 COVID-QA articles as .txt files under <dir>/articles, questions in <dir>/questions.jsonl."""
    out = tmp_path_factory.mktemp("covid")
    write_articles(BUNDLED_COVID_QA, out)
    return out


@pytest.fixture(scope="session")
def covid_questions(covid_dir) -> list[dict]:
    return [json.loads(line) for line in (covid_dir / "questions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def smol_base(tmp_path_factory):
    """The bundled SmolLM2 GGUF converted once to an fp32 Hugging Face model (~25 s), for training/export tests."""
    from adaptlab.finetune.base_model import prepare_base

    return prepare_base("", tmp_path_factory.mktemp("base-cache"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, smol_base) -> Path:
    """A 2-layer randomly initialised Llama with the real SmolLM2 tokenizer: training mechanics in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(smol_base.directory))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real Redis server: $ADAPTLAB_TEST_REDIS_URL (.ci/run starts Debian's redis-server and sets it), else a
    redis-server started here on a free loopback port."""
    url = os.environ.get("ADAPTLAB_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: install redis-server (apt-get install redis-server) or set ADAPTLAB_TEST_REDIS_URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


def make_project(home: Path, *, embedder=None, store=None, generator=None, **sections) -> Project:
    """A Project on `home` with config overrides like chunk={"size_tokens": 64}; optional shared components."""
    config = AdaptlabConfig.model_validate({"home": str(home), **sections})
    # reuse a session-loaded model, a shared store
    return Project(config, embedder=embedder, store=store, generator=generator)


def write_config(path: Path, home: Path, extra: str = "") -> Path:
    path.write_text(f'home = "{home}"\n{extra}', encoding="utf-8")
    return path
