"""The numpy MiniLM encoder gives sentence-transformers' vectors (the reference) without importing it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adaptlab.embed.minilm import MiniLMEmbedder, _erf_inplace
from adaptlab.errors import ModelNotFoundError
from adaptlab.models.registry import default_embedder_dir

TEXTS = [
    "What is the incubation period of COVID-19?",
    "",
    "x",
    "Ünïcödé — naïve café in 東京, 42 °C; e-mail: a.b@example.org",
    "A long passage that runs past the model's 256-token window, which must be truncated the same way. " * 30,
    "Coronaviruses are enveloped, positive-sense single-stranded RNA viruses.\n\nTabs\tand  spaces  too.",
] + [f"Short sentence number {n} about interferon and ACE2 receptors." for n in range(40)]


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_embedder_dir()), device="cpu", local_files_only=True)


def test_vectors_equal_sentence_transformers(minilm, reference) -> None:
    ours = minilm.embed(TEXTS)
    theirs = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True, batch_size=32)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batching_does_not_change_the_vectors(minilm, batch_size: int) -> None:
    batched = MiniLMEmbedder(batch_size=batch_size).embed(TEXTS[:10])
    np.testing.assert_allclose(batched, minilm.embed(TEXTS[:10]), atol=1e-6)


def test_token_counts_and_offsets_equal_the_reference_tokenizer(minilm, reference) -> None:
    tokenizer = reference.tokenizer
    for text in TEXTS[:6]:
        expected = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        assert minilm.count_tokens(text) == len(expected["input_ids"])  # not truncated to 256
        assert minilm.token_offsets(text) == [tuple(span) for span in expected["offset_mapping"]]
    assert minilm.max_tokens == reference.max_seq_length - 2 == 254
    assert minilm.dimension == 384 and minilm.name == "sentence-transformers:all-MiniLM-L6-v2"


def test_erf_matches_math_erf_at_float32_precision() -> None:
    grid = np.linspace(-7, 7, 140_001, dtype=np.float32)
    expected = np.array([math.erf(float(v)) for v in grid])
    ours = _erf_inplace(grid.copy())
    assert np.abs(ours - expected).max() < 5e-7
    assert ours[0] == -1.0 and ours[-1] == 1.0 and _erf_inplace(np.zeros(1, np.float32))[0] == 0.0


def test_a_folder_that_is_not_a_bert_encoder_is_refused_with_the_alternative(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(default_embedder_dir(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "xlm-roberta"}))
    with pytest.raises(ModelNotFoundError, match="xlm-roberta.*embedder.backend = 'openai'"):
        MiniLMEmbedder(str(folder))


def test_embedding_a_query_imports_neither_torch_nor_sentence_transformers() -> None:
    code = ("import sys; from adaptlab.embed.minilm import MiniLMEmbedder; MiniLMEmbedder().embed(['a query']); "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
