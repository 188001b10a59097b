"""The CLI's user-facing paths: `models`, `config`, and clean errors (no traceback, the right exit code).

Where the exit path through `adaptlab.cli.main.main()` matters (error printing, exit codes), the installed
console script is run as a subprocess; otherwise typer's CliRunner runs the app in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptlab.cli.main import app
from adaptlab.cli.query_cmd import parse_filters
from adaptlab.errors import ConfigError
from adaptlab.rag.store import SearchFilter

ADAPTLAB = str(Path(sys.executable).with_name("adaptlab"))
HASH_CONFIG = '[embedder]\nbackend = "hash"\n'  # a fast embedder: these tests are about the CLI, not the model


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTLAB_")}
    env.update(COLUMNS="250", HF_HUB_OFFLINE="1", NO_COLOR="1")
    return subprocess.run([ADAPTLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.stderr.startswith("error: ")
    assert "\n\n" not in proc.stderr.strip()  # one paragraph
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (no adaptlab.toml) with no ADAPTLAB_* variables."""
    for name in ("ADAPTLAB_HOME", "ADAPTLAB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- models


def test_models_lists_the_bundled_models(workdir: Path) -> None:
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "SmolLM2" in result.output
    assert "all-MiniLM-L6-v2" in result.output
    assert result.output.count("installed") == 2


def test_models_json_and_missing_model_exit_code(workdir: Path) -> None:
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [row["role"] for row in rows] == ["generator", "embedder"]
    assert all(row["installed"] for row in rows)

    (workdir / "adaptlab.toml").write_text('[generator]\nmodel_path = "/nowhere/model.gguf"\n')
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 1  # something configured is missing
    assert "missing" in result.output and "/nowhere/model.gguf" in result.output


# --------------------------------------------------------------------------- config


def test_config_lists_settings_with_descriptions(workdir: Path) -> None:
    proc = run_cli(["config"], workdir)
    assert proc.returncode == 0, proc.stderr
    assert "defaults: no adaptlab.toml found" in proc.stdout
    for name, description in [
        ("chunk.size_tokens", "Chunk size in embedder tokens"),
        ("retrieve.rrf_k", "RRF constant"),
        ("generator.api_key_env", "Environment variable holding the API key"),
        ("answer.min_relevance", "Refuse (without calling the model)"),
    ]:
        line = next((line for line in proc.stdout.splitlines() if f" {name} " in line), "")
        assert description in line, (name, line)
    # The errors tell users to run `adaptlab config --show`: that must work too.
    show = run_cli(["config", "--show"], workdir)
    assert show.returncode == 0, show.stderr
    assert show.stdout == proc.stdout


def test_config_json_prints_effective_values(workdir: Path) -> None:
    (workdir / "adaptlab.toml").write_text('home = "proj"\n[retrieve]\ntop_k = 11\n')
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["retrieve"]["top_k"] == 11
    assert data["home"] == str((workdir / "proj").resolve())
    assert "source_path" not in data


# --------------------------------------------------------------------------- clean errors


def test_bad_config_gives_a_clean_error_and_exit_code_2(workdir: Path) -> None:
    bad = workdir / "bad.toml"
    bad.write_text('[generator]\nmax_tokens = "lots"\n[retrieve]\ntopk = 3\n')
    proc = run_cli(["--config", "bad.toml", "config"], workdir)
    assert_clean_error(proc, 2, "bad.toml", "generator.max_tokens", "retrieve.topk", "adaptlab config --show")
    # The settings list is still printed, so the hint in the error is usable even with a broken file.
    assert "chunk.size_tokens" in proc.stdout


@pytest.mark.parametrize("command", [["models"], ["ask", "question?"], ["config", "--json"]])
def test_invalid_toml_is_refused_by_every_command(workdir: Path, command: list[str]) -> None:
    (workdir / "adaptlab.toml").write_text("[generator\nbackend = 'openai'\n")
    proc = run_cli(command, workdir)
    assert_clean_error(proc, 2, "adaptlab.toml", "not valid TOML", "line 1")


def test_missing_or_unreadable_config_path(workdir: Path) -> None:
    assert_clean_error(run_cli(["--config", "missing.toml", "models"], workdir), 2, "missing.toml",
                       "no such config file")
    (workdir / "folder.toml").mkdir()
    assert_clean_error(run_cli(["--config", "folder.toml", "models"], workdir), 2, "folder.toml")


def test_ask_on_an_empty_home_says_to_ingest_first(workdir: Path) -> None:
    (workdir / "adaptlab.toml").write_text(HASH_CONFIG)
    home = workdir / "empty-home"
    proc = run_cli(["--home", str(home), "ask", "What is in the documents?"], workdir)
    assert_clean_error(proc, 1, "is empty", "adaptlab ingest", str(home))
    retrieve = run_cli(["--home", str(home), "retrieve", "anything"], workdir)
    assert_clean_error(retrieve, 1, "adaptlab ingest")


@pytest.mark.parametrize("bad_filter", ["bogus", "colour=red", "tag=", "path"])
def test_ask_with_a_bad_filter_is_refused_before_loading_anything(workdir: Path, bad_filter: str) -> None:
    home = workdir / "home"
    result = CliRunner().invoke(app, ["--home", str(home), "ask", "question?", "--filter", bad_filter])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert repr(bad_filter) in str(result.exception)
    assert "path=GLOB" in str(result.exception) and "tag=NAME" in str(result.exception)
    assert not home.exists()  # refused before the project (models, index) was opened


def test_bad_filter_through_the_console_script(workdir: Path) -> None:
    proc = run_cli(["--home", str(workdir / "h"), "ask", "q?", "--filter", "bogus"], workdir)
    assert_clean_error(proc, 2, "--filter 'bogus'", "path=GLOB")
    proc = run_cli(["--home", str(workdir / "h"), "retrieve", "q?", "-f", "tag"], workdir)
    assert_clean_error(proc, 2, "--filter 'tag'")


def test_parse_filters() -> None:
    assert parse_filters([]) is None
    flt = parse_filters(["path=*/reports/*", "tag=finance", "TAG=2023"])
    assert flt == SearchFilter(path_glob="*/reports/*", tags=("finance", "2023"))
    assert parse_filters(["path=a=b"]) == SearchFilter(path_glob="a=b")  # only the first '=' splits
