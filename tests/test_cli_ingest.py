"""`adaptlab ingest` through the real command: bad files are reported by path with the reason, everything
else is ingested, the exit code is 0 unless --strict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import ADAPTLAB_BIN, write_config


def _make_folder(root: Path) -> dict[str, Path]:
    root.mkdir()
    files = {
        "good_txt": root / "good.txt",
        "good_md": root / "guide.md",
        "empty": root / "empty.txt",
        "binary": root / "blob.txt",
        "latin1": root / "latin1.txt",
        "corrupt_pdf": root / "broken.pdf",
        "big": root / "big.txt",
        "bad_jsonl": root / "records.jsonl",
    }
    files["good_txt"].write_text("Vaccines\nVaccines train the immune system to recognise a virus.\n")
    files["good_md"].write_text("# Guide\n\nWash hands often. Ventilate rooms.\n")
    files["empty"].write_text("   \n")
    files["binary"].write_bytes(b"\x00\x01\x02 binary \x00 data" * 20)
    files["latin1"].write_bytes("Caf\xe9 au lait".encode("latin-1"))
    files["corrupt_pdf"].write_bytes(b"%PDF-1.4 this is not really a pdf")
    files["big"].write_text("x" * 300_000)
    files["bad_jsonl"].write_text('{"text": "first record"}\n{not json}\n{"text": "third record"}\n')
    return files


def test_bad_files_reported_rest_ingested(tmp_path):
    files = _make_folder(tmp_path / "docs")
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home",
                          '[embedder]\nbackend = "hash"\n[ingest]\nmax_file_mb = 0.2\n')
    result = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "ingest", str(tmp_path / "docs"), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 4  # good.txt, guide.md, and two records of records.jsonl
    problems = "\n".join(summary["problems"])
    for key, reason in [("empty", "no text"), ("binary", "binary"), ("latin1", "not UTF-8"),
                        ("corrupt_pdf", "PDF"), ("big", "max_file_mb")]:
        assert str(files[key].resolve()) in problems, f"{key} not reported"
        line = next(p for p in summary["problems"] if str(files[key].resolve()) in p)
        assert reason in line, line
    assert f"{files['bad_jsonl'].resolve()}:2: invalid JSON" in problems


def test_strict_exits_non_zero_but_keeps_the_work(tmp_path):
    _make_folder(tmp_path / "docs")
    config = write_config(tmp_path / "adaptlab.toml", tmp_path / "home", '[embedder]\nbackend = "hash"\n')
    result = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "ingest", str(tmp_path / "docs"), "--strict"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "--strict" in result.stderr and "Traceback" not in result.stderr
    assert "5 added" in result.stdout  # the good documents were indexed all the same (big.txt is fine here)
    again = subprocess.run([ADAPTLAB_BIN, "--config", str(config), "ingest", str(tmp_path / "docs")],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "5 unchanged" in again.stdout


def test_nothing_to_ingest_is_a_clear_error(tmp_path):
    result = subprocess.run([ADAPTLAB_BIN, "--home", str(tmp_path / "home"), "ingest", str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Nothing to ingest" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr
