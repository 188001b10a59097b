"""`adaptlab prices`: tables with the adaptlab.toml overrides marked, the staleness warning (exit 0), --json, and
clean errors for bad overrides."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import ADAPTLAB_BIN
from typer.testing import CliRunner

from adaptlab.cli.main import app

OVERRIDES = """
[prices.gpus."lambda/h100-sxm"]
usd_per_hour = 2.22
as_of = {today}
source = "https://lambda.ai/pricing"

[prices.vector_db."acme-db/8gb"]
provider = "Acme DB"
usd_per_month = 40.0
capacity_gb = 8.0
"""


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTLAB_")}
    env.update(COLUMNS="250", NO_COLOR="1")
    return subprocess.run([ADAPTLAB_BIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ADAPTLAB_HOME", "ADAPTLAB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adaptlab.toml").write_text(OVERRIDES.format(today=datetime.date.today().isoformat()))
    return tmp_path


def test_tables_show_overrides_and_warn_about_stale_prices(workdir: Path) -> None:
    proc = run_cli(["prices"], workdir)
    assert proc.returncode == 0, proc.stderr  # stale prices warn, they do not fail
    out = proc.stdout
    for section in ("api_models", "gpus", "embedding_apis", "vector_db", "redis_hosting"):
        assert section in out
    h100 = next(line for line in out.splitlines() if "lambda/h100-sxm" in line)
    assert "2.220" in h100 and "*" in h100 and "adaptlab.toml: lambda.ai/pricing" in h100
    acme = next(line for line in out.splitlines() if "acme-db/8gb" in line)
    assert "Acme DB" in acme and "40.00" in acme and "undated" in acme and "adaptlab.toml" in acme
    assert "* from adaptlab.toml" in out
    assert "openai/gpt-4o-mini" in out and "$/hour" in out and "$/1M tok" in out
    # The shipped gpt-4o prices are from 2024: far older than 180 days.
    stale = next(line for line in out.splitlines() if "older than 180 days" in line)
    assert "oldest:" in stale and "as_of" in stale and "override them in adaptlab.toml [prices." in stale
    assert "no as_of date (vector_db/acme-db/8gb)" in out


def test_section_filter_and_max_age(workdir: Path) -> None:
    proc = run_cli(["prices", "--section", "gpus", "--max-age-days", "100000"], workdir)
    assert proc.returncode == 0, proc.stderr
    assert "lambda/h100-sxm" in proc.stdout and "openai/gpt-4o" not in proc.stdout
    assert "older than" not in proc.stdout and "no as_of date" not in proc.stdout
    bad = run_cli(["prices", "--section", "gpu"], workdir)
    assert bad.returncode == 2 and "api_models, gpus" in bad.stderr


def test_json_entries_with_age_and_stale_flags(workdir: Path) -> None:
    result = CliRunner().invoke(app, ["prices", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["max_age_days"] == 180 and data["today"] == datetime.date.today().isoformat()
    rows = {(row["section"], row["key"]): row for row in data["entries"]}
    h100 = rows[("gpus", "lambda/h100-sxm")]
    assert h100["usd_per_hour"] == 2.22 and h100["overridden"] and not h100["stale"] and h100["age_days"] == 0
    assert h100["gpu"] == "H100" and h100["source"] == "https://lambda.ai/pricing"
    acme = rows[("vector_db", "acme-db/8gb")]
    assert acme["as_of"] is None and acme["age_days"] is None and acme["stale"]
    old = rows[("api_models", "openai/gpt-4o")]
    assert old["as_of"] == "2024-10-01" and old["stale"] and not old["overridden"] and old["age_days"] > 180
    assert {row["section"] for row in data["entries"]} == {"api_models", "gpus", "embedding_apis", "vector_db",
                                                           "redis_hosting"}
    only = json.loads(CliRunner().invoke(app, ["prices", "--json", "-s", "redis_hosting"]).stdout)
    assert {row["section"] for row in only["entries"]} == {"redis_hosting"}


def test_bad_override_is_a_clean_config_error(workdir: Path) -> None:
    (workdir / "adaptlab.toml").write_text('[prices.gpus."lambda/h100-sxm"]\nusd_per_hr = 2.0\n')
    proc = run_cli(["prices"], workdir)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert 'adaptlab.toml [prices.gpus."lambda/h100-sxm"] usd_per_hr' in proc.stderr
    assert "usd_per_hour" in proc.stderr
