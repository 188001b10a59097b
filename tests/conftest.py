"""Shared fixtures: real models are loaded once per session; every test gets its own project folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
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
def lora_gguf(tmp_path_factory):
    """make(seed) -> a GGUF LoRA adapter for the bundled SmolLM2 GGUF, written by the project's own exporter from a
    PEFT adapter of random A and B on v/o/down projections (strong enough to change greedy answers; no torch, no
    base conversion: the shapes come from the GGUF). One file per seed for the session."""
    import gguf
    import numpy as np
    from safetensors.numpy import save_file

    from adaptlab.finetune.export import export_gguf_lora
    from adaptlab.models.registry import default_gguf_path

    reader = gguf.GGUFReader(str(default_gguf_path()))
    shapes = {t.name: [int(n) for n in t.shape] for t in reader.tensors}  # ggml order: (in, out)

    def count(key: str) -> int:
        return int(reader.fields[key].contents())

    layers, modules = count("llama.block_count"), {"self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                                                   "mlp.down_proj": "ffn_down"}
    root = tmp_path_factory.mktemp("lora")
    base = root / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "num_attention_heads": count("llama.attention.head_count"),
        "num_key_value_heads": count("llama.attention.head_count_kv")}))
    made: dict[tuple[int, int], Path] = {}

    def make(seed: int, *, rank: int = 8) -> Path:
        if (seed, rank) not in made:
            rng = np.random.default_rng(seed)
            tensors = {}
            for layer in range(layers):
                for module, gguf_name in modules.items():
                    inputs, outputs = shapes[f"blk.{layer}.{gguf_name}.weight"]
                    name = f"base_model.model.model.layers.{layer}.{module}"
                    tensors[f"{name}.lora_A.weight"] = (rng.standard_normal((rank, inputs)) * 0.05).astype(np.float32)
                    tensors[f"{name}.lora_B.weight"] = (rng.standard_normal((outputs, rank)) * 0.05).astype(np.float32)
            peft = root / f"peft-{seed}-{rank}"
            peft.mkdir()
            save_file(tensors, str(peft / "adapter_model.safetensors"))
            (peft / "adapter_config.json").write_text(json.dumps({"lora_alpha": 16, "r": rank}))
            made[(seed, rank)] = export_gguf_lora(peft, base, root / f"adapter-{seed}-{rank}.gguf").path
        return made[(seed, rank)]

    return make


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


def run_adaptlab(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`adaptlab --config CONFIG ARGS...` as a user runs it: a real process, output captured, never raising."""
    return subprocess.run([ADAPTLAB_BIN, "--config", str(config), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


# ------------------------------------------------------------------------------ llama-cpp-python's own server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on the bundled GGUF, on
    127.0.0.1: a real upstream model server process. Its base URL; the model is served as 'smollm2'."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's server extra (sse-starlette, "
                        "starlette-context, pydantic-settings) comes with the test extras")
    from adaptlab.models.registry import default_gguf_path

    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--n_threads", os.environ.get("ADAPTLAB_TEST_THREADS", "1"),
             "--model_alias", "smollm2",
             # Streams from several clients at once: by default this server cuts a stream short when another
             # request arrives.
             "--interrupt_requests", "false"], stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


