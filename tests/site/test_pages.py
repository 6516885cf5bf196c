"""Every page of the built site, as a first-time reader's browser shows it (offline).

One fresh browser context per page (empty localStorage, as on a first visit); every check
reads the same recorded visit (see conftest.py), so each page loads once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from PIL import Image

from .conftest import ALLOWED_CONSOLE_ERRORS, ROOT, SITE, site_pages

PAGES = site_pages()
NOTEBOOK_PAGES = [p for p in PAGES if (SITE / "_sources" / p).with_suffix(".ipynb").is_file()]
# `make site-test` sets this: the site it tests was built from the chapters nbval executed.
EXPECT_OUTPUTS = os.environ.get("COMPANION_SITE_EXECUTED") == "1"
RAW_TEX = re.compile(r"\\(?:frac|mathcal|mathbb|theta|nabla|sum|begin|left|right)\b|\$\$|\\\(|\\\[")
IDS = re.compile(r"""\b(?:id|name)=["']([^"']+)["']""")


def _repository() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    return url, config["repository"].get("branch", "main")


def test_the_site_was_built():
    assert PAGES, f"no pages under {SITE}: run `make book-check` first"
    assert "book/intro.html" in PAGES and "search.html" in PAGES



@pytest.mark.parametrize("page", PAGES)
def test_no_console_errors_no_failed_or_external_requests(visit, page):
    v = visit(page)
    errors = [e for e in v.console_errors if e not in ALLOWED_CONSOLE_ERRORS]
    assert errors == [], f"{page}: console errors {errors}"
    assert v.failed_requests == [], f"{page}: failed requests {v.failed_requests}"
    assert v.external_requests == [], f"{page}: requests leaving the site {v.external_requests}"
    assert v.requests > 0


@pytest.mark.parametrize("page", PAGES)
def test_math_is_rendered(visit, page):
    v = visit(page)
    dom = v.dom
    has_math = 'class="math' in (SITE / page).read_text(encoding="utf-8")
    assert dom["mathUnrendered"] == [], f"{page}: raw TeX left: {dom['mathUnrendered'][:3]}"
    assert dom["mathErrors"] == 0, f"{page}: {dom['mathErrors']} MathJax errors"
    if has_math and page != "index.html":
        assert dom["math"] > 0 and dom["mjx"] >= dom["math"] > 0, f"{page}: math not rendered"
    leftover = RAW_TEX.findall(dom["proseText"])
    assert not leftover, f"{page}: TeX outside math elements (a $...$ not parsed?): {leftover[:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_every_image_loaded(visit, page):
    broken = [src for src, width in visit(page).dom["images"] if width <= 0]
    assert broken == [], f"{page}: images that did not load: {broken}"


def _target(page: str, href: str) -> tuple[Path, str] | None:
    """The file and fragment an internal link points to (None for external / scripted links)."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
        return None
    base = (SITE / page).parent
    path = (base / unquote(parts.path)).resolve() if parts.path else (SITE / page)
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_and_anchors_resolve(visit, page):
    problems, ids_of = [], {}
    v = visit(page)
    landed = v.final_url.split("/", 3)[3].split("?")[0].split("#")[0]  # after any redirect
    for href in sorted(set(v.dom["links"])):
        target = _target(landed, href)
        if target is None:
            continue
        path, fragment = target
        if not path.is_file():
            problems.append(f"{href}: no file {path.relative_to(SITE.parent)}")
        elif fragment and path.suffix == ".html":
            if path not in ids_of:
                ids_of[path] = set(IDS.findall(path.read_text(encoding="utf-8")))
            if fragment not in ids_of[path]:
                problems.append(f"{href}: no anchor #{fragment} in {path.name}")
    assert problems == [], f"{page}: broken internal links: {problems}"


@pytest.mark.parametrize("page", PAGES)
def test_full_page_screenshot_is_sane(visit, page):
    v = visit(page)
    assert v.screenshot is not None and v.screenshot.is_file()
    with Image.open(v.screenshot) as shot:
        width, height = shot.size
        grey = shot.convert("L")
        low, high = grey.getextrema()
        colours = grey.getcolors(maxcolors=256)
    assert width == 1280, f"{page}: screenshot {width} px wide"
    assert 600 <= height <= 100_000, f"{page}: page {height} px tall (empty or runaway layout?)"
    assert high - low > 100 and (colours is None or len(colours) > 16), (
        f"{page}: the screenshot is nearly blank ({v.screenshot})")


def test_redirect_page_lands_on_the_introduction(visit):
    assert visit("index.html").final_url.endswith("/book/intro.html")


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_chapter_shows_code_and_outputs(visit, page):
    dom = visit(page).dom
    assert dom["codeCells"] > 0, f"{page}: no code cells"
    if EXPECT_OUTPUTS:
        assert dom["outputs"] > 0, f"{page}: no cell outputs (was the site built executed?)"


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("book/")])
def test_launch_and_repository_buttons_point_to_the_configured_repository(visit, page):
    url, branch = _repository()
    slug = urlsplit(url).path.strip("/")
    links = visit(page).dom["headerLinks"]
    assert url in links, f"{page}: no repository button to {url}: {links}"
    for link in links:
        host = urlsplit(link).netloc
        if host in ("github.com", "mybinder.org", "colab.research.google.com"):
            assert slug in link, f"{page}: {link} does not point to {url}"
    if page in NOTEBOOK_PAGES:
        nb = page.removesuffix(".html") + ".ipynb"
        assert f"https://mybinder.org/v2/gh/{slug}/{branch}?urlpath=tree/{nb}" in links
        assert f"https://colab.research.google.com/github/{slug}/blob/{branch}/{nb}" in links


def test_search_finds_a_known_term_offline(browser, base_url):
    context = browser.new_context()
    external: list[str] = []

    def route(r):
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    try:
        page = context.new_page()
        page.goto(base_url + "search.html?q=Omniglot", wait_until="load")
        hits = page.locator("#search-results ul.search li")
        hits.first.wait_for(timeout=30_000)
        found = hits.evaluate_all("items => items.map(li => li.querySelector('a').href)")
    finally:
        context.close()
    assert any("/book/" in h for h in found), f"search for Omniglot found {found}"
    assert external == []
