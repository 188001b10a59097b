"""`adaptlab demo --quick` end to end with the real models (SmolLM2 + MiniLM + LanceDB + LoRA training), then:
its report in a real headless Chromium, a rerun that reuses the index and the adapter and measures the same
numbers, Ctrl-C leaving nothing half-written, and the CLI's errors on a bad [bench] section.

Set ADAPTLAB_SCREENSHOT_DIR to keep the report's screenshots (README's docs/demo-report*.png come from here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaptlab.testing.browser import check_page, find_chromium

ADAPTLAB = str(Path(sys.executable).with_name("adaptlab"))
CHART_KINDS = {"quality", "latency", "cost", "tco", "frontier", "cache-sweep"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTLAB_")}
    env.update(COLUMNS="200", HF_HUB_OFFLINE="1", NO_COLOR="1")
    return env


def _cli(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([ADAPTLAB, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    proc = _cli(["--home", str(folder / "home"), "demo", "--quick", "--json"], folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    summary["wall_seconds"] = time.perf_counter() - started
    summary["root"] = folder / "home" / "demo" / "quick"
    summary["stderr"] = proc.stderr
    return summary


@pytest.mark.slow
def test_quick_demo_measures_prices_and_recommends_every_strategy(demo: dict) -> None:
    root: Path = demo["root"]
    report = Path(demo["report"])
    assert report.is_file() and report.stat().st_size > 20_000
    combined = json.loads(Path(demo["results"]).read_text())
    knowledge, intents = combined["tasks"]

    assert [s["name"] for s in knowledge["strategies"]] == ["prompt", "prompt+cache", "rag", "rag+cache"]
    assert [s["name"] for s in intents["strategies"]] == ["prompt", "prompt+cache", "finetuned", "finetuned+cache"]
    assert {s["name"] for s in knowledge["skipped_strategies"]} == {"finetuned", "finetuned_rag"}
    for task, metric in ((knowledge, "token_f1"), (intents, "field.intent")):
        assert task["quality_metric"] == metric
        assert task["advice"]["recommendation"] in {s["name"] for s in task["strategies"]}
        assert not task["advice"]["estimate"]  # priced from measurements
        for strategy in task["strategies"]:
            quality = strategy["metrics"][metric]
            assert quality["n"] == task["n_cases"]
            assert quality["low"] <= quality["value"] <= quality["high"]
            assert strategy["timing"]["latency_ms_p50"] > 0
            if strategy["cached"]:
                rate = strategy["traffic_hit_rate"]
                assert 0 < rate["value"] < 1 and "replayed over queries.jsonl" in rate["source"]
        assert task["cache"]["sweep"] and task["measurement"]
        ranked = [s for s in task["advice"]["strategies"] if s["rank"] is not None]
        assert sorted(s["rank"] for s in ranked) == list(range(1, len(ranked) + 1))
    # RAG retrieves the gold article for these questions; the prompt alone cannot cite anything.
    rag = next(s for s in knowledge["strategies"] if s["name"] == "rag")
    assert rag["metrics"]["recall_at_5"]["value"] >= 0.5
    assert rag["timing"]["prompt_tokens_mean"] > 3 * knowledge["strategies"][0]["timing"]["prompt_tokens_mean"]
    stages = {s["name"]: s for s in knowledge["stages"] + intents["stages"]}
    assert stages["index"]["status"] == "built" and stages["adapter"]["status"] == "built"
    assert intents["data_check"]["clean"] >= 200  # the fine-tuning bar the workload sets
    # Fine-tuning judged: the learning curve's two adapters, checkpoints by the task metric, the forgetting probe.
    study = intents["finetuning"]
    assert [a["label"] for a in study["adapters"]] == ["50% of the data", "all the data"]
    assert all(a["task_metric_name"] == "field.intent" and a["task_metric"] for a in study["adapters"])
    assert study["fit"] is not None and study["forgetting"]["base"]["n"] == 3
    assert stages["adapter 50%"]["status"] == "built"
    assert demo["peak_rss_mb"] > 0 and demo["seconds"] > 0
    # Nothing half-written anywhere.
    assert not list(root.rglob("*.partial-*"))


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium/chromedriver: apt-get install chromium "
                                                    "chromium-driver")
def test_report_renders_in_headless_chromium_without_console_errors(demo: dict, tmp_path: Path) -> None:
    shots = Path(os.environ.get("ADAPTLAB_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = check_page(Path(demo["report"]), screenshot=shots / "demo-report-full.png",
                      screenshot_viewport=shots / "demo-report.png")
    assert page.console == []
    assert {chart.kind for chart in page.charts} == CHART_KINDS | {"learning-curve"}
    assert len(page.charts) == 2 * len(CHART_KINDS) + 1  # every chart of both tasks; the JSON task fine-tunes
    assert all(chart.width > 100 and chart.height > 100 and chart.elements > 10 for chart in page.charts)
    assert page.data_charts == str(len(page.charts))  # the page's own check: each chart has a size
    assert page.text.index("Recommendation") < page.text.index("Quality per strategy")
    for name in ("demo-report.png", "demo-report-full.png"):
        assert (shots / name).read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_rerun_reuses_the_adapter_and_measures_the_same_numbers(demo: dict, tmp_path: Path) -> None:
    config = demo["root"] / "intents" / "adaptlab.toml"
    proc = _cli(["bench", "--config", str(config), "--out", str(tmp_path / "again"), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    first = json.loads(Path(demo["results"]).read_text())["tasks"][1]
    assert {s["name"]: s["status"] for s in again["stages"]}["adapter"] == "reused"
    for before, after in zip(first["strategies"], again["strategies"], strict=True):
        assert after["metrics"]["field.intent"]["value"] == before["metrics"]["field.intent"]["value"]
        assert [c["answer"] for c in after["cases"]] == [c["answer"] for c in before["cases"]]
    assert (tmp_path / "again" / "report.html").is_file()


@pytest.mark.slow
def test_ctrl_c_leaves_nothing_half_written(demo: dict, tmp_path: Path) -> None:
    config = demo["root"] / "knowledge" / "adaptlab.toml"
    out = tmp_path / "interrupted"
    # As a terminal delivers Ctrl-C to a foreground command: with SIGINT's default disposition. A test run launched
    # as a background job (`cmd &` in a script) inherits SIGINT *ignored*, which Python would keep ignoring.
    proc = subprocess.Popen([ADAPTLAB, "bench", "--config", str(config), "--out", str(out)], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 300
    while "Measuring" not in seen and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    assert "Measuring" in seen, seen
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + rest
    assert "interrupted" in rest
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no .partial folder either


def test_bench_cli_names_the_bad_setting_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "adaptlab.toml").write_text('[bench]\ncases = "missing.jsonl"\nworkload = "w.toml"\n')
    proc = _cli(["bench", "--config", str(tmp_path / "adaptlab.toml")], tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "bench.cases = 'missing.jsonl': no such file" in proc.stderr
    assert not (tmp_path / ".adaptlab" / "bench").exists() or not any((tmp_path / ".adaptlab" / "bench").iterdir())
