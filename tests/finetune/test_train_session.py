"""`run_training` and `adaptlab train` end to end: data file → LoRA run → MLflow run with loss curves →
registered adapter version whose tags carry the lineage (dataset fingerprint, base hash, run)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project

from adaptlab.finetune.data import fingerprint
from adaptlab.finetune.session import TrainRequest, run_training


def write_chat_data(path: Path, n: int) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"play track {i}"},
                          {"role": "assistant",
                           "content": json.dumps({"intent": "PlayMusic", "slots": {"n": str(i)}})}],
             "label": "PlayMusic"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_training_run_is_tracked_and_its_adapter_registered_with_lineage(tiny_llama: Path,
                                                                            tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    project = make_project(tmp_path / "home", train={"base": str(tiny_llama), "batch_size": 4,
                                                     "max_length": 64})
    data = write_chat_data(tmp_path / "intents.jsonl", 20)
    stages: list[str] = []
    report = run_training(project, TrainRequest("sft", data, max_steps=3), on_stage=stages.append)
    result = report.result
    assert result.steps == 3 and result.train_examples == 18 and result.eval_examples == 2  # eval_fraction 0.1
    assert report.data_fingerprint == fingerprint(data)
    assert report.gguf_adapter is None  # an HF-directory base has no GGUF for llama.cpp to serve
    assert any("training sft" in s for s in stages)

    client = MlflowClient(tracking_uri=f"sqlite:///{project.home / 'mlflow.db'}")
    run = client.get_run(report.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["data_fingerprint"] == report.data_fingerprint
    assert run.data.params["base_sha256"] == report.base.sha256 and run.data.params["train.lora_r"] == "8"
    assert {"tokens_per_second", "peak_rss_mb", "wall_seconds", "final_train_loss"} <= set(run.data.metrics)
    assert [m.step for m in client.get_metric_history(report.run_id, "train_loss")] == [1, 2, 3]
    assert "hardware.torch" in run.data.tags
    [version] = client.search_model_versions("name='adaptlab-intents'")
    assert version.run_id == report.run_id and version.tags["data_fingerprint"] == report.data_fingerprint
    assert version.tags["base_sha256"] == report.base.sha256
    assert {a.path for a in client.list_artifacts(report.run_id)} >= {"adapter", "train_result.json"}
    # the project's call log records the training run for the cost model
    [row] = project.logger.rows("train")
    assert row["prompt_tokens"] == result.tokens_trained and row["detail"]["steps"] == 3

    again = run_training(project, TrainRequest("sft", data, max_steps=1))
    assert again.model_version == "2"  # same name: a new version of the registered adapter


def test_an_explicit_eval_file_is_used_and_fingerprinted(tiny_llama: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "home", train={"base": str(tiny_llama), "max_length": 64},
                           tracking={"enabled": False})
    data = write_chat_data(tmp_path / "train.jsonl", 8)
    held_out = write_chat_data(tmp_path / "held.jsonl", 3)
    report = run_training(project, TrainRequest("sft", data, eval_data=held_out, max_steps=1))
    assert report.result.train_examples == 8 and report.result.eval_examples == 3
    assert report.eval_fingerprint == fingerprint(held_out) and report.run_id is None


def test_train_runs_and_export_commands(tiny_llama: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    from conftest import ADAPTLAB_BIN, write_config

    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home",
                          f'[train]\nbase = "{tiny_llama}"\nmax_length = 64\n')
    data = write_chat_data(tmp_path / "intents.jsonl", 12)

    def adaptlab(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "COLUMNS": "200"}  # wide enough that table cells are not folded
        return subprocess.run([ADAPTLAB_BIN, "--config", str(config), *args], capture_output=True, text=True,
                              timeout=600, check=False, env=env)

    trained = adaptlab("train", "sft", str(data), "--max-steps", "2", "--json")
    assert trained.returncode == 0, trained.stderr
    # Library progress bars and warnings stay out of the terminal; adaptlab's own progress lines remain.
    for leaked in ("Loading weights", "it/s]", "Writing model shards", "Warning:", "warnings.warn"):
        assert leaked not in trained.stderr, trained.stderr
    report = json.loads(trained.stdout)
    assert report["steps"] == 2 and report["registered_model"] == "adaptlab-intents" and report["model_version"] == "1"
    listing = adaptlab("runs")
    assert listing.returncode == 0 and "adaptlab-intents" in listing.stdout
    merged = adaptlab("train", "export", report["run_dir"], "--no-gguf", "--merged", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert "it/s]" not in merged.stderr and "Warning:" not in merged.stderr, merged.stderr
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    no_gguf = adaptlab("train", "export", report["run_dir"])
    assert no_gguf.returncode != 0 and "--no-gguf --merged" in no_gguf.stderr and "Traceback" not in no_gguf.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n', encoding="utf-8")
    refused = adaptlab("train", "sft", str(bad))
    assert refused.returncode != 0 and "bad.jsonl:1" in refused.stderr and "Traceback" not in refused.stderr
