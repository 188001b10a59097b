"""LoRA SFT and DPO with TRL + PEFT: fp32 on CPU, QLoRA (NF4 4-bit base) when asked or when a CUDA GPU is present.

Measured per run: wall time, tokens trained (Trainer's own count of input tokens), tokens/s, peak RSS, loss
curves. The adapter is saved in PEFT format under the run folder; export.py turns it into a GGUF LoRA that
llama.cpp loads on top of the same base GGUF.
"""

from __future__ import annotations

import json
import platform
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adaptlab.config import TrainConfig
from adaptlab.errors import ConfigError, InputError

if TYPE_CHECKING:
    from transformers import TrainerCallback

# (step, total steps, latest training loss or None) after every optimizer step
TrainProgress = Callable[[int, int, float | None], None]


@dataclass
class TrainResult:
    method: Literal["sft", "dpo"]
    run_dir: Path
    adapter_dir: Path
    steps: int
    epochs: float
    train_examples: int
    eval_examples: int
    seconds: float
    tokens_trained: int
    tokens_per_second: float
    peak_rss_mb: float
    train_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)
    task_metric: list[tuple[int, float]] = field(default_factory=list)  # (step, validation score) when chosen by it
    task_metric_name: str = ""
    best_step: int | None = None  # the checkpoint kept, when one was chosen by a metric
    stopped_early: bool = False
    hardware: dict[str, Any] = field(default_factory=dict)
    trainable_parameters: int = 0
    total_parameters: int = 0
    # checked after training: only the adapter may move (None: not checked, the weights were sharded across GPUs)
    base_weights_unchanged: bool | None = True
    quantization: str = "none"  # "none" (fp32 base) or "nf4" (QLoRA)
    # Data-parallel processes that trained it: each took batch_size examples per step, so an optimizer step saw
    # batch_size × processes × gradient_accumulation examples. tokens_trained counts all of them, peak_rss_mb sums
    # the processes' peaks.
    processes: int = 1
    # torch.cuda.max_memory_allocated during the run, the largest over the processes' GPUs (None: no CUDA GPU)
    peak_gpu_memory_mb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"], data["adapter_dir"] = str(self.run_dir), str(self.adapter_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Read back what to_dict wrote (train_result.json), e.g. from a training process of its own."""
        curves = ("train_loss", "eval_loss", "task_metric")
        values = {**data, "run_dir": Path(data["run_dir"]), "adapter_dir": Path(data["adapter_dir"]),
                  **{name: [(int(step), float(value)) for step, value in data.get(name, [])] for name in curves}}
        return cls(**values)


def hardware_summary() -> dict[str, Any]:
    import os

    import torch

    return {
        "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def sft_records(examples: Sequence[Any]) -> list[dict[str, Any]]:
    """Conversational prompt/completion records: TRL then computes the loss on the completion only."""
    records = []
    for example in examples:
        if example.kind == "chat":
            messages = list(example.messages)
            records.append({"prompt": messages[:-1], "completion": [messages[-1]]})
        elif example.kind == "completion":
            records.append({"prompt": [{"role": "user", "content": example.prompt}],
                            "completion": [{"role": "assistant", "content": example.completion}]})
        else:
            raise InputError(str(getattr(example, "source", "training data")), example.line,
                             "a preference pair in SFT data", "train it with `adaptlab train dpo`")
    return records


def dpo_records(examples: Sequence[Any]) -> list[dict[str, Any]]:
    records = []
    for example in examples:
        if example.kind != "preference":
            raise InputError("training data", example.line, f"a {example.kind} example in DPO data",
                             "DPO needs {\"prompt\", \"chosen\", \"rejected\"} records")
        prompt = list(example.messages) if example.messages else [{"role": "user", "content": example.prompt}]
        records.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": example.chosen}],
                        "rejected": [{"role": "assistant", "content": example.rejected}]})
    return records


def quantization_for(setting: str) -> Literal["none", "nf4"]:
    """Resolve [train].quantization: auto means QLoRA exactly when a CUDA GPU and bitsandbytes are both present."""
    import importlib.util

    import torch

    has_bitsandbytes = importlib.util.find_spec("bitsandbytes") is not None
    if setting == "4bit":
        if not has_bitsandbytes:
            raise ConfigError("[train] quantization = \"4bit\" needs bitsandbytes, which is not installed. Fix: "
                              "pip install 'adaptlab[qlora]', or set quantization = \"none\".")
        return "nf4"
    if setting == "auto" and torch.cuda.is_available() and has_bitsandbytes:
        return "nf4"
    return "none"


