"""The default embedder: all-MiniLM-L6-v2 (384-d), run with numpy on the CPU, offline.

The model is a sentence-transformers folder (BERT encoder → mean pooling → L2 normalisation). sentence-transformers
itself is not imported: it pulls in torch and transformers, ~9 s before the first query on this machine, and every
CLI call that retrieves would pay it. The same computation runs here on the folder's own files — the HF
`tokenizers` tokenizer.json and the safetensors weights — in numpy; tests/embed/test_minilm_numpy.py checks the
vectors equal sentence-transformers' to float32 precision.

Supported: BERT-architecture encoders (`model_type` "bert", absolute positions, GELU) with mean or CLS pooling —
the family of the common sentence-transformers MiniLM/mpnet-free models. Anything else fails with a clear error;
serve it through an OpenAI-compatible embeddings endpoint (`embedder.backend = "openai"`) instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptlab.embed.base import normalise_rows
from adaptlab.errors import ModelNotFoundError
from adaptlab.models.registry import resolve_embedder_dir


@dataclass(frozen=True)
class _EncoderShape:
    layers: int
    heads: int
    hidden: int
    eps: float
    max_positions: int


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _erf_inplace(x: np.ndarray) -> np.ndarray:
    """Error function, overwriting x. Numerical Recipes' Chebyshev fit of erfc (fractional error < 1.2e-7 in
    exact arithmetic, ~4e-7 absolute in float32 — the precision torch's float32 erf has), evaluated in place so a
    cache-sized block stays in cache: ~3x faster than scipy.special.erf's scalar loop, and no scipy import."""
    z = np.abs(x)
    t = z * np.float32(0.5)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(0.17087277)
    for coefficient in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
                        1.00002368):
        poly += np.float32(coefficient)
        poly *= t
    poly -= np.float32(1.26551223)
    np.square(z, out=z)
    poly -= z
    np.exp(poly, out=poly)
    poly *= t  # erfc(|x|)
    np.subtract(np.float32(1.0), poly, out=poly)
    return np.copysign(poly, x, out=x)


