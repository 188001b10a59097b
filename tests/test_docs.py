"""The README and the docs site (docs/, mkdocs.yml): generated reference pages equal to what scripts/gen_docs.py
writes from the code now, README links that resolve, every page in the nav, articles cited by title, and no text
that Markdown would swallow as an HTML tag. `mkdocs build --strict` (in .ci/run) checks links inside the site."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def load_gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced code blocks and inline code spans removed."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"(`+).+?\1", "", text, flags=re.DOTALL)


@pytest.fixture(scope="module")
def gen_docs() -> ModuleType:
    return load_gen_docs()


def test_generated_reference_pages_equal_what_gen_docs_writes_now(gen_docs: ModuleType) -> None:
    """A changed setting, default, description, command or option must come with regenerated docs."""
    pages = gen_docs.pages()
    assert set(pages) == {Path("docs/reference/configuration.md"), Path("docs/reference/cli.md")}
    for path, expected in pages.items():
        actual = (REPO / path).read_text(encoding="utf-8") if (REPO / path).exists() else ""
        assert actual == expected, f"{path} is out of date: run .venv/bin/python scripts/gen_docs.py"


def test_configuration_reference_lists_every_setting(gen_docs: ModuleType) -> None:
    from adaptlab.config import describe_settings

    page = gen_docs.configuration_page()
    for name, _, _ in [*describe_settings(), *gen_docs.workload_rows()]:
        assert f"| `{name}` |" in page
    assert "| `workload.queries_per_day` | required |" in page


def test_cli_reference_lists_every_command_and_option(gen_docs: ModuleType) -> None:
    import typer

    from adaptlab.cli.main import app

    page = gen_docs.cli_page()

    def walk(command, path: list[str]) -> None:
        if len(path) > 1:
            assert f"# {' '.join(path)}\n" in page
        for param in command.params:
            if param.param_type_name == "option":
                assert all(f"`{opt}`" in page for opt in [*param.opts, *param.secondary_opts])
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), ["adaptlab"])


def test_md_text_escapes_markup_outside_code_spans(gen_docs: ModuleType) -> None:
    assert gen_docs.md_text("default <home>/eval, IVF_HNSW_*, a|b, [train]") == (
        "default &lt;home&gt;/eval, IVF_HNSW\\_\\*, a\\|b, \\[train\\]")
    assert gen_docs.md_text("keep `<home>/x_*` and top_k") == "keep `<home>/x_*` and top_k"


def test_the_readme_holds_no_settings_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "| setting | default |" not in readme
    assert "| workload setting | default |" not in readme
    assert "`generator.repeat_penalty`" not in readme


def test_readme_stays_short_and_keeps_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    assert "bash scripts/setup.sh && .venv/bin/adaptlab demo" in readme
    assert ".venv/bin/python -m pytest" in readme
    assert "## Licences" in readme


def test_relative_links_in_the_readme_and_docs_name_existing_files() -> None:
    """mkdocs checks links between pages; this also covers the README's links into docs/ and the repository."""
    problems = []
    for md in markdown_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", without_code(md.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (md.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                problems.append(f"{md.relative_to(REPO)}: {target}")
    assert not problems


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")
               if f": {page.relative_to(DOCS).as_posix()}\n" not in nav]
    assert not missing


# "Seed 000", "seed 003": the number of an article in the project's notes. Not "--seed 0" (an option) nor the
# file names finetune-vs-rag-*.toml (no space).
SEED_REFERENCE = re.compile(r"(?<![-\w])seed 0\d*", re.IGNORECASE)


@pytest.mark.parametrize("text, found", [
    ("Seed 000, reproduced", True),
    ("as the seed 003 rule says", True),
    ("adaptlab bench --seed 0", False),
    ("examples/workloads/finetune-vs-rag-support-bot.toml", False),
])
def test_seed_reference_pattern(text: str, found: bool) -> None:
    assert bool(SEED_REFERENCE.search(text)) is found


def test_articles_are_cited_by_title_not_by_seed_number() -> None:
    """A reader cannot know what "seed 000" is: the articles the project draws on are cited by title."""
    problems = [f"{md.relative_to(REPO)}:{number}: {line.strip()}"
                for md in markdown_files()
                for number, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1)
                if SEED_REFERENCE.search(line)]
    assert not problems


def test_no_text_that_markdown_would_read_as_an_html_tag() -> None:
    """`<home>` outside a code span renders as an unknown HTML tag: the words vanish from the page."""
    problems = []
    for md in markdown_files():
        text = re.sub(r"<!--.*?-->", "", without_code(md.read_text(encoding="utf-8")), flags=re.DOTALL)
        problems.extend(f"{md.relative_to(REPO)}: {tag}" for tag in re.findall(r"</?[A-Za-z][^>\s]*>?", text))
    assert not problems
