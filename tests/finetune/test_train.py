"""LoRA SFT and DPO through TRL + PEFT on a tiny randomly initialised Llama (the real tokenizer, 2 layers).

The point is the training mechanics, not quality: the adapter must move, the base must not, and the run
must report steps, tokens, loss curves and memory. The real SmolLM2 base is converted from its GGUF once.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from adaptlab.config import TrainConfig
from adaptlab.finetune.base_model import prepare_base
from adaptlab.finetune.train import train


def chat(i: int) -> SimpleNamespace:
    return SimpleNamespace(kind="chat", line=i + 1, messages=(
        {"role": "system", "content": "Reply with JSON."},
        {"role": "user", "content": f"play song number {i}"},
        {"role": "assistant", "content": f'{{"intent": "PlayMusic", "slots": {{"track": "{i}"}}}}'}))


def preference(i: int) -> SimpleNamespace:
    return SimpleNamespace(kind="preference", line=i + 1, messages=None, prompt=f"What is {i} plus one?",
                           chosen=str(i + 1), rejected=str(i + 2))


def lora_tensors(adapter_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_sft_moves_the_adapter_and_not_the_base(tiny_llama: Path, tmp_path: Path) -> None:
    steps: list[tuple[int, int, float | None]] = []
    settings = TrainConfig(max_steps=4, batch_size=4, learning_rate=1e-2, max_length=64)
    result = train("sft", tiny_llama, [chat(i) for i in range(16)], [chat(i) for i in range(16, 20)], settings,
                   tmp_path / "run", progress=lambda *a: steps.append(a))
    assert result.steps == 4 and [s[0] for s in steps] == [1, 2, 3, 4] and steps[-1][1] == 4
    assert result.base_weights_unchanged
    tensors = lora_tensors(result.adapter_dir)
    b_matrices = [t for name, t in tensors.items() if "lora_B" in name]
    # PEFT initialises every B to zero: after training each one has moved.
    assert b_matrices and all(t.abs().sum() > 0 for t in b_matrices)
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} == {n.split(".")[-3] for n in tensors if "lora_A" in n}
    assert result.tokens_trained > 0 and result.tokens_per_second > 0 and result.peak_rss_mb > 0
    assert len(result.train_loss) == 4 and result.eval_loss  # eval once per epoch by default
    assert 0 < result.trainable_parameters < result.total_parameters
    assert (result.run_dir / "train_result.json").is_file()


def test_sft_learns_a_single_fact(tiny_llama: Path, tmp_path: Path) -> None:
    """The training loss on one repeated example falls: the adapter is really being optimised."""
    settings = TrainConfig(max_steps=12, batch_size=2, learning_rate=1e-2, max_length=64, lora_dropout=0.0,
                           lora_r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                      "up_proj", "down_proj"])
    result = train("sft", tiny_llama, [chat(7)] * 8, [], settings, tmp_path / "run")
    first, last = result.train_loss[0][1], result.train_loss[-1][1]
    assert last < first - 0.2, result.train_loss  # 49k-way softmax from 32 dims: it moves slowly, but it moves


def test_dpo_trains_an_adapter_on_preference_pairs(tiny_llama: Path, tmp_path: Path) -> None:
    settings = TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-2, max_length=64)
    result = train("dpo", tiny_llama, [preference(i) for i in range(12)], [], settings, tmp_path / "run")
    assert result.method == "dpo" and result.steps == 3 and result.base_weights_unchanged
    assert any(t.abs().sum() > 0 for n, t in lora_tensors(result.adapter_dir).items() if "lora_B" in n)


def test_resume_continues_from_the_last_checkpoint(tiny_llama: Path, tmp_path: Path) -> None:
    examples = [chat(i) for i in range(16)]
    first = train("sft", tiny_llama, examples, [], TrainConfig(max_steps=2, batch_size=4, eval_steps=0),
                  tmp_path / "run")
    assert first.steps == 2
    # A longer run in the same folder picks up at step 2 instead of starting over.
    resumed = train("sft", tiny_llama, examples, [], TrainConfig(max_steps=4, batch_size=4), tmp_path / "run",
                    resume=True)
    assert resumed.steps == 4 and resumed.train_loss[0][0] == 3


def test_wrong_example_kinds_are_refused(tiny_llama: Path, tmp_path: Path) -> None:
    from adaptlab.errors import InputError

    with pytest.raises(InputError, match="adaptlab train dpo"):
        train("sft", tiny_llama, [preference(0)], [], TrainConfig(max_steps=1), tmp_path / "a")
    with pytest.raises(InputError, match="prompt.*chosen.*rejected"):
        train("dpo", tiny_llama, [chat(0)], [], TrainConfig(max_steps=1), tmp_path / "b")


def test_the_bundled_gguf_becomes_a_cached_fp32_model(smol_base) -> None:
    base = smol_base
    assert (base.directory / "model.safetensors").stat().st_size > 500_000_000  # fp32 135M parameters
    assert base.gguf_path is not None and len(base.sha256) == 64
    cache = base.directory.parent
    assert prepare_base("", cache).directory == base.directory  # cached: no second conversion
    assert prepare_base(str(base.directory), cache).directory == base.directory  # an HF directory is used as is


def test_early_stopping_on_eval_loss_stops_before_max_steps(tiny_llama: Path, tmp_path: Path) -> None:
    """A learning rate far too high makes eval loss climb; patience 1 evaluated every step stops the run."""
    settings = TrainConfig(max_steps=40, batch_size=4, learning_rate=3.0, max_length=64, eval_steps=1,
                           early_stopping_patience=1, lora_dropout=0.0)
    result = train("sft", tiny_llama, [chat(i) for i in range(16)], [chat(i) for i in range(16, 20)], settings,
                   tmp_path / "run")
    assert result.steps < 40 and len(result.eval_loss) == result.steps
    assert result.base_weights_unchanged


def test_sft_loss_covers_the_assistant_reply_only(tiny_llama: Path, tmp_path: Path) -> None:
    """The trainer keeps TRL's completion-only labels: system and user tokens are masked with -100."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from adaptlab.finetune.train import _lora_config, _sft_trainer_class, sft_records

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    example = chat(3)
    trainer = _sft_trainer_class()(
        model=AutoModelForCausalLM.from_pretrained(str(tiny_llama)),
        args=SFTConfig(output_dir=str(tmp_path), max_length=128, report_to="none", use_cpu=True),
        train_dataset=Dataset.from_list(sft_records([example])), processing_class=tokenizer,
        peft_config=_lora_config(TrainConfig()))
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0].tolist()
    trained = tokenizer.decode([t for t in labels if t != -100])
    assert '"intent": "PlayMusic"' in trained and "play song number" not in trained
    assert labels[0] == -100 and sum(t != -100 for t in labels) < len(labels) / 2


