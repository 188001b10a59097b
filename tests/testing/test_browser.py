"""adaptlab.testing.browser against a real headless Chromium, on small pages written here.

Skipped when Chromium or chromedriver is missing (apt-get install chromium chromium-driver; .ci/run installs
them). Each check starts its own browser: 1-1.5 s a page.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest

from adaptlab.errors import AdaptlabError, InputError
from adaptlab.testing.browser import BrowserNotFoundError, ChartBox, check_page, find_chromium

_no_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium/chromedriver: apt-get install chromium chromium-driver, or set $ADAPTLAB_CHROMIUM and "
           "$ADAPTLAB_CHROMEDRIVER")


def needs_chromium(test):
    """A test that drives the real browser: skipped without one, and slow (the six take ~10 s together)."""
    return pytest.mark.slow(_no_chromium(test))


def page(tmp_path: Path, body: str, *, title: str = "Page", name: str = "page.html", head: str = "") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    return path


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", data[16:24])  # the IHDR chunk's width and height


BAR = ('<svg class="chart" data-chart="bar" width="320" height="200" viewBox="0 0 320 200">'
       '<rect x="10" y="50" width="40" height="150"/><rect x="60" y="20" width="40" height="180"/>'
       '<line x1="0" y1="200" x2="320" y2="200" stroke="black"/><text x="10" y="15">Accuracy</text></svg>')
LINE = ('<svg class="chart" data-chart="line" width="400" height="240">'
        '<polyline points="0,200 100,120 200,140 300,40" fill="none" stroke="blue"/>'
        '<circle cx="100" cy="120" r="3"/><path d="M0 0 L10 10"/></svg>')


@needs_chromium
def test_charts_title_text_and_clean_console(tmp_path):
    html = page(tmp_path, f"<h1>Results</h1>{BAR}<p>Two charts.</p>{LINE}<svg class='icon'><rect/></svg>",
                title="Eval report")
    check = check_page(html)
    assert check.title == "Eval report"
    assert [chart.kind for chart in check.charts] == ["bar", "line"]  # svg.icon is not a chart
    assert check.charts[0] == ChartBox(kind="bar", width=320, height=200, elements=4)
    assert check.charts[1] == ChartBox(kind="line", width=400, height=240, elements=3)
    assert all(chart.visible for chart in check.charts)
    assert check.console == []
    assert check.data_charts is None
    assert "Results" in check.text and "Two charts." in check.text


@needs_chromium
def test_uncaught_exception_and_console_error_are_reported(tmp_path):
    html = page(tmp_path, "<p>hi</p><script>console.error('bad'); console.warn('only a warning');"
                          "console.log('fine')</script><script>throw new Error('boom')</script>"
                          "<script>document.body.dataset.charts = '3'</script>")
    check = check_page(html)
    assert len(check.console) == 2, check.console
    assert any('"bad"' in entry for entry in check.console)
    assert any("Uncaught Error: boom" in entry for entry in check.console)
    assert not any("warning" in entry or "fine" in entry for entry in check.console)
    assert check.data_charts == "3"  # a later script still ran after the uncaught error


@needs_chromium
def test_hidden_and_empty_charts_are_detected(tmp_path):
    html = page(tmp_path, f"{BAR}<div style='display:none'>{LINE}</div>"
                          "<svg class='chart' data-chart='empty' width='0' height='0'></svg>"
                          "<svg class='chart' data-chart='blank' width='200' height='100'></svg>")
    charts = {chart.kind: chart for chart in check_page(html).charts}
    assert charts["bar"].visible
    assert (charts["line"].width, charts["line"].height, charts["line"].elements) == (0, 0, 3)
    assert (charts["empty"].width, charts["empty"].elements) == (0, 0)
    assert charts["blank"].width == 200 and charts["blank"].elements == 0
    assert not any(charts[kind].visible for kind in ("line", "empty", "blank"))


@needs_chromium
def test_screenshots_full_page_and_above_the_fold(tmp_path):
    html = page(tmp_path, f"{BAR}<div style='height:2500px;background:linear-gradient(#fff,#06c)'></div><p>end</p>")
    full, fold = tmp_path / "shots" / "full.png", tmp_path / "shots" / "fold.png"
    check = check_page(html, screenshot=full, screenshot_viewport=fold, width=1000, height=700)
    assert check.screenshots == [fold, full]
    assert png_size(fold) == (1000, 700)  # the viewport itself is width x height
    full_width, full_height = png_size(full)
    assert full_height > 2500 and 0 < full_width <= 1000  # taller than the 700 px viewport
    assert sorted(p.name for p in full.parent.iterdir()) == ["fold.png", "full.png"]  # no temp files left

    viewport_only = tmp_path / "viewport.png"
    check_page(html, screenshot=viewport_only, full_page=False, width=800, height=600)
    assert png_size(viewport_only) == (800, 600)


@needs_chromium
def test_unreachable_external_resource_is_a_console_error(tmp_path):
    # .invalid never resolves (RFC 2606), with or without a network: Chromium logs a SEVERE
    # "https://example.invalid/x.png - Failed to load resource: net::ERR_NAME_NOT_RESOLVED".
    html = page(tmp_path, '<img src="https://example.invalid/x.png" alt="x"><img src="missing.png" alt="y">')
    console = check_page(html).console
    assert any("example.invalid/x.png" in entry and "Failed to load resource" in entry for entry in console), console
    assert any("missing.png" in entry and "ERR_FILE_NOT_FOUND" in entry for entry in console), console


@needs_chromium
def test_profile_removed_and_driver_quit_even_on_error(tmp_path, monkeypatch):
    import selenium.webdriver

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    quits = []
    original_quit = selenium.webdriver.Chrome.quit

    def counting_quit(self):
        quits.append(self)
        original_quit(self)

    monkeypatch.setattr(selenium.webdriver.Chrome, "quit", counting_quit)
    html = page(tmp_path, BAR)
    check_page(html)
    assert len(quits) == 1 and list(temp.iterdir()) == []

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(OSError):
        check_page(html, screenshot=blocker / "shot.png")
    assert len(quits) == 2 and list(temp.iterdir()) == []


def test_missing_chromium_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTLAB_CHROMIUM", str(tmp_path / "no-chromium"))
    assert find_chromium() is None
    with pytest.raises(BrowserNotFoundError, match=r"apt-get install chromium chromium-driver") as error:
        check_page(page(tmp_path, "<p>x</p>"))
    assert isinstance(error.value, AdaptlabError) and "Chromium" in str(error.value)


def test_missing_html_file(tmp_path):
    with pytest.raises(InputError, match="no such HTML file"):
        check_page(tmp_path / "absent.html")
