"""The built website in a real browser: a local HTTP server, system Chromium, one visit per page.

These tests need the built site (``_build/html``, or ``$COMPANION_SITE_DIR``) and a Chromium
(``$COMPANION_CHROMIUM``, else ``chromium`` on PATH) driven by Playwright. `make test` builds
the site and then runs them (`make site-test`); the unit run (`pytest tests`, `make unit`) does
not collect them: they are collected only when the command line names this folder.

Without a browser they skip on a reader's machine, and fail in CI (``CI`` set), where a silent
skip would hide that nothing was checked.
"""

from __future__ import annotations

import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SITE = Path(os.environ.get("COMPANION_SITE_DIR", ROOT / "_build" / "html")).resolve()
SKIP_DIRS = {"_static", "_sources", "_images"}
VIEWPORT = {"width": 1280, "height": 800}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect tests/site only when the command line names it (or something inside it)."""
    for arg in config.args:
        target = Path(arg.split("::")[0]).resolve()
        if target == HERE or HERE in target.parents:
            return None
    return True


def site_pages() -> list[str]:
    """The site's pages, relative to its root (not the theme templates under _static/)."""
    if not SITE.is_dir():
        return []
    return [p.relative_to(SITE).as_posix() for p in sorted(SITE.rglob("*.html"))
            if not SKIP_DIRS & set(p.relative_to(SITE).parts)]


