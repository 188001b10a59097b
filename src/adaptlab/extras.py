"""Optional backends live in pip extras; a missing one fails with the extra to install, not an ImportError.

    pip install 'adaptlab[qdrant]'   # store.backend = "qdrant", cache.semantic_index = "qdrant"
    pip install 'adaptlab[redis]'    # cache.backend = "redis", serve.rate_limit_storage = "redis://..."
    pip install 'adaptlab[qlora]'    # 4-bit QLoRA base (bitsandbytes)
"""

from __future__ import annotations

import importlib
from types import ModuleType

from adaptlab.errors import ConfigError

# extra name → the distribution it installs (as pyproject.toml's [project.optional-dependencies] lists it)
# (the qlora extra's bitsandbytes is checked by finetune/train.py without importing it: its import is slow)
EXTRAS = {"qdrant": "qdrant-client", "redis": "redis"}


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or explain which extra `purpose` (the setting that asked for it) needs."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{purpose} needs the optional package {EXTRAS[extra]} ({exc.name or module} is not installed) — "
            f"install it with: pip install 'adaptlab[{extra}]'"
        ) from None
