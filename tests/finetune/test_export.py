"""GGUF LoRA export checked against the truth: the same adapter through PEFT (fp32) and through llama.cpp
(Q4_1 base + our GGUF adapter) must move the logits the same way.

llama.cpp quantises activations inside its matmuls, so tiny adapters drown in rounding; the test uses
adapters large enough to dominate it and compares the *changes* the adapter causes (correlation), per module
family. Without the q/k row permutation the q/k correlation collapses — the negative control shows why the
exporter permutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adaptlab.finetune import export as export_module
from adaptlab.finetune.export import export_gguf_lora, export_merged

TEXT = "The capital of France is Paris, and the capital of Italy is"


def random_adapter(base_dir: Path, out: Path, modules: list[str], scale: float):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    torch.manual_seed(0)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=modules, init_lora_weights=False))
    with torch.no_grad():
        for name, parameter in peft.named_parameters():
            if "lora_B" in name:
                parameter.mul_(scale)
    peft.save_pretrained(str(out))
    return peft


def hf_delta(peft, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        with_adapter = peft(torch.tensor([ids])).logits[0].numpy()
        with peft.disable_adapter():
            without = peft(torch.tensor([ids])).logits[0].numpy()
    return (with_adapter - without).ravel()


def cpp_logits(gguf: Path, ids: list[int], lora: Path | None) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), lora_path=str(lora) if lora else None, n_ctx=128, logits_all=True,
                n_threads=1, verbose=False)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)])


@pytest.fixture(scope="module")
def token_ids(smol_base) -> list[int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smol_base.directory))(TEXT)["input_ids"]


@pytest.mark.slow
@pytest.mark.parametrize(("module", "scale"), [("q_proj", 0.3), ("k_proj", 0.3), ("v_proj", 0.1),
                                               ("down_proj", 0.1)])
def test_llama_cpp_applies_the_exported_adapter_like_peft(smol_base, token_ids, tmp_path: Path, module: str,
                                                          scale: float) -> None:
    peft = random_adapter(smol_base.directory, tmp_path / "adapter", [module], scale)
    exported = export_gguf_lora(tmp_path / "adapter", smol_base.directory, tmp_path / "adapter.gguf")
    assert exported.rank == 8 and exported.alpha == 16 and exported.tensors == 2 * 30  # A and B for 30 layers
    base_logits = cpp_logits(smol_base.gguf_path, token_ids, None)
    cpp_delta = (cpp_logits(smol_base.gguf_path, token_ids, exported.path) - base_logits).ravel()
    correlation = np.corrcoef(hf_delta(peft, token_ids), cpp_delta)[0, 1]
    assert correlation > 0.7, correlation  # measured here: q 0.88, k 0.87, v 0.82


def test_without_the_qk_permutation_llama_cpp_disagrees(smol_base, token_ids, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    peft = random_adapter(smol_base.directory, tmp_path / "adapter", ["q_proj"], 0.3)
    monkeypatch.setattr(export_module, "_permute_rows", lambda weights, n_head: weights)
    exported = export_gguf_lora(tmp_path / "adapter", smol_base.directory, tmp_path / "unpermuted.gguf")
    base_logits = cpp_logits(smol_base.gguf_path, token_ids, None)
    cpp_delta = (cpp_logits(smol_base.gguf_path, token_ids, exported.path) - base_logits).ravel()
    assert np.corrcoef(hf_delta(peft, token_ids), cpp_delta)[0, 1] < 0.5  # measured here: 0.22


def test_the_exported_file_is_a_gguf_lora_adapter(smol_base, tmp_path: Path) -> None:
    from gguf import GGUFReader

    random_adapter(smol_base.directory, tmp_path / "adapter", ["q_proj", "o_proj"], 0.1)
    exported = export_gguf_lora(tmp_path / "adapter", smol_base.directory, tmp_path / "a.gguf")
    reader = GGUFReader(str(exported.path))
    fields = {name: bytes(f.parts[f.data[0]]).decode() for name, f in reader.fields.items()
              if name in ("general.type", "adapter.type", "general.architecture")}
    assert fields == {"general.type": "adapter", "adapter.type": "lora", "general.architecture": "llama"}
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    assert shapes["blk.0.attn_q.weight.lora_a"] == (576, 8)  # ggml order: (in, r)
    assert shapes["blk.0.attn_q.weight.lora_b"] == (8, 576)  # ggml order: (r, out)
    assert not list(tmp_path.glob("*.partial"))


def test_merged_export_matches_the_adapter(smol_base, token_ids, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    peft = random_adapter(smol_base.directory, tmp_path / "adapter", ["q_proj", "v_proj"], 0.1)
    merged_dir = export_merged(tmp_path / "adapter", smol_base.directory, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32)
    with torch.no_grad():
        expected = peft(torch.tensor([token_ids])).logits
        actual = merged(torch.tensor([token_ids])).logits
    assert torch.allclose(expected, actual, atol=1e-3)
    assert (merged_dir / "tokenizer.json").is_file() and not any("lora" in p.name for p in merged_dir.iterdir())