def load_base_model(base_dir: Path, quantization: Literal["none", "nf4"]):
    """The base model for training: fp32, or QLoRA's NF4 4-bit with double quantization (frozen weights only)."""
    import os

    import torch
    from transformers import AutoModelForCausalLM

    if quantization == "none":
        return AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    compute_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=compute_dtype)
    # Each data-parallel process (torchrun sets LOCAL_RANK) puts its copy on its own GPU.
    device = int(os.environ.get("LOCAL_RANK", "0"))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), quantization_config=config,
                                                 dtype=compute_dtype, device_map={"": device} if cuda else None)
    # Norms and the head to fp32 and input gradients on, as QLoRA needs; checkpointing stays our setting's call.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def _lora_config(settings: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.target_modules), task_type="CAUSAL_LM", bias="none")


def _common_args(settings: TrainConfig, run_dir: Path, has_eval: bool, resume: bool,
                 by_task_metric: bool = False) -> dict[str, Any]:
    import os

    import torch

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if settings.eval_steps else "epoch"
    args: dict[str, Any] = dict(
        output_dir=str(run_dir / "checkpoints"),
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=1,
        eval_strategy=eval_strategy,
        save_strategy=eval_strategy if (settings.early_stopping_patience or by_task_metric) and has_eval else "steps",
        save_steps=settings.eval_steps or 50,
        save_total_limit=2,
        report_to="none",  # we record to MLflow ourselves, with our own names
        use_cpu=not torch.cuda.is_available(),
        # Under a launcher (finetune/distributed.py): gloo between CPU processes (Accelerate would take MPI when
        # torch has it, which torchrun does not set up); None leaves NCCL to Accelerate on GPUs, and a single
        # process alone (a backend there would make it look for a process group).
        ddp_backend="gloo" if launched and not torch.cuda.is_available() else None,
        # Every LoRA matrix takes part in every forward pass: DDP need not search the graph for unused ones.
        ddp_find_unused_parameters=False,
        # bf16 on a CPU is very slow: fp32 there; mixed precision on a GPU that supports it
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        fp16=False,
        include_num_input_tokens_seen="non_padding",  # tokens trained = real tokens, not padding
        activation_checkpointing=settings.gradient_checkpointing,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    if settings.eval_steps and has_eval:
        args["eval_steps"] = settings.eval_steps
    if by_task_metric and has_eval:
        from adaptlab.finetune.validate import METRIC_KEY

        args.update(load_best_model_at_end=True, metric_for_best_model=METRIC_KEY, greater_is_better=True)
    elif settings.early_stopping_patience and has_eval:
        args.update(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
    return args


class _Recorder:
    """A TrainerCallback that keeps the loss curves and reports progress."""

    def __init__(self, progress: TrainProgress | None) -> None:
        from transformers import TrainerCallback

        recorder = self

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                logs = logs or {}
                if "loss" in logs:
                    recorder.train_loss.append((state.global_step, float(logs["loss"])))
                if "eval_loss" in logs:
                    recorder.eval_loss.append((state.global_step, float(logs["eval_loss"])))

            def on_step_end(self, args, state, control, **kwargs):
                if recorder.progress:
                    latest = recorder.train_loss[-1][1] if recorder.train_loss else None
                    recorder.progress(state.global_step, state.max_steps, latest)

        self.callback = Callback()
        self.progress = progress
        self.train_loss: list[tuple[int, float]] = []
        self.eval_loss: list[tuple[int, float]] = []


def train(method: Literal["sft", "dpo"], base_dir: Path, train_examples: Sequence[Any],
          eval_examples: Sequence[Any], settings: TrainConfig, run_dir: Path, *,
          progress: TrainProgress | None = None, resume: bool = False, max_new_tokens: int = 64) -> TrainResult:
    """Fine-tune a LoRA adapter on `base_dir` (an HF model directory) and save it to run_dir/adapter.

    max_new_tokens: the answer budget when checkpoints are chosen by the task metric."""
    import datasets
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoTokenizer, EarlyStoppingCallback

    datasets.disable_progress_bars()  # tokenising a few hundred rows needs no bar of its own
    transformers.utils.logging.disable_progress_bar()

    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    quantization = quantization_for(settings.quantization)
    if quantization == "nf4" and _launched_sharded():
        raise ConfigError("QLoRA's 4-bit base is not set up to be sharded by FSDP or DeepSpeed ZeRO-3 here. Fix: set "
                          "[train] quantization = \"none\" with this Accelerate config, or train QLoRA data-parallel "
                          "(--processes N without --accelerate-config).")
    model = load_base_model(base_dir, quantization)
    to_records = sft_records if method == "sft" else dpo_records
    train_dataset = Dataset.from_list(to_records(train_examples))
    eval_dataset = Dataset.from_list(to_records(eval_examples)) if eval_examples else None
    scorer = None
    if settings.checkpoint_metric and method == "sft" and eval_examples:
        from adaptlab.finetune.validate import TaskMetricScorer, validation_cases

        scorer = TaskMetricScorer(validation_cases(eval_examples), tokenizer, settings.checkpoint_metric,
                                  max_new_tokens)
    args = _common_args(settings, run_dir, eval_dataset is not None, resume, by_task_metric=scorer is not None)
    recorder = _Recorder(progress)
    callbacks: list[TrainerCallback] = [recorder.callback]
    task_curve: list[tuple[int, float]] = []
    if scorer is not None:
        from adaptlab.finetune.validate import task_metric_callback

        # Before early stopping: it reads the metric this callback adds.
        callbacks.append(task_metric_callback(scorer, task_curve))
    if settings.early_stopping_patience and eval_dataset is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience))

    if method == "sft":
        from trl import SFTConfig

        sft_config = SFTConfig(**args, max_length=settings.max_length, packing=False)
        trainer = _sft_trainer_class()(model=model, args=sft_config, train_dataset=train_dataset,
                                       eval_dataset=eval_dataset, processing_class=tokenizer,
                                       peft_config=_lora_config(settings), callbacks=callbacks)
    else:
        from trl import DPOConfig, DPOTrainer

        dpo_config = DPOConfig(**args, max_length=settings.max_length, beta=settings.dpo_beta)
        trainer = DPOTrainer(model=model, args=dpo_config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                             processing_class=tokenizer, peft_config=_lora_config(settings), callbacks=callbacks)

    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our progress callback reports; the printer would dump dicts
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    base_before = _frozen_checksum(trainer.model)
    started = time.perf_counter()
    checkpoint = _last_checkpoint(run_dir) if resume else None
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started
    sharded = _weights_sharded(trainer)
    # A process holds only its shard of sharded weights: their sums say nothing about the whole.
    base_unchanged = None if sharded else _frozen_checksum(trainer.model) == base_before
    adapter_dir = run_dir / "adapter"
    processes = trainer.args.world_size
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        if trainer.is_fsdp_enabled:  # whole tensors in the saved adapter, whatever the config's checkpoint format
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(adapter_dir))  # every process takes part in gathering the weights; rank 0 writes
    elif trainer.is_world_process_zero():
        trainer.model.save_pretrained(str(adapter_dir))
    # Trainer gathers every process's token count into this, so tokens/s is the whole job's.
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    peak_rss = sum(_from_every_process(peak_rss_mb(), processes))
    peak_gpu = max(_from_every_process(torch.cuda.max_memory_allocated() / 2**20, processes)) \
        if torch.cuda.is_available() else None
    state = trainer.state
    stopped_early = bool(settings.max_steps == 0 and state.max_steps and state.global_step < state.max_steps)
    result = TrainResult(
        method=method, run_dir=run_dir, adapter_dir=adapter_dir, steps=state.global_step,
        epochs=float(state.epoch or 0), train_examples=len(train_examples), eval_examples=len(eval_examples),
        seconds=seconds, tokens_trained=tokens, tokens_per_second=tokens / seconds if seconds else 0.0,
        peak_rss_mb=peak_rss, train_loss=recorder.train_loss, eval_loss=recorder.eval_loss,
        stopped_early=stopped_early, hardware=hardware_summary(), trainable_parameters=trainable,
        total_parameters=total, base_weights_unchanged=base_unchanged, quantization=quantization,
        task_metric=task_curve, task_metric_name=scorer.metric if scorer is not None else "",
        best_step=_step_of(state.best_model_checkpoint), processes=processes, peak_gpu_memory_mb=peak_gpu,
    )
    if trainer.is_world_process_zero():
        (run_dir / "train_result.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def _launched_sharded() -> bool:
    """Whether `accelerate launch` started this process with FSDP or ZeRO-3 (the environment it sets)."""
    import os

    deepspeed_zero3 = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" and \
        os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" or deepspeed_zero3


def _weights_sharded(trainer) -> bool:
    """FSDP and DeepSpeed ZeRO-3 split the weights across processes (ZeRO-2 splits only gradients and optimizer)."""
    if trainer.is_fsdp_enabled:
        return True
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


def _from_every_process(value: float, processes: int) -> list[float]:
    """`value` as measured by each data-parallel process (a job's memory is theirs together, not rank 0's)."""
    if processes == 1:
        return [value]
    from accelerate.utils import gather_object

    return [float(v) for v in gather_object([value])]


def _sft_trainer_class():
    """TRL's SFTTrainer with the model's own cross-entropy instead of TRL's tiled "fused LM head".

    The tiled head saves GPU memory on large vocabularies and adds entropy / token-accuracy metrics, but on CPU it
    made a step ~20% slower than a plain PEFT loop (benchmarks/bench_train.py). The labels are the same (prompt
    tokens masked by TRL's collator), so the loss is the same.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return PlainLossSFTTrainer


def _step_of(checkpoint: str | None) -> int | None:
    """checkpoint-40 → 40."""
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _frozen_checksum(model) -> tuple[float, float]:
    """Sum and absolute sum of every frozen parameter, in float64: any update to the base would move them."""
    import torch

    total = torch.zeros((), dtype=torch.float64)
    absolute = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.requires_grad:
                total += parameter.double().sum()
                absolute += parameter.double().abs().sum()
    return float(total), float(absolute)


def _last_checkpoint(run_dir: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None
