"""Tests for adaptlab.rag.load: one per format, one per bad-input case, discovery and id stability."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from adaptlab.config import IngestConfig
from adaptlab.rag.load import discover, load_file
from adaptlab.types import Document, FileProblem

CFG = IngestConfig()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load_one(path: Path, config: IngestConfig = CFG, tags: tuple[str, ...] = ()) -> Document:
    docs, problems = load_file(path, config, tags)
    assert problems == []
    assert len(docs) == 1
    return docs[0]


def _problem(path: Path, config: IngestConfig = CFG) -> FileProblem:
    docs, problems = load_file(path, config)
    assert docs == []
    assert len(problems) == 1
    assert problems[0].path == str(path.resolve())
    return problems[0]


def _assert_sections_consistent(doc: Document) -> None:
    for section in doc.sections:
        assert doc.text[section.char_start : section.char_start + len(section.text)] == section.text


def _make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.set_font("helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


# --------------------------------------------------------------------------- formats


def test_txt_title_text_ids_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\n  Quarterly Notes  \r\nRevenue grew 12%.\r\nCosts fell.   \n\n")
    doc = _load_one(path, tags=("b", "a", "b"))
    resolved = str(path.resolve())
    assert doc.text == "\n  Quarterly Notes  \nRevenue grew 12%.\nCosts fell."
    assert doc.title == "Quarterly Notes"
    assert doc.path == resolved
    assert doc.doc_id == _sha(resolved)[:20]
    assert doc.tags == ("a", "b")
    assert doc.content_hash == _sha(doc.title + "\0" + doc.text + "\0" + "a,b")
    assert len(doc.sections) == 1
    assert doc.sections[0].text == doc.text and doc.sections[0].char_start == 0 and doc.sections[0].page is None


def test_txt_bom_accepted_and_long_first_line_uses_stem(tmp_path: Path) -> None:
    path = tmp_path / "long-line.txt"
    path.write_bytes(b"\xef\xbb\xbf" + ("x" * 250).encode() + b"\nsecond")
    doc = _load_one(path)
    assert doc.text.startswith("xxx") and "\ufeff" not in doc.text
    assert doc.title == "long-line"


def test_markdown_front_matter_and_heading(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "---\ntitle: \"Install Guide\"\nauthor: me\n---\n\n# Getting started\n\nRun the installer.\n\n"
        "## Details\n\nMore text.\n",
        encoding="utf-8",
    )
    doc = _load_one(path)
    assert doc.title == "Install Guide"  # front matter title wins
    assert doc.text == "# Getting started\n\nRun the installer.\n\n## Details\n\nMore text."  # markdown kept
    assert "author" not in doc.text

    no_front = tmp_path / "plain.markdown"
    no_front.write_text("```\n# not a heading\n```\nIntro line\n\n# Real Heading\n\nBody.\n", encoding="utf-8")
    assert _load_one(no_front).title == "Real Heading"

    no_heading = tmp_path / "bare.md"
    no_heading.write_text("---\nauthor: x\n---\nJust a line of text.\n", encoding="utf-8")
    bare = _load_one(no_heading)
    assert bare.title == "Just a line of text."
    assert bare.text == "Just a line of text."


ARTICLE = [
    "Tidal power converts the energy of moving sea water into electricity. Unlike wind and solar, tides are "
    "predictable decades in advance, which makes planning the grid considerably easier for operators.",
    "The largest tidal barrage in the world is at Sihwa Lake in South Korea, with an installed capacity of 254 "
    "megawatts. It was completed in 2011 and uses the sea wall built for land reclamation.",
    "Tidal stream turbines work like underwater wind turbines. Because water is about eight hundred times denser "
    "than air, the rotors can be much smaller for the same output, though they must survive harsh conditions.",
    "Critics point to the high capital cost and effects on estuary ecosystems, including sediment flows and "
    "migrating fish. Supporters answer that the plants last for over a century once built.",
]


def test_html_keeps_article_drops_boilerplate(tmp_path: Path) -> None:
    paragraphs = "\n".join(f"<p>{p}</p>" for p in ARTICLE)
    path = tmp_path / "page.html"
    path.write_text(
        f"""<!DOCTYPE html><html><head><title>ACME | Tidal Energy Explained</title></head><body>
