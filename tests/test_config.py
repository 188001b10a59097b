"""Tests for adaptlab.config: defaults, TOML overrides, refusals with file and key named, home resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptlab.config import (
    CONFIG_ENV,
    HOME_ENV,
    AdaptlabConfig,
    ChunkConfig,
    describe_settings,
    load_config,
)
from adaptlab.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./adaptlab.toml


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_without_a_file(tmp_path: Path) -> None:
    config = load_config()
    assert config == AdaptlabConfig()
    assert config.source_path == ""
    assert config.generator.backend == "llama_cpp"
    assert config.embedder.backend == "minilm"
    assert config.chunk.size_tokens == 200 and config.chunk.overlap_tokens == 32
    assert config.retrieve.top_k == 5
    assert config.home_dir() == (tmp_path / ".adaptlab").resolve()


def test_toml_overrides_nested_values_and_keeps_other_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "custom.toml", """
home = "proj"

[generator]
backend = "openai"
base_url = "http://10.0.0.5:8000/v1"
max_tokens = 64

[chunk]
size_tokens = 128
overlap_tokens = 0

[retrieve]
mmr = true
dense_weight = 0.25

[ingest]
extensions = [".txt"]
""")
    config = load_config(path)
    assert config.generator.backend == "openai"
    assert config.generator.base_url == "http://10.0.0.5:8000/v1"
    assert config.generator.max_tokens == 64
    assert config.generator.temperature == 0.0  # untouched default in an overridden section
    assert (config.chunk.size_tokens, config.chunk.overlap_tokens) == (128, 0)
    assert config.retrieve.mmr is True and config.retrieve.dense_weight == 0.25
    assert config.ingest.extensions == [".txt"]
    assert config.embedder == AdaptlabConfig().embedder  # a section not in the file keeps its defaults
    assert config.source_path == str(path.resolve())


def test_adaptlab_toml_in_cwd_and_config_env_are_found(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "adaptlab.toml", "[retrieve]\ntop_k = 9\n")
    assert load_config().retrieve.top_k == 9
    other = write(tmp_path / "elsewhere.toml", "[retrieve]\ntop_k = 3\n")
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert load_config().retrieve.top_k == 3  # $ADAPTLAB_CONFIG wins over ./adaptlab.toml
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config()


def test_unknown_key_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path / "typo.toml", "[generator]\nmax_token = 10\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "generator.max_token" in message
    assert str(path) in message
    with pytest.raises(ConfigError, match="retreive"):
        load_config(write(tmp_path / "section.toml", "[retreive]\ntop_k = 3\n"))


def test_wrong_type_names_file_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path / "types.toml", '[retrieve]\ntop_k = "many"\n[generator]\ntemperature = 5.0\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid configuration")
    assert "retrieve.top_k" in message and "'many'" in message
    assert "generator.temperature" in message  # out of range (≤ 2) is reported in the same message
    assert "adaptlab config" in message  # points at the list of settings
    assert "Traceback" not in message


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "[generator\nmax_tokens = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)
    assert "line 1" in str(info.value)


def test_non_utf8_and_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes('home = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(latin)
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(ConfigError, match="a_folder"):  # used to escape as IsADirectoryError
        load_config(folder)


def test_overlap_not_below_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkConfig(size_tokens=64, overlap_tokens=64)
    path = write(tmp_path / "overlap.toml", "[chunk]\nsize_tokens = 64\noverlap_tokens = 80\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "overlap_tokens (80)" in str(info.value) and "size_tokens (64)" in str(info.value)
    assert ChunkConfig(size_tokens=64, overlap_tokens=63).overlap_tokens == 63


def test_explicit_missing_config_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)
    assert "no such config file" in str(info.value)


def test_assignment_is_validated() -> None:
    config = AdaptlabConfig()
    with pytest.raises(ValueError):
        config.retrieve.top_k = 0


# --------------------------------------------------------------------------- home resolution


def test_home_default_is_dot_adaptlab_in_cwd(tmp_path: Path) -> None:
    assert AdaptlabConfig().home_dir() == (tmp_path / ".adaptlab").resolve()


def test_home_from_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert AdaptlabConfig().home_dir() == (tmp_path / "from-env").resolve()
    monkeypatch.setenv(HOME_ENV, "relative-env")
    assert AdaptlabConfig().home_dir() == (tmp_path / "relative-env").resolve()  # relative to the cwd


def test_config_home_wins_and_is_relative_to_the_config_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    project = tmp_path / "project"
    project.mkdir()
    path = write(project / "adaptlab.toml", 'home = "data/home"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(path).home_dir() == (project / "data" / "home").resolve()
    absolute = write(project / "abs.toml", f'home = "{tmp_path / "abs-home"}"\n')
    assert load_config(absolute).home_dir() == (tmp_path / "abs-home").resolve()
    # Without a file, a relative `home` is relative to the cwd.
    assert AdaptlabConfig(home="rel").home_dir() == (elsewhere / "rel").resolve()


def test_home_argument_overrides_everything(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    path = write(tmp_path / "c.toml", 'home = "from-file"\n')
    config = load_config(path, home="cli-home")
    assert config.home_dir() == (tmp_path / "cli-home").resolve()


def test_home_expands_user(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert AdaptlabConfig(home="~/ad").home_dir() == (tmp_path / "user" / "ad").resolve()


# --------------------------------------------------------------------------- describe_settings


def test_describe_settings_covers_every_field_with_a_description() -> None:
    rows = describe_settings()
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names))
    assert "source_path" not in names
    for expected in ("home", "generator.model_path", "chunk.size_tokens", "retrieve.rrf_k", "answer.min_relevance",
                     "store.qdrant_url", "embedder.dimensions"):
        assert expected in names
    assert all(description for _, _, description in rows)
    defaults = {name: default for name, default, _ in rows}
    assert defaults["chunk.size_tokens"] == "200"
    assert defaults["generator.backend"] == "'llama_cpp'"
    # Every leaf field of every section is listed.
    config = AdaptlabConfig()
    for section in ("runtime", "generator", "embedder", "ingest", "chunk", "store", "retrieve", "answer"):
        for field in type(getattr(config, section)).model_fields:
            assert f"{section}.{field}" in names


def test_list_settings_are_one_row_and_named_sections_are_documented_per_kind() -> None:
    """bench.strategies and serve.strategies are lists of names, not tables of sections."""
    rows = {name: default for name, default, _ in describe_settings()}
    assert rows["bench.strategies"] == "['prompt', 'rag', 'finetuned', 'finetuned_rag']"
    assert rows["serve.strategies"] == "[]"
    assert not [name for name in rows if name.startswith(("bench.strategies.", "serve.strategies."))]
    for kind in ("prompt", "rag", "finetuned", "finetuned_rag", "cached"):
        assert f"strategies.NAME ({kind}).kind" in rows
