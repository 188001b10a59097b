"""Rules of the code's shape that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "adaptlab"


def _modules(root: Path):
    for path in sorted(root.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):  # function-level imports too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_production_code_never_imports_the_testing_fakes() -> None:
    offenders = [str(path.relative_to(REPO)) for path, tree in _modules(PACKAGE)
                 if "testing" not in path.relative_to(PACKAGE).parts
                 and any(name == "adaptlab.testing" or name.startswith("adaptlab.testing.")
                         for name in _imported(tree))]
    assert offenders == []


def test_no_code_assigns_into_an_objects_dict() -> None:
    """Components are passed in (Project(config, generator=...), project.with_parts(...)), never patched in."""
    offenders = []
    for root in (PACKAGE, REPO / "tests", REPO / "benchmarks"):
        for path, tree in _modules(root):
            for node in ast.walk(tree):
                targets = node.targets if isinstance(node, ast.Assign) else []
                for target in targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute) \
                            and target.value.attr == "__dict__":
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_import_layers_hold() -> None:
    """import-linter's contracts in pyproject.toml: the package layers (no cycles) and no production import of
    the testing fakes — function-level imports included."""
    import subprocess
    import sys

    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint_imports), "--config", str(REPO / "pyproject.toml")], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