<header><div class="logo">ACME News</div>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World Politics</a></li>
<li><a href="/sport">Sport Section</a></li><li><a href="/subscribe">Subscribe Today</a></li></ul></nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
<button>Accept all cookies</button></div>
<main><article><h1>Tidal Energy Explained</h1>
{paragraphs}
</article></main>
<footer><p>Copyright 2024 ACME News Corporation.</p><a href="/privacy">Privacy Policy</a>
<a href="/terms">Terms of Use</a></footer></body></html>""",
        encoding="utf-8",
    )
    doc = _load_one(path)
    for paragraph in ARTICLE:
        assert paragraph in doc.text
    for boilerplate in ("World Politics", "Sport Section", "Subscribe Today", "Privacy Policy", "Terms of Use",
                        "Copyright 2024", "Accept all cookies"):
        assert boilerplate not in doc.text
    assert "Tidal Energy Explained" in doc.title
    assert "<" not in doc.text


def test_html_short_page_falls_back_and_title_from_title_tag(tmp_path: Path) -> None:
    path = tmp_path / "tiny.htm"
    path.write_text("<html><head><title>Tiny Page</title></head><body><p>Hi there.</p></body></html>")
    doc = _load_one(path)
    assert "Hi there." in doc.text
    assert doc.title == "Tiny Page"


def test_html_legacy_charset_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.html"
    path.write_bytes(
        '<html><head><meta charset="iso-8859-1"><title>Café</title></head>'
        "<body><p>Un café crème, s'il vous plaît.</p></body></html>".encode("latin-1")
    )
    doc = _load_one(path)
    assert "Un café crème" in doc.text
    assert doc.title == "Café"


def test_pdf_pages_blank_page_skipped_offsets_consistent(tmp_path: Path) -> None:
    path = _make_pdf(tmp_path / "report.pdf", ["Apples grow on trees.", "", "Cherries are red.\nSecond line."])
    doc = _load_one(path)
    assert [s.page for s in doc.sections] == [1, 3]
    assert "Apples grow on trees." in doc.sections[0].text
    assert "Cherries are red." in doc.sections[1].text
    assert doc.text == "\n\n".join(s.text for s in doc.sections)
    _assert_sections_consistent(doc)
    assert doc.sections[1].char_start == len(doc.sections[0].text) + 2
    assert doc.title == "Apples grow on trees."  # no metadata title: first line


def test_pdf_metadata_title(tmp_path: Path) -> None:
    doc = _load_one(_make_pdf(tmp_path / "t.pdf", ["Body text here."], title="Annual Report 2024"))
    assert doc.title == "Annual Report 2024"
    assert [s.page for s in doc.sections] == [1]


def test_jsonl_custom_text_field_ids_tags(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    rows = [
        {"id": "r-1", "title": "First", "body": "Alpha body.", "tags": ["x", "a"]},
        {"body": "Beta body\r\nline two.\n"},
        {"id": 7, "body": "Gamma body.", "tags": "solo"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n")
    docs, problems = load_file(path, IngestConfig(json_text_field="body"), extra_tags=("src",))
    assert problems == []
    resolved = str(path.resolve())
    assert [d.path for d in docs] == [f"{resolved}#r-1", f"{resolved}#2", f"{resolved}#7"]
    assert [d.doc_id for d in docs] == [_sha(f"{resolved}#{rid}")[:20] for rid in ("r-1", "2", "7")]
    assert [d.text for d in docs] == ["Alpha body.", "Beta body\nline two.", "Gamma body."]
    assert docs[0].title == "First" and docs[1].title == "Beta body"
    assert docs[0].tags == ("a", "src", "x") and docs[1].tags == ("src",) and docs[2].tags == ("solo", "src")
    assert len({d.doc_id for d in docs}) == 3


def test_json_list_and_single_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"text": "Zero."}, {"id": "b", "text": "One."}, {"title": "no text"}]))
    docs, problems = load_file(path, CFG)
    resolved = str(path.resolve())
    assert [d.path for d in docs] == [f"{resolved}#0", f"{resolved}#b"]
    assert len(problems) == 1
    assert problems[0].line is None
    assert "record #2" in problems[0].reason and "'text'" in problems[0].reason
    assert "json_text_field" in problems[0].reason

    single = tmp_path / "one.json"
    single.write_text(json.dumps({"title": "Solo", "text": "Only record.", "tags": ["t"]}))
    doc = _load_one(single)
    assert doc.path == str(single.resolve()) and doc.title == "Solo" and doc.tags == ("t",)


def test_json_bad_shapes(tmp_path: Path) -> None:
    scalar = tmp_path / "scalar.json"
    scalar.write_text("42")
    assert "expected an object or a list" in _problem(scalar).reason
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"text": "a"},\n{"text": }\n]')
    problem = _problem(broken)
    assert problem.reason.startswith("invalid JSON") and problem.line == 3


# --------------------------------------------------------------------------- bad input


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that ignore file permissions (root)")
        assert "permission denied" in _problem(path).reason
    finally:
        path.chmod(0o644)


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Same path as above, reachable as root too.
    path = tmp_path / "secret.txt"
    path.write_text("hidden")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    assert "permission denied" in _problem(path).reason


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    assert _problem(path).reason.startswith("not a readable PDF: ")


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    path = _make_pdf(tmp_path / "scan.pdf", ["", ""])
    assert "no text layer" in _problem(path).reason and "OCR" in _problem(path).reason


def test_encrypted_pdf(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    source = _make_pdf(tmp_path / "plain.pdf", ["Classified text."])
    for user_password, name in (("", "open.pdf"), ("s3cret", "locked.pdf")):
        writer = pypdf.PdfWriter(clone_from=str(source))
        try:
            writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
        except Exception as exc:  # no crypto provider for this algorithm
            pytest.skip(f"cannot write encrypted PDFs here: {exc}")
        writer.write(str(tmp_path / name))
    assert "Classified text." in _load_one(tmp_path / "open.pdf").text  # empty password tried
    assert "password" in _problem(tmp_path / "locked.pdf").reason


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"GIF89a\x00\x01\x02\x00binary")
    assert _problem(path).reason == "binary file, not text"


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  "])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    assert _problem(path).reason == "no text found (empty file)"


def test_html_without_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.html"
    path.write_text("<html><head></head><body><div></div></body></html>")
    assert "no text found" in _problem(path).reason


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    problem = _problem(path)
    assert problem.reason == "not UTF-8 text (invalid byte at offset 3) — convert it to UTF-8"


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)  # 5000 bytes
    problem = _problem(path, IngestConfig(max_file_mb=0.001))
    assert "over ingest.max_file_mb = 0.001" in problem.reason
    assert problem.reason.startswith("file is 0.0 MB") and "raise the limit or split the file" in problem.reason


def test_bad_jsonl_line_keeps_other_records(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "good one"}\n{"text": broken\n\n{"title": "no text"}\n[1, 2]\n{"text": "good two"}\n')
    docs, problems = load_file(path, CFG)
    assert [d.text for d in docs] == ["good one", "good two"]
    assert [d.path.rsplit("#", 1)[1] for d in docs] == ["1", "6"]
    assert [p.line for p in problems] == [2, 4, 5]
    assert problems[0].reason.startswith("invalid JSON: ")
    assert problems[1].reason == "record has no 'text' text field — set ingest.json_text_field in adaptlab.toml"
    assert "expected an object" in problems[2].reason
    assert str(problems[0]) == f"{path.resolve()}:2: {problems[0].reason}"


def test_duplicate_record_ids(tmp_path: Path) -> None:
    path = tmp_path / "dupes.jsonl"
    path.write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n')
    docs, problems = load_file(path, CFG)
    assert [d.text for d in docs] == ["one"]
    assert problems[0].line == 2 and "duplicate record id 'a'" in problems[0].reason


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    files, problems = discover([missing], CFG)
    assert files == []
    assert problems == [FileProblem(str(missing), "no such file or directory")]
    assert _problem(missing).reason == "no such file or directory"


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xyz"
    path.write_text("a,b")
    files, problems = discover([path], CFG)
    assert files == []
    assert len(problems) == 1
    assert problems[0].reason.startswith("unsupported file type .xyz (supported: ")
    assert ".pdf" in problems[0].reason and ".jsonl" in problems[0].reason
    assert "unsupported file type .xyz" in _problem(path).reason


# --------------------------------------------------------------------------- discovery and stability


def test_discover_recursion_hidden_and_extensions(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    for rel in ("b.txt", "a.md", "UPPER.TXT", "skip.xyz", ".hidden.txt", ".git/config.txt", "sub/c.pdf",
                "sub/deeper/d.jsonl", "sub/.cache/e.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (tmp_path / "empty_dir").mkdir()
    single = tmp_path / "single.txt"
    single.write_text("x")

    files, problems = discover([root, single, root / "b.txt", tmp_path / "empty_dir"], CFG)
    relative = [str(f.relative_to(tmp_path.resolve())) for f in files]
    assert relative == ["docs/UPPER.TXT", "docs/a.md", "docs/b.txt", "docs/sub/c.pdf", "docs/sub/deeper/d.jsonl",
                        "single.txt"]  # sorted within a folder, arguments in order, no duplicates
    assert all(f.is_absolute() for f in files)
    assert len(problems) == 1 and problems[0].path == str(tmp_path / "empty_dir")
    assert "no supported files" in problems[0].reason

    only_md, _ = discover([root], IngestConfig(extensions=[".md"]))
    assert [f.name for f in only_md] == ["a.md"]
    assert discover([root], CFG) == discover([root], CFG)


def test_ids_and_hashes_are_deterministic(tmp_path: Path) -> None:
    txt = tmp_path / "a.txt"
    txt.write_text("Title\nBody text.")
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"id": "k", "text": "Rec."}\n')
    first = [*load_file(txt, CFG)[0], *load_file(jsonl, CFG)[0]]
    second = [*load_file(txt, CFG)[0], *load_file(jsonl, CFG)[0]]
    assert [(d.doc_id, d.content_hash) for d in first] == [(d.doc_id, d.content_hash) for d in second]

    txt.write_text("Title\nBody text, edited.")
    edited = load_file(txt, CFG)[0][0]
    assert edited.doc_id == first[0].doc_id and edited.content_hash != first[0].content_hash
    retagged = load_file(txt, CFG, extra_tags=("new",))[0][0]
    assert retagged.content_hash != edited.content_hash

