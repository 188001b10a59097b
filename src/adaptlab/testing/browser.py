"""Open an HTML report in a real headless Chromium and report what a reader would see.

`check_page` loads a file in Chromium (through Selenium and the system's chromedriver), waits for the page to
finish loading, and returns the title, the visible text, the size and content of every ``<svg class="chart">``
and the browser's console errors (uncaught exceptions, ``console.error``, resources that failed to load).
It can also save full-page and above-the-fold PNG screenshots.

Selenium is a test dependency (``pip install -e '.[test]'``); Chromium and chromedriver come from the system
(``apt-get install chromium chromium-driver`` on Debian). Selenium Manager never runs: the driver and browser
paths are always given, and ``SE_OFFLINE=true`` is set so that nothing is ever downloaded.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.errors import AdaptlabError, InputError

#: The Chromium flags the checks run with (plus --window-size and a fresh temporary --user-data-dir).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_NAMES = ("chromedriver",)
#: SVG elements that draw something; `ChartBox.elements` counts these.
DRAWING_ELEMENTS = ("path", "rect", "line", "circle", "ellipse", "polyline", "polygon", "text")
#: A full-page screenshot is cut at this height (CSS pixels): a runaway page must not make a gigapixel PNG.
MAX_SCREENSHOT_HEIGHT = 12000

INSTALL_HINT = ("install them with `apt-get install chromium chromium-driver` (Debian/Ubuntu), or point "
                "$ADAPTLAB_CHROMIUM and $ADAPTLAB_CHROMEDRIVER at a Chrome/Chromium binary and its matching "
                "chromedriver")


class BrowserError(AdaptlabError):
    """Chromium could not start, or the page could not be loaded and read."""


class BrowserNotFoundError(BrowserError):
    """Chromium, chromedriver or Selenium is not installed."""


@dataclass(frozen=True)
class ChartBox:
    """One ``<svg class="chart">`` as laid out: its ``data-chart`` kind, rendered size in CSS pixels, and how many
    drawing elements (path, rect, line, circle, ellipse, polyline, polygon, text) it holds."""

    kind: str
    width: float
    height: float
    elements: int

    @property
    def visible(self) -> bool:
        return self.width > 0 and self.height > 0 and self.elements > 0


@dataclass(frozen=True)
class PageCheck:
    """What Chromium saw: ``console`` holds the browser log entries at level SEVERE (uncaught exceptions,
    ``console.error``, failed resource loads), ``data_charts`` is ``document.body.dataset.charts`` after load
    (None when unset), ``text`` is ``document.body.innerText``."""

    title: str
    charts: list[ChartBox]
    console: list[str]
    data_charts: str | None = None
    text: str = ""
    screenshots: list[Path] = field(default_factory=list)


def _resolve(value: str) -> Path | None:
    candidate = Path(value).expanduser()
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate.resolve()
    found = shutil.which(value)
    return Path(found) if found else None


def _locate(env: str, names: tuple[str, ...]) -> Path | None:
    override = os.environ.get(env)
    if override:
        return _resolve(override)  # an explicit setting that does not resolve means "absent", not "search PATH"
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_chromium() -> tuple[Path, Path] | None:
    """(chromium, chromedriver): from $ADAPTLAB_CHROMIUM / $ADAPTLAB_CHROMEDRIVER (a path or a command name),
    else the first of chromium, chromium-browser, google-chrome(-stable) and chromedriver on PATH. None when
    either is missing."""
    browser = _locate("ADAPTLAB_CHROMIUM", BROWSER_NAMES)
    driver = _locate("ADAPTLAB_CHROMEDRIVER", DRIVER_NAMES)
    if browser is None or driver is None:
        return None
    return browser, driver


def _missing_message() -> str:
    browser = _locate("ADAPTLAB_CHROMIUM", BROWSER_NAMES)
    driver = _locate("ADAPTLAB_CHROMEDRIVER", DRIVER_NAMES)
    missing = [name for name, path in (("Chromium", browser), ("chromedriver", driver)) if path is None]
    return f"{' and '.join(missing)} not found: {INSTALL_HINT}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_READ_PAGE = """
