"""The base model for training: the same GGUF file llama.cpp serves, as a Hugging Face model in fp32.

transformers de-quantises a GGUF file into a normal model (~20 s for SmolLM2-135M on 2 cores, needs the `gguf`
package), but the result still carries the GGUF quantizer, which makes save_pretrained and Trainer refuse it;
we drop it and cache an fp32 safetensors copy keyed by the GGUF file's hash (reload ~0.1 s). Any Hugging Face
causal-LM directory works as a base too and is used as it is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import ModelNotFoundError
from adaptlab.models.registry import resolve_gguf


@dataclass(frozen=True)
class BaseModel:
    directory: Path  # a Hugging Face model directory (config.json + safetensors + tokenizer)
    source: str  # what the user named: a GGUF file or an HF directory
    sha256: str  # of the GGUF file, or of the directory's config + weights: the base model's version
    gguf_path: Path | None  # the GGUF llama.cpp serves, when the base came from one

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def directory_sha256(directory: Path) -> str:
    """Hash of config.json and the weight files (names and contents): a directory's model version."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
            digest.update(path.name.encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def prepare_base(source: str, cache_dir: Path) -> BaseModel:
    """Resolve `source` ("" = the bundled SmolLM2 GGUF; a .gguf file; an HF model directory) to an HF directory."""
    candidate = Path(source).expanduser() if source else None
    if candidate is not None and candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise ModelNotFoundError(f"{candidate} is a folder without config.json — point the training base at a "
                                     f"Hugging Face model directory or a .gguf file.")
        return BaseModel(candidate.resolve(), source, directory_sha256(candidate), None)
    gguf = resolve_gguf(source)
    sha = file_sha256(gguf)
    target = cache_dir / f"base-{gguf.stem}-{sha[:12]}"
    if not (target / "model.safetensors").is_file():
        _convert_gguf(gguf, target)
    return BaseModel(target, str(gguf), sha, gguf)


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a half-finished copy from a killed run
        shutil.rmtree(target)
    os.replace(partial, target)  # appears whole or not at all
