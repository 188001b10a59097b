"""finetuned / finetuned_rag strategies: the base GGUF plus an exported LoRA adapter, served by llama.cpp."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adaptlab.config import load_config
from adaptlab.errors import ConfigError
from adaptlab.finetune.export import export_gguf_lora
from adaptlab.project import Project
from adaptlab.strategies.factory import build_strategy


@pytest.fixture(scope="module")
def adapter_gguf(smol_base, tmp_path_factory) -> Path:
    """A random (not trained) adapter, strong enough to change greedy answers (B left at its random init)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("adapter")
    model = AutoModelForCausalLM.from_pretrained(str(smol_base.directory), dtype=torch.float32)
    torch.manual_seed(1)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["v_proj", "o_proj", "down_proj"],
                                            init_lora_weights=False))
    peft.save_pretrained(str(folder / "peft"))
    return export_gguf_lora(folder / "peft", smol_base.directory, folder / "adapter.gguf").path


def project_with(tmp_path: Path, body: str) -> Project:
    config = tmp_path / "adaptlab.toml"
    config.write_text(f'home = "{tmp_path / "home"}"\n[generator]\nmax_tokens = 12\n{body}', encoding="utf-8")
    return Project(load_config(config))


def test_finetuned_strategy_answers_with_the_adapter(tmp_path: Path, adapter_gguf: Path) -> None:
    project = project_with(tmp_path, f'[strategies.ft]\nkind = "finetuned"\nadapter = "{adapter_gguf}"\n')
    finetuned = build_strategy(project, "ft")
    base = build_strategy(project, "prompt")
    assert finetuned.kind == "finetuned" and not finetuned.retrieves
    assert finetuned.describe()["adapter"] == str(adapter_gguf)
    assert finetuned.describe()["model"].endswith("+adapter.gguf")
    question = "What is the capital of France?"
    assert finetuned.answer(question).text != base.answer(question).text  # the adapter changes the model


def test_finetuned_rag_strategy_is_a_rag_strategy_with_the_adapter(tmp_path: Path, adapter_gguf: Path) -> None:
    project = project_with(tmp_path, f'[strategies.ftr]\nkind = "finetuned_rag"\nadapter = "{adapter_gguf}"\n'
                                     'top_k = 3\n')
    strategy = build_strategy(project, "ftr")
    assert strategy.kind == "finetuned_rag" and strategy.retrieves
    assert strategy.describe()["adapter"] == str(adapter_gguf) and strategy.describe()["top_k"] == 3


def test_missing_adapter_settings_are_config_errors(tmp_path: Path) -> None:
    project = project_with(tmp_path, '[strategies.ft]\nkind = "finetuned"\n')
    with pytest.raises(ConfigError, match="set adapter"):
        build_strategy(project, "ft")
    remote = project_with(tmp_path, '[strategies.ft]\nkind = "finetuned"\n').config
    remote.generator.backend = "openai"
    with pytest.raises(ConfigError, match="served_model"):
        build_strategy(Project(remote), "ft")
