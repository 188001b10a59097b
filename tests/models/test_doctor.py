"""`adaptlab doctor` and the generation probe: a crashing build is reported with its cause and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from adaptlab.config import AdaptlabConfig
from adaptlab.doctor import doctor
from adaptlab.models.llama_probe import describe_exit, probe_generation
from adaptlab.models.registry import default_gguf_path

ADAPTLAB_BIN = str(Path(sys.executable).with_name("adaptlab"))


def test_a_child_killed_by_sigill_is_diagnosed_with_the_fix() -> None:
    crashing_build = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    result = probe_generation(Path("unused.gguf"), command=crashing_build)
    assert not result.ok
    assert "SIGILL" in result.detail and "illegal instruction" in result.detail
    assert "bash scripts/setup.sh" in result.fix


def test_other_child_failures_are_described() -> None:
    detail, fix = describe_exit(1, "Traceback ...\nValueError: Failed to load model from file: x.gguf\n")
    assert "exit 1" in detail and "Failed to load model" in detail and "generator.model_path" in fix
    detail, _ = describe_exit(-9, "")
    assert "out of memory" in detail
    hung = probe_generation(Path("x"), command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=1)
    assert not hung.ok and "no token after 1 s" in hung.detail


def test_the_real_generator_answers_one_token_in_a_child() -> None:
    result = probe_generation(default_gguf_path())
    assert result.ok, result.detail
    assert result.load_s > 0 and result.answer_s > 0
    assert "answered" in result.detail


def test_doctor_reports_every_check_ok_on_this_install(tmp_path: Path) -> None:
    report = doctor(AdaptlabConfig.model_validate({"home": str(tmp_path)}))
    assert [check.name for check in report.checks] == ["llama.cpp build", "generator", "embedder"]
    assert report.ok, report.checks
    assert all(check.status == "ok" for check in report.checks), report.checks
    assert "384-d unit vector" in report.checks[2].detail


def test_doctor_fails_on_a_missing_model_with_the_fix(tmp_path: Path) -> None:
    config = AdaptlabConfig.model_validate({"home": str(tmp_path),
                                            "generator": {"model_path": str(tmp_path / "missing.gguf")}})
    report = doctor(config)
    generator = next(check for check in report.checks if check.name == "generator")
    assert generator.status == "fail" and "missing.gguf" in generator.detail
    assert not report.ok


def test_doctor_command(tmp_path: Path) -> None:
    proc = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "doctor"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "llama.cpp build" in proc.stdout and "portable" in proc.stdout
    assert "generator" in proc.stdout and "answered" in proc.stdout
    assert "FAIL" not in proc.stdout
