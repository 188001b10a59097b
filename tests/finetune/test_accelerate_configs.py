"""The example Accelerate configs (examples/accelerate/*.yaml) for FSDP and DeepSpeed on GPUs.

They cannot run here (no GPU), so this checks what can be checked on a CPU: `accelerate launch` parses each file,
knows every field, and turns it into the environment the trainer reads — the one adaptlab's QLoRA guard reads too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "examples" / "accelerate"


def launch_environment(path: Path) -> dict[str, str]:
    """The environment `accelerate launch --config_file PATH --num_processes 4 -m adaptlab.finetune.worker` gives
    its processes (its own steps up to starting them; the helpers are Accelerate's internals)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(path), "--num_processes", "4", "-m",
                                               "adaptlab.finetune.worker", "request.json"])
    args, defaults, precision_from_config = _validate_launch_command(args)
    assert args.num_processes == 4  # --processes overrides the file's num_processes
    if args.use_deepspeed:
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if precision_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
        return env
    return prepare_multi_gpu_env(args)


@pytest.mark.parametrize("name", ["fsdp", "deepspeed_zero2", "deepspeed_zero3"])
def test_each_example_config_is_one_accelerate_launch_accepts(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    path = CONFIGS / f"{name}.yaml"
    config = load_config_from_file(str(path))  # refuses unknown top-level fields
    assert config.compute_environment.value == "LOCAL_MACHINE"
    nested = yaml.safe_load(path.read_text(encoding="utf-8"))["fsdp_config" if name == "fsdp" else "deepspeed_config"]
    options = {action.dest for action in launch_command_parser()._actions}
    # accelerate copies nested fields onto its options without checking them: a misspelt one would be ignored
    assert sorted(set(nested) - options) == []
    env = launch_environment(path)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    if name == "fsdp":
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
        assert env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "LlamaDecoderLayer"
    else:
        assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == name[-1]


@pytest.mark.parametrize(("name", "sharded"), [("fsdp", True), ("deepspeed_zero2", False), ("deepspeed_zero3", True)])
def test_qlora_is_refused_exactly_where_the_config_shards_the_weights(name: str, sharded: bool,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from adaptlab.finetune.train import _launched_sharded

    for key, value in launch_environment(CONFIGS / f"{name}.yaml").items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    assert _launched_sharded() is sharded