def _no_browser(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the browser tests must run here; `make site-test` "
                    "installs the Debian package chromium when it runs as root)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site at {SITE}: run `make book-check` (or `make book`) first, or "
                    "set COMPANION_SITE_DIR", pytrace=False)
    return SITE


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def base_url(site: Path) -> Iterator[str]:
    """The site served over HTTP on 127.0.0.1 (search and MathJax need http://, not file://)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def chromium_path() -> str | None:
    """``$COMPANION_CHROMIUM`` if set, else the first Chromium found on PATH."""
    configured = os.environ.get("COMPANION_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _no_browser("no Chromium found: install the Debian package `chromium` or set "
                    "COMPANION_CHROMIUM to a Chromium executable")
    manager = sync_playwright().start()
    try:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start
        chromium = manager.chromium.launch(executable_path=path, headless=True,
                                           args=["--no-sandbox"])
    except Exception as error:  # the driver's errors are plain Exceptions with the log
        manager.stop()
        _no_browser(f"Chromium at {path} did not start: {str(error).splitlines()[0]}")
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Full-page screenshots land here (outside the repository): $COMPANION_SCREENSHOT_DIR or
    $TMPDIR/site-screenshots."""
    folder = Path(os.environ.get("COMPANION_SCREENSHOT_DIR")
                  or Path(tempfile.gettempdir()) / "site-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Visit:
    """What one page did when loaded in a fresh browser context (a first-time reader)."""

    page: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    requests: int = 0
    dom: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None
    final_url: str = ""


# Console errors known to be harmless, each allowed exactly (any other message fails):
ALLOWED_CONSOLE_ERRORS = {
    # sphinx-thebe 0.3.1 adds an inline configuration script (app.add_js_file(None, body=...))
    # once the HTML builder exists; Sphinx 7.4 then registers it twice, as filename None and,
    # when writing starts, as filename "" (sphinx/builders/html/__init__.py, prepare_writing),
    # which its duplicate check treats as different, so every page carries the script twice.
    # The second copy's `const` redeclaration is a SyntaxError that stops only that copy: the
    # first has defined the same constants, and thebe (live code cells) is not enabled on this
    # site. Remove this entry when the page carries the script once.
    "uncaught: Identifier 'THEBE_JS_URL' has already been declared",
}

VISITS: dict[str, Visit] = {}  # page -> its visit, for the summary below


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per page visited: what the browser saw (the CI log's record of the checks)."""
    if not VISITS:
        return
    terminalreporter.section("site pages in Chromium")
    terminalreporter.write_line(f"{'page':34} req ext fail err  math(rendered/all) img(ok/all) "
                                "links code/out  screenshot   (err: console errors not allowed)")
    for name, v in sorted(VISITS.items()):
        d = v.dom
        images = d.get("images", [])
        size = "-"
        if v.screenshot is not None and v.screenshot.is_file():
            from PIL import Image

            with Image.open(v.screenshot) as shot:
                size = f"{shot.size[0]}x{shot.size[1]}"
        errors = sum(e not in ALLOWED_CONSOLE_ERRORS for e in v.console_errors)
        terminalreporter.write_line(
            f"{name:34} {v.requests:3d} {len(v.external_requests):3d} {len(v.failed_requests):4d} "
            f"{errors:3d}  {d.get('mathRendered', 0):5d}/{d.get('math', 0):<5d}"
            f"            {sum(w > 0 for _, w in images):3d}/{len(images):<3d}     "
            f"{len(d.get('links', [])):4d} {d.get('codeCells', 0):3d}/{d.get('outputs', 0):<3d}  "
            f"{size}")


# Runs in the page once it has loaded: lets lazy images load, waits for MathJax's first
# typesetting, then reports what a reader would see.
_INSPECT = """async () => {
  document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = 'eager'; });
  await Promise.all(Array.from(document.images).map(i => i.complete ? null
    : new Promise(done => { i.addEventListener('load', done);
                            i.addEventListener('error', done); })));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const math = Array.from(document.querySelectorAll('.math'));
  const article = (document.querySelector('article') || document.body).cloneNode(true);
  article.querySelectorAll('pre, code, script, style, mjx-container, .cell_input, .cell_output')
    .forEach(e => e.remove());
  return {
    math: math.length,
    mathRendered: math.filter(m => m.querySelector('mjx-container')).length,
    mathUnrendered: math.filter(m => !m.querySelector('mjx-container'))
      .map(m => m.textContent.trim().slice(0, 80)),
    // TeX errors (merror) and undefined macros (shown in red by MathJax's noundefined)
    mathErrors: document.querySelectorAll('mjx-merror, mjx-container [style*="color: red"]')
      .length,
    mjx: document.querySelectorAll('mjx-container').length,
    proseText: article.textContent,
    images: Array.from(document.images).map(i => [i.currentSrc || i.src, i.naturalWidth]),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    headerLinks: Array.from(document.querySelectorAll('.bd-header-article a[href]'))
      .map(a => a.href),
    codeCells: document.querySelectorAll('div.cell div.cell_input').length,
    outputs: document.querySelectorAll('div.cell div.cell_output').length,
    height: document.documentElement.scrollHeight,
  };
}"""


@pytest.fixture(scope="session")
def visit(browser: Any, base_url: str, screenshot_dir: Path) -> Iterator[Any]:
    """``visit(page) -> Visit``: load a page once per session (memoised) and record everything."""
    cache = VISITS

    def load(page_path: str) -> Visit:
        if page_path in cache:
            return cache[page_path]
        record = Visit(page_path)
        context = browser.new_context(viewport=VIEWPORT)  # fresh: empty localStorage and cache

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith((base_url, "data:", "blob:")):
                r.continue_()
            else:  # the site must work offline: record and refuse anything from another host
                record.external_requests.append(url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: record.console_errors.append(m.text)
                if m.type == "error" else None)
        page.on("pageerror", lambda e: record.console_errors.append(f"uncaught: {e}"))
        page.on("request", lambda r: setattr(record, "requests", record.requests + 1))
        page.on("requestfailed", lambda r: None if not r.url.startswith(base_url)
                else record.failed_requests.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: record.failed_requests.append(f"{r.url}: HTTP {r.status}")
                if r.status >= 400 else None)
        try:
            page.goto(base_url + page_path, wait_until="load", timeout=30_000)
            page.wait_for_load_state("networkidle", timeout=15_000)
            record.final_url = page.url
            record.dom = page.evaluate(_INSPECT)
            shot = screenshot_dir / (page_path.replace("/", "__").removesuffix(".html") + ".png")
            page.screenshot(path=str(shot), full_page=True, timeout=30_000)
            record.screenshot = shot
        finally:
            context.close()
        cache[page_path] = record
        return record

    yield load
