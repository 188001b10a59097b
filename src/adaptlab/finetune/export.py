"""Export a trained PEFT LoRA adapter: as a GGUF LoRA for llama.cpp (our own converter, with the `gguf`
package), or merged into the base weights as safetensors for servers such as vLLM.

GGUF LoRA layout (what llama.cpp's adapter loader checks):
- metadata general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, general.architecture;
- per adapted weight W (HF shape out × in) two tensors `<gguf name>.lora_a` (HF A, r × in) and
  `<gguf name>.lora_b` (HF B, out × r); numpy's row-major shape maps to ggml's reversed dims, which is what
  llama.cpp compares against the base tensor;
- llama.cpp's converter stores Llama's q/k projection rows in a rotary-friendly permuted order, so the rows of
  B for q_proj/k_proj get the same permutation (A multiplies the input side and is unchanged).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptlab.errors import ModelNotFoundError

_LAYER_MODULES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT_NAME = re.compile(r"(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)\.lora_([AB])\.weight$")
_SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)


@dataclass(frozen=True)
class ExportedAdapter:
    path: Path
    tensors: int
    rank: int
    alpha: float


def _permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order: per head, interleave the two rotary halves (same as its HF converter)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def export_gguf_lora(adapter_dir: Path, base_dir: Path, out_path: Path) -> ExportedAdapter:
    """Write `adapter_dir` (PEFT) as a GGUF LoRA for the llama.cpp model that `base_dir` was converted from."""
    import gguf
    from safetensors.numpy import load_file

    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base_config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    architectures = base_config.get("architectures") or []
    if not set(architectures) & set(_SUPPORTED_ARCHITECTURES):
        raise ModelNotFoundError(f"GGUF LoRA export supports {', '.join(_SUPPORTED_ARCHITECTURES)}, not "
                                 f"{architectures} — use the merged safetensors export for this base.")
    if adapter_config.get("use_rslora") or adapter_config.get("use_dora"):
        raise ModelNotFoundError("rsLoRA/DoRA adapters have no llama.cpp equivalent — train plain LoRA to export.")
    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads") or n_head)
    weights_file = adapter_dir / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise ModelNotFoundError(f"No adapter weights at {weights_file} — train an adapter first.")
    tensors = load_file(str(weights_file))

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, value in tensors.items():
        match = _PEFT_NAME.match(name)
        if not match:
            raise ModelNotFoundError(f"Adapter tensor {name!r} has no llama.cpp counterpart (only LoRA on the "
                                     f"attention and MLP projections of each layer can be exported).")
        layer, module, which = match.groups()
        if module not in _LAYER_MODULES:
            raise ModelNotFoundError(f"LoRA on {module!r} cannot be exported to GGUF; target only "
                                     f"{', '.join(m.split('.')[-1] for m in _LAYER_MODULES)}.")
        target = f"blk.{layer}.{_LAYER_MODULES[module]}.weight"
        pairs.setdefault(target, {})[which] = value.astype(np.float32)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    alpha = float(adapter_config["lora_alpha"])
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    rank = 0
    for target, pair in sorted(pairs.items()):
        a, b = pair["A"], pair["B"]
        rank = a.shape[0]
        if ".attn_q." in target:
            b = _permute_rows(b, n_head)
        elif ".attn_k." in target:
            b = _permute_rows(b, n_head_kv)
        writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out_path)
    return ExportedAdapter(out_path, len(pairs) * 2, rank, alpha)


def export_merged(adapter_dir: Path, base_dir: Path, out_dir: Path) -> Path:
    """Base + adapter merged into plain safetensors (with the tokenizer): loadable by any HF-compatible server."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    partial = out_dir.with_name(out_dir.name + ".partial")
    merged.save_pretrained(partial)
    AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(partial)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    partial.replace(out_dir)
    return out_dir