def _twice_gelu_inplace(x: np.ndarray) -> np.ndarray:
    """2·GELU(x) = x·(1 + erf(x/√2)) — BERT's exact GELU without its factor 0.5, which the encoder folds into
    the next layer's weights — overwriting x."""
    scaled = x * np.float32(1 / np.sqrt(2.0))
    _erf_inplace(scaled)
    scaled += np.float32(1.0)
    x *= scaled
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, overwriting x."""
    x -= x.mean(axis=-1, keepdims=True)
    inverse_std = np.mean(np.square(x), axis=-1, keepdims=True)
    inverse_std += np.float32(eps)
    np.sqrt(inverse_std, out=inverse_std)
    x /= inverse_std
    x *= weight
    x += bias
    return x


class _BertEncoder:
    """A BERT encoder's forward pass (inference only, no dropout) on weights from a safetensors file."""

    def __init__(self, weights: dict[str, np.ndarray], shape: _EncoderShape) -> None:
        self.shape = shape

        def get(name: str) -> np.ndarray:
            for prefix in ("", "bert.", "model."):
                if prefix + name in weights:
                    return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)
            raise KeyError(name)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")
        self.embed_norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = []
        for index in range(shape.layers):
            p = f"encoder.layer.{index}."
            # Q, K and V in one matrix: one GEMM instead of three. Weights stored transposed for x @ W.
            # The attention scale 1/√head_dim is folded into the query projection, and GELU's 0.5 into the
            # output projection after it: the same function with two passes fewer over large activations.
            scale = np.float32(1.0 / np.sqrt(shape.hidden // shape.heads))
            qkv = np.concatenate([get(p + "attention.self.query.weight") * scale,
                                  get(p + "attention.self.key.weight"), get(p + "attention.self.value.weight")])
            qkv_bias = np.concatenate([get(p + "attention.self.query.bias") * scale,
                                       get(p + "attention.self.key.bias"), get(p + "attention.self.value.bias")])
            self.layers.append((
                np.ascontiguousarray(qkv.T), qkv_bias,
                np.ascontiguousarray(get(p + "attention.output.dense.weight").T),
                get(p + "attention.output.dense.bias"),
                get(p + "attention.output.LayerNorm.weight"), get(p + "attention.output.LayerNorm.bias"),
                np.ascontiguousarray(get(p + "intermediate.dense.weight").T), get(p + "intermediate.dense.bias"),
                np.ascontiguousarray(get(p + "output.dense.weight").T * np.float32(0.5)), get(p + "output.dense.bias"),
                get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias"),
            ))

    def __call__(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Token ids of each sequence → its hidden states (length, hidden).

        The sequences are packed end to end without padding: every operation but attention acts on each token
        alone, and attention runs per sequence on its own tokens — the same result as padded, masked attention
        (a masked key's weight is exp(float32 min) = 0 there), with no work spent on padding."""
        heads, hidden, eps = self.shape.heads, self.shape.hidden, self.shape.eps
        head_dim = hidden // heads
        lengths = [len(ids) for ids in sequences]
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        token_ids = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in sequences])
        positions = np.concatenate([np.arange(length) for length in lengths])
        x = self.word[token_ids] + self.position[positions] + self.token_type[0]
        x = _layer_norm(x, *self.embed_norm, eps)
        for (qkv_w, qkv_b, out_w, out_b, norm1_w, norm1_b, up_w, up_b, down_w, down_b, norm2_w, norm2_b) \
                in self.layers:
            qkv = x @ qkv_w
            qkv += qkv_b
            context = np.empty_like(x)
            for start, end in zip(bounds[:-1], bounds[1:]):
                # (length, 3, heads, head_dim) → query/key/value as (heads, length, head_dim)
                block = qkv[start:end].reshape(end - start, 3, heads, head_dim).transpose(1, 2, 0, 3)
                scores = block[0] @ block[1].transpose(0, 2, 1)
                scores -= scores.max(axis=-1, keepdims=True)
                np.exp(scores, out=scores)
                weighted = scores @ block[2]
                weighted /= scores.sum(axis=-1, keepdims=True)  # softmax's division, on the smaller array
                context[start:end] = weighted.transpose(1, 0, 2).reshape(end - start, hidden)
            attended = context @ out_w
            attended += out_b
            attended += x
            x = _layer_norm(attended, norm1_w, norm1_b, eps)
            # The feed-forward block row block by row: its 4x-wide activation then stays in cache.
            for start in range(0, len(x), _FEED_FORWARD_ROWS):
                rows = x[start:start + _FEED_FORWARD_ROWS]
                up = rows @ up_w
                up += up_b
                down = _twice_gelu_inplace(up) @ down_w
                down += down_b
                down += rows
                x[start:start + _FEED_FORWARD_ROWS] = _layer_norm(down, norm2_w, norm2_b, eps)
        return [x[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


_FEED_FORWARD_ROWS = 128  # 128 × 1536 float32 = 0.75 MB: fits the L2 cache of current x86 and Arm cores


class MiniLMEmbedder:
    """A sentence-transformers BERT model folder (default: the bundled all-MiniLM-L6-v2), run with numpy."""

    def __init__(self, model_path: str = "", *, batch_size: int = 32) -> None:
        """Threads: numpy's BLAS pool is sized by OPENBLAS_NUM_THREADS before numpy is imported
        (adaptlab.runtime.limit_threads_early from runtime.threads); there is no pool of its own to set."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = resolve_embedder_dir(model_path)
        config = _read_json(directory / "config.json")
        if config.get("model_type") != "bert" or config.get("position_embedding_type", "absolute") != "absolute" \
                or config.get("hidden_act", "gelu") != "gelu":
            raise ModelNotFoundError(
                f"{directory}: adaptlab's built-in embedder runs BERT encoders (model_type 'bert', absolute "
                f"positions, GELU); this is {config.get('model_type')!r} — serve it through an OpenAI-compatible "
                f"embeddings endpoint (embedder.backend = 'openai')."
            )
        pooling = _read_json(directory / "1_Pooling" / "config.json") if (directory / "1_Pooling").is_dir() \
            else {"pooling_mode_mean_tokens": True}
        if pooling.get("pooling_mode_mean_tokens"):
            self._pooling = "mean"
        elif pooling.get("pooling_mode_cls_token"):
            self._pooling = "cls"
        else:
            raise ModelNotFoundError(f"{directory / '1_Pooling' / 'config.json'}: only mean or CLS pooling is "
                                     f"supported by the built-in embedder.")
        weights_file = directory / "model.safetensors"
        if not weights_file.is_file():
            raise ModelNotFoundError(f"No model.safetensors in {directory} — the built-in embedder reads "
                                     f"safetensors weights only.")
        shape = _EncoderShape(layers=int(config["num_hidden_layers"]), heads=int(config["num_attention_heads"]),
                              hidden=int(config["hidden_size"]), eps=float(config.get("layer_norm_eps", 1e-12)),
                              max_positions=int(config.get("max_position_embeddings", 512)))
        self._encoder = _BertEncoder(load_file(str(weights_file)), shape)
        st_config = directory / "sentence_bert_config.json"
        max_length = int(_read_json(st_config).get("max_seq_length", 256)) if st_config.is_file() else 256
        max_length = min(max_length, shape.max_positions)
        # Two tokenizers: the one for the model truncates to max_seq_length (as sentence-transformers does);
        # the one for counting and offsets sees the whole text.
        tokenizer_json = (directory / "tokenizer.json").read_text(encoding="utf-8")
        self._plain_tokenizer = Tokenizer.from_str(tokenizer_json)
        self._plain_tokenizer.no_truncation()
        self._plain_tokenizer.no_padding()
        self._model_tokenizer = Tokenizer.from_str(tokenizer_json)
        self._model_tokenizer.no_padding()
        self._model_tokenizer.enable_truncation(max_length=max_length)
        self._batch_size = batch_size
        stem = "all-MiniLM-L6-v2" if not model_path else Path(directory).name
        # The name is recorded in each index: vectors are the same as sentence-transformers', so indexes built
        # with it keep working.
        self.name = f"sentence-transformers:{stem}"
        self.dimension = shape.hidden
        # max_seq_length counts [CLS] and [SEP]; the text itself gets two fewer.
        self.max_tokens = max_length - 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._model_tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(encodings), self.dimension), dtype=np.float32)
        for start in range(0, len(encodings), self._batch_size):
            batch = encodings[start:start + self._batch_size]
            states = self._encoder([encoding.ids for encoding in batch])
            for row, hidden in enumerate(states, start=start):
                vectors[row] = hidden.mean(axis=0) if self._pooling == "mean" else hidden[0]
        return normalise_rows(vectors)

    def count_tokens(self, text: str) -> int:
        return len(self._plain_tokenizer.encode(text, add_special_tokens=False).ids)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoding = self._plain_tokenizer.encode(text, add_special_tokens=False)
        return [(int(start), int(end)) for start, end in encoding.offsets]