def test_qlora_trains_on_a_4bit_base_and_leaves_it_untouched(tiny_llama: Path, tmp_path: Path) -> None:
    """QLoRA via bitsandbytes' NF4 (its PyTorch CPU path here; the same code path a CUDA GPU takes)."""
    pytest.importorskip("bitsandbytes")
    settings = TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-2, max_length=64, quantization="4bit")
    result = train("sft", tiny_llama, [chat(i) for i in range(12)], [], settings, tmp_path / "run")
    assert result.quantization == "nf4" and result.steps == 3 and result.base_weights_unchanged
    tensors = lora_tensors(result.adapter_dir)
    assert all(t.abs().sum() > 0 for n, t in tensors.items() if "lora_B" in n)
    # The frozen base is stored in 4 bits: far fewer bytes than fp32 (the embeddings stay unquantized).
    assert 0 < result.trainable_parameters < result.total_parameters


def test_quantization_setting_resolves_to_fp32_on_a_cpu_unless_asked(monkeypatch) -> None:
    import importlib.util

    from adaptlab.errors import ConfigError
    from adaptlab.finetune.train import quantization_for

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert quantization_for("none") == "none" and quantization_for("auto") == "none"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"adaptlab\[qlora\]"):
        quantization_for("4bit")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert quantization_for("auto") == "none"  # a GPU without bitsandbytes trains in full precision


def test_checkpoints_are_chosen_by_the_task_metric_on_the_validation_split(tiny_llama: Path, tmp_path: Path) -> None:
    settings = TrainConfig(max_steps=4, batch_size=4, learning_rate=1e-2, max_length=64, eval_steps=2,
                           checkpoint_metric="field.intent")
    result = train("sft", tiny_llama, [chat(i) for i in range(16)], [chat(i) for i in range(16, 19)], settings,
                   tmp_path / "run", max_new_tokens=8)
    assert result.task_metric_name == "field.intent"
    assert [step for step, _ in result.task_metric] == [2, 4]  # scored at every evaluation, beside the loss
    assert all(0.0 <= value <= 1.0 for _, value in result.task_metric) and len(result.eval_loss) == 2
    best = max(value for _, value in result.task_metric)
    eval_loss = dict(result.eval_loss)
    tied = [step for step, value in result.task_metric if value == best]
    # The kept checkpoint is the best by the task; among equal scores, the one with the lower eval loss.
    assert result.best_step == min(tied, key=lambda step: eval_loss[step])


def test_validation_answers_are_scored_with_the_harness_metrics() -> None:
    from adaptlab.finetune.validate import ValidationCase, resolve_metric, score_answer

    reference = '{"intent": "PlayMusic", "slots": {"track": "7"}}'
    assert score_answer("field.intent", '{"intent": "PlayMusic", "slots": {}}', reference) == 1.0
    assert score_answer("field.intent", '{"intent": "Play"}', reference) == 0.0
    assert score_answer("field.intent", "not json", reference) == 0.0
    assert score_answer("field_accuracy", reference, reference) == 1.0
    assert score_answer("token_f1", "the capital is Paris", "Paris") == pytest.approx(0.5)  # 1 of 3 words
    json_cases = [ValidationCase([{"role": "user", "content": "q"}], reference)]
    assert resolve_metric("auto", json_cases) == "field_accuracy"
    assert resolve_metric("auto", [ValidationCase([], "Paris")]) == "token_f1"


def test_validation_answers_in_batches_are_the_answers_one_at_a_time(tiny_llama: Path) -> None:
    """Left-padded batches must not change a greedy answer (padding masked, positions from the mask)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptlab.finetune.validate import TaskMetricScorer, validation_cases

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama), dtype=torch.float32)
    # Prompts of different lengths, so the batch really pads.
    cases = validation_cases([chat(i) for i in (1, 22, 333, 4444, 55555)])
    side = tokenizer.padding_side
    batched = TaskMetricScorer(cases, tokenizer, "field.intent", 6, batch_size=5).answers(model)
    assert tokenizer.padding_side == side  # the tokenizer's own side is restored for training
    alone = [TaskMetricScorer([case], tokenizer, "field.intent", 6, batch_size=1).answers(model)[0] for case in cases]
    assert batched == alone and len(batched) == 5
