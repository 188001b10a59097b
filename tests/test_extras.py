"""A backend whose optional package is not installed fails with the pip extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adaptlab.errors import ConfigError
from adaptlab.extras import require


def test_require_returns_the_module_or_names_the_extra() -> None:
    assert require("json", "redis", "anything").dumps([]) == "[]"
    with pytest.raises(ConfigError, match=r"store.backend = 'qdrant' needs the optional package qdrant-client .*"
                                          r"pip install 'adaptlab\[qdrant\]'"):
        require("adaptlab_no_such_module", "qdrant", "store.backend = 'qdrant'")


# Each line runs in a child where the package cannot be imported (sys.modules[name] = None blocks it).
@pytest.mark.parametrize(("blocked", "code", "expected"), [
    ("qdrant_client",
     "from adaptlab.rag.store_factory import create_store; from adaptlab.config import AdaptlabConfig; "
     "create_store(AdaptlabConfig.model_validate({'store': {'backend': 'qdrant'}}), __import__('pathlib').Path('.'))",
     "pip install 'adaptlab[qdrant]'"),
    ("redis",
     "from adaptlab.cache.factory import open_cache; from adaptlab.config import AdaptlabConfig; "
     "open_cache(AdaptlabConfig.model_validate({'cache': {'backend': 'redis'}}), __import__('pathlib').Path('.'))",
     "pip install 'adaptlab[redis]'"),
])
def test_a_missing_backend_package_names_its_extra(blocked: str, code: str, expected: str, tmp_path) -> None:
    script = f"import sys; sys.modules[{blocked!r}] = None\n" \
             f"from adaptlab.errors import ConfigError\ntry:\n    {code}\nexcept ConfigError as e:\n    print(e)\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