const drawing = arguments[0];
const charts = Array.from(document.querySelectorAll('svg.chart')).map((svg) => {
    const box = svg.getBoundingClientRect();
    return [svg.getAttribute('data-chart') || '', box.width, box.height, svg.querySelectorAll(drawing).length];
});
const body = document.body;
return {
    charts: charts,
    dataCharts: body && body.dataset.charts !== undefined ? body.dataset.charts : null,
    text: body ? body.innerText : '',
};
"""

_PAGE_SIZE = """
const root = document.documentElement, body = document.body;
return [Math.max(root.scrollWidth, body ? body.scrollWidth : 0, root.clientWidth),
        Math.max(root.scrollHeight, body ? body.scrollHeight : 0, root.clientHeight)];
"""


def _console_errors(driver) -> list[str]:
    errors = []
    for entry in driver.get_log("browser"):
        message = str(entry.get("message", ""))
        if entry.get("level") == "SEVERE" or "Uncaught" in message:
            errors.append(message)
    return errors


def check_page(html_path: Path, *, screenshot: Path | None = None, screenshot_viewport: Path | None = None,
               width: int = 1280, height: int = 900, full_page: bool = True, timeout_s: float = 60) -> PageCheck:
    """Open `html_path` in headless Chromium with a `width`x`height` viewport and read it back.

    `screenshot` gets a PNG of the whole page (up to MAX_SCREENSHOT_HEIGHT px tall) when `full_page`, else of
    the viewport; `screenshot_viewport` gets the viewport only ("above the fold"). Both are written atomically.
    Raises BrowserNotFoundError when Chromium, chromedriver or Selenium is missing, BrowserError when the
    browser fails, InputError when the file does not exist.
    """
    html_path = Path(html_path)
    if not html_path.is_file():
        raise InputError(str(html_path), None, "no such HTML file", "render the report first")
    binaries = find_chromium()
    if binaries is None:
        raise BrowserNotFoundError(_missing_message())
    browser_path, driver_path = binaries
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as exc:
        raise BrowserNotFoundError(f"Selenium is not installed ({exc}): pip install -e '.[test]' "
                                   f"(or pip install 'selenium>=4.20')") from exc

    os.environ.setdefault("SE_OFFLINE", "true")  # belt and braces: Selenium Manager must never download
    profile = tempfile.mkdtemp(prefix="adaptlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser_path)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(driver_path))
    driver = None
    try:
        try:
            driver = webdriver.Chrome(service=service, options=options)
        except WebDriverException as exc:
            raise BrowserError(f"could not start {browser_path} with {driver_path}: {exc.msg or exc} — check that "
                               f"chromedriver's version matches the browser's") from exc
        try:
            _fit_viewport(driver, width, height)
            driver.set_page_load_timeout(timeout_s)
            driver.set_script_timeout(timeout_s)
            driver.get(html_path.resolve().as_uri())
            WebDriverWait(driver, timeout_s).until(
                lambda d: d.execute_script("return document.readyState") == "complete")
            page = driver.execute_script(_READ_PAGE, ",".join(DRAWING_ELEMENTS))
            charts = [ChartBox(kind=str(kind), width=float(w), height=float(h), elements=int(n))
                      for kind, w, h, n in page["charts"]]
            title = driver.title
            written: list[Path] = []
            if screenshot_viewport is not None:
                _write_atomic(Path(screenshot_viewport), driver.get_screenshot_as_png())
                written.append(Path(screenshot_viewport))
            if screenshot is not None:
                _write_atomic(Path(screenshot), _full_page_png(driver) if full_page else driver.get_screenshot_as_png())
                written.append(Path(screenshot))
            console = _console_errors(driver)
        except WebDriverException as exc:
            raise BrowserError(f"Chromium could not check {html_path}: {exc.msg or exc}") from exc
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):  # the driver may already be gone; the profile goes regardless
                driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return PageCheck(title=title, charts=charts, console=console, data_charts=page["dataCharts"],
                     text=page["text"], screenshots=written)


def _fit_viewport(driver, width: int, height: int) -> None:
    """Make the viewport itself `width`x`height`: new headless Chromium sizes the *window* to --window-size and
    reserves ~143 px of it for an invisible browser UI, so the page would otherwise get 1280x757 of 1280x900."""
    inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if (inner_width, inner_height) != (width, height):
        size = driver.get_window_size()
        driver.set_window_size(size["width"] + width - inner_width, size["height"] + height - inner_height)


def _full_page_png(driver) -> bytes:
    """The whole document (capped at MAX_SCREENSHOT_HEIGHT), through CDP so the layout keeps the window's width."""
    page_width, page_height = driver.execute_script(_PAGE_SIZE)
    clip = {"x": 0, "y": 0, "width": int(page_width), "height": int(min(page_height, MAX_SCREENSHOT_HEIGHT)),
            "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])
